// The SSE fallback: on a network where WebSocket never opens (simulated by
// replacing the page's WebSocket with one that always fails, as a proxy that
// strips upgrades would) while HTTP works, the page switches to
// `/api/v1/stream`, shows live updates, and cancels over the HTTP API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, assertSameState, until } from '../lib/dashboard.mjs';

test('WebSocket blocked, HTTP fine → live over SSE, cancel over HTTP', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s']);
  const page = await browser.page();
  await page.addInitScript(() => {
    window.__wsAttempts = 0;
    window.WebSocket = class BlockedWebSocket {
      constructor() {
        window.__wsAttempts += 1;
        this.readyState = 0;
        setTimeout(() => { this.readyState = 3; this.onerror?.({}); this.onclose?.({ code: 1006, reason: '' }); }, 20);
      }
      send() { throw new Error('not open'); }
      close() { this.readyState = 3; }
    };
  });
  const producer = keep(await Producer.connect(hub.addr));
  await producer.start('sse.1', 'Over SSE', { kind: 'sse', total: 10 });

  await page.goto(`${hub.url}/`);
  await waitConnected(page, 30000);
  assert.equal(await page.locator(sel.connText).textContent(), 'Connected (SSE)');
  const attempts = await page.evaluate(() => window.__wsAttempts);
  t.diagnostic(`WebSocket attempts before falling back: ${attempts}`);
  assert.ok(attempts >= 3);

  const row = page.locator(sel.row('sse.1'));
  await row.waitFor();
  await producer.progress('sse.1', { current: 7 });
  await until(async () => (await row.getAttribute('data-progress')) === '70', { what: 'live progress over SSE' });

  await row.locator('[data-testid=op-cancel]').click();
  await page.locator('[data-testid=confirm-yes]').click();
  const notice = await producer.nextCancel(10000);
  assert.equal(notice.operation_id, 'sse.1');
  await producer.canceled('sse.1', 'bye');
  await until(async () => (await row.getAttribute('data-state')) === 'canceled', { what: 'canceled over SSE' });
  await assertSameState(page, hub);
});
