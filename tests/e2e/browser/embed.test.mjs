// The embeddable client on another origin: a page served by a separate
// server (another port, so another origin) imports web/client.js and talks
// to the hub cross-origin. With WebSocket blocked (as a proxy that strips
// upgrades would) it falls back to SSE, an EventSource that the browser lets
// the page read only with the hub's CORS answer, and cancels over the HTTP
// API, a POST with a token and a JSON body that the browser preflights.
// Both work when the hub lists the page's origin in --allowed-origins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hub } from '../lib/hub.mjs';
import { launch } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { mintToken } from '../lib/jwt.mjs';
import { until } from '../lib/dashboard.mjs';
import { appServer } from '../lib/app.mjs';

const SECRET = 'e2e-embed-secret-0123456789';

test('client on another origin: SSE fallback and HTTP cancel through CORS', async (t) => {
  const app = await appServer();
  const hub = await Hub.start(['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET,
    '--allowed-origins', app.origin]);
  const browser = await launch();
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const operator = mintToken(SECRET, { sub: 'olga', roles: ['operator'], namespaces: ['default'] });
  const producer = await Producer.connect(hub.addr, { token: admin });
  t.after(async () => {
    producer.close(); await browser.close(); await hub.stop(); app.server.close();
  });
  const page = await browser.page();
  await page.addInitScript(() => {
    window.WebSocket = class BlockedWebSocket {
      constructor() {
        this.readyState = 0;
        setTimeout(() => { this.readyState = 3; this.onerror?.({}); this.onclose?.({ code: 1006, reason: '' }); }, 20);
      }
      send() { throw new Error('not open'); }
      close() { this.readyState = 3; }
    };
  });
  await page.goto(`${app.origin}/`);
  assert.notEqual(new URL(page.url()).origin, hub.url, 'the page is on another origin');
  await page.evaluate(async ({ url, token }) => {
    const { HubClient } = await import('/client.js');
    const w = /** @type {any} */ (window);
    w.events = [];
    w.client = new HubClient({ url, namespace: 'default', token });
    w.client.on('event', (/** @type {any} */ e) => w.events.push(e));
    w.client.start();
  }, { url: hub.url, token: operator });
  await until(async () => page.evaluate(() => {
    const s = /** @type {any} */ (window).client.status();
    return s.state === 'connected' && s.transport === 'sse';
  }), { timeout: 30000, what: 'connected over SSE from another origin' });

  await producer.start('embed.1', 'Watched from elsewhere', { total: 10 });
  await until(async () => page.evaluate(() => /** @type {any} */ (window).events
    .some((/** @type {any} */ e) => e.operation_id === 'embed.1')), { what: 'the live event over cross-origin SSE' });

  const reply = await page.evaluate(() => /** @type {any} */ (window).client.cancel('embed.1'));
  assert.equal(reply.type, 'ok', JSON.stringify(reply));
  const notice = await producer.nextCancel(10000);
  assert.equal(notice.operation_id, 'embed.1');
  assert.equal(notice.requested_by, 'olga', 'the token crossed the preflight');
});
