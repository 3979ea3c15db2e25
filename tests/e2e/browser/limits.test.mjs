// Limits the hub answers at the door are waits, not failures: with
// `--max-snapshot-bytes` small and another viewer holding a big snapshot
// unread, the page's `subscribe` is answered RATE_LIMITED (`snapshots`,
// `retry_after_ms`). The page must say it is waiting and why, keep
// retrying, and go live once the stuck viewer is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, until } from '../lib/dashboard.mjs';

/** A viewer that subscribes to `namespace` and never reads: the hub keeps its snapshot unsent. */
function stuckViewer(addr, namespace) {
  const ws = new WebSocket(`ws://${addr}/ws`);
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      ws.pause(); // read nothing from here on
      ws.send(JSON.stringify({ type: 'subscribe', id: 1, namespace }));
      resolve({ close: () => ws.terminate() });
    });
  });
}

/** One subscribe to `namespace` by a reading client: the hub's answer (`subscribed` or `error`). */
function subscribeOnce(addr, namespace) {
  const ws = new WebSocket(`ws://${addr}/ws`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no answer to subscribe')); }, 5000);
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', id: 1, namespace })));
    ws.on('message', (data) => {
      for (const line of String(data).split('\n')) {
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.id === 1 && (msg.type === 'subscribed' || msg.type === 'error')) {
          clearTimeout(timer);
          ws.terminate();
          resolve(msg);
          return;
        }
      }
    });
  });
}

test('a subscribe refused for now (RATE_LIMITED snapshots) is retried, shown as a wait, and goes live', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--max-snapshot-bytes', '50000']);
  // About 10 MB in namespace "big": more than the kernel buffers between the
  // hub and a viewer that does not read, so its snapshot stays held.
  const big = keep(await Producer.connect(hub.addr, { namespace: 'big' }));
  const pad = 'm'.repeat(50_000);
  await Promise.all(Array.from({ length: 200 }, (_, i) => big.start(`big.${i}`, `Big ${i}`, { metadata: { pad } })));
  const small = keep(await Producer.connect(hub.addr));
  await small.start('small.1', 'Small job', { kind: 'etl' });
  const stuck = keep(await stuckViewer(hub.addr, 'big'));
  // The bound is hub-wide: once the stuck snapshot is held, any other one is refused.
  const refusal = await until(async () => {
    const m = await subscribeOnce(hub.addr, 'default');
    return m.type === 'error' && m.code === 'RATE_LIMITED' ? m : null;
  }, { what: 'the stuck snapshot to be held' });
  assert.equal(refusal.data?.reason, 'snapshots');
  assert.equal(typeof refusal.data?.retry_after_ms, 'number');

  const page = await browser.page();
  let sockets = 0;
  page.on('websocket', () => { sockets += 1; });
  await page.goto(`${hub.url}/`);
  const connText = page.locator(sel.connText);
  const banner = page.locator(sel.bannerText);
  await until(async () => /^Waiting: RATE_LIMITED — retry in \d+ s$/.test(await connText.textContent()), { what: 'waiting on RATE_LIMITED' });
  await until(async () => (await page.locator(sel.banner).isVisible()) && /RATE_LIMITED.*snapshots.*retrying in \d+ s/.test(await banner.textContent()),
    { what: 'banner naming the limit' });
  assert.notEqual(await page.locator(sel.conn).getAttribute('data-state'), 'failed');
  await until(() => sockets >= 3, { what: 'retries' });
  assert.notEqual(await page.locator(sel.conn).getAttribute('data-state'), 'failed', 'still retrying, never failed');
  assert.equal(await page.locator('[data-testid=toast]').isVisible(), false, 'the banner says it: no error toast per retry');
  t.diagnostic(`screenshot: ${await shot(page, 'limits-snapshots-waiting')}`);

  // The stuck viewer goes away: its snapshot no longer counts, the next retry succeeds.
  stuck.close();
  await waitConnected(page, 15000);
  await page.locator(sel.row('small.1')).waitFor({ timeout: 5000 });
  await page.locator(sel.banner).waitFor({ state: 'hidden', timeout: 5000 });
  t.diagnostic(`attempts: ${sockets}`);
});
