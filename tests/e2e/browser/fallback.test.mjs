// The SSE fallback: on a network where WebSocket never opens (simulated by
// replacing the page's WebSocket with one that always fails, as a proxy that
// strips upgrades would) while HTTP works, the page switches to
// `/api/v1/stream`, shows live updates, and cancels over the HTTP API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, assertSameState, until } from '../lib/dashboard.mjs';
import { appServer } from '../lib/app.mjs';

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

/**
 * The working tree's client on a page of another origin, behind a fake
 * proxy for WebSocket: `window.__policy` says which sockets pass
 * (`blocked`: none, `open`: all, `alternate`: every other one), and
 * `window.__wsAttempts` counts them. The client records its events'
 * offsets (and `snapshot@N` for snapshots) in `window.offsets` and its
 * statuses in `window.statuses`. Returns once it is connected over SSE.
 * @param {import('node:test').TestContext} t @param {Record<string, number>} machine
 */
async function clientBehindAProxy(t, machine) {
  const app = await appServer();
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s',
    '--allowed-origins', app.origin]);
  t.after(() => app.close());
  const page = await browser.page();
  await page.addInitScript(() => {
    const w = /** @type {any} */ (window);
    const Real = window.WebSocket;
    w.__policy = 'blocked';
    w.__wsAttempts = 0;
    w.WebSocket = function WebSocketBehindAProxy(/** @type {string} */ url, /** @type {any} */ protocols) {
      w.__wsAttempts += 1;
      const pass = w.__policy === 'open' || (w.__policy === 'alternate' && (w.__passed = (w.__passed ?? 0) + 1) % 2 === 1);
      if (pass) return new Real(url, protocols);
      const fake = { readyState: 0, onerror: null, onclose: null, onopen: null, onmessage: null, send() { throw new Error('not open'); }, close() { fake.readyState = 3; } };
      setTimeout(() => { fake.readyState = 3; fake.onerror?.({}); fake.onclose?.({ code: 1006, reason: '' }); }, 20);
      return fake;
    };
  });
  const producer = keep(await Producer.connect(hub.addr));
  await page.goto(`${app.origin}/`);
  await page.evaluate(async ({ url, machine }) => {
    const { HubClient } = await import('/client.js');
    const w = /** @type {any} */ (window);
    w.offsets = [];
    w.statuses = [];
    w.client = new HubClient({ url, namespace: 'default', machine });
    w.client.on('event', (/** @type {any} */ e) => w.offsets.push(e.offset));
    w.client.on('snapshot', (/** @type {any} */ s) => w.offsets.push(`snapshot@${s.offset}`));
    w.client.on('status', (/** @type {any} */ s) => w.statuses.push(s));
    w.client.start();
  }, { url: hub.url, machine });
  const status = () => page.evaluate(() => /** @type {any} */ (window).client.status());
  await until(async () => { const s = await status(); return s.state === 'connected' && s.transport === 'sse'; },
    { timeout: 30000, what: 'connected over SSE while WebSocket is blocked' });
  return { page, producer, status };
}

// The way back: a page that fell back to SSE while WebSocket was blocked
// tries WebSocket again now and then (`wsRetryMs`, short here) and moves
// over once one opens and answers a ping, resuming from its offset: no
// outage shown, no update missed or repeated. A try that fails leaves the
// SSE link alone. The working tree's client, on a page of another origin.
test('WebSocket unblocked later → the client moves from SSE back to WebSocket, live throughout', async (t) => {
  const { page, producer, status } = await clientBehindAProxy(t, { wsRetryMs: 1500, maxWsRetryMs: 3000 });
  await producer.start('back.1', 'Watched across the switch', { total: 100 });

  // Still blocked: a try fails, and the SSE link is not touched.
  const before = await page.evaluate(() => /** @type {any} */ (window).__wsAttempts);
  const mark = await page.evaluate(() => /** @type {any} */ (window).statuses.length);
  await until(async () => (await page.evaluate(() => /** @type {any} */ (window).__wsAttempts)) > before,
    { timeout: 10000, what: 'WebSocket tried again while on SSE' });
  await producer.progress('back.1', { current: 10 });
  await until(async () => (await page.evaluate(() => /** @type {any} */ (window).offsets.length)) >= 2,
    { what: 'live over SSE after a failed try' });
  const during = await page.evaluate((m) => /** @type {any} */ (window).statuses.slice(m), mark);
  assert.ok(during.every((/** @type {any} */ s) => s.state === 'connected' && s.transport === 'sse'),
    `a failed try changed nothing: ${JSON.stringify(during.map((/** @type {any} */ s) => [s.state, s.transport]))}`);

  // Unblocked: the client moves over, and updates sent around the move all arrive once.
  const mark2 = await page.evaluate(() => { const w = /** @type {any} */ (window); w.__policy = 'open'; return w.statuses.length; });
  let n = 10;
  await until(async () => {
    n = Math.min(n + 1, 100);
    await producer.progress('back.1', { current: n });
    const s = await status();
    return s.state === 'connected' && s.transport === 'ws';
  }, { timeout: 15000, what: 'moved over to WebSocket' });
  let last = 0;
  for (let i = 0; i < 3; i++) { n = Math.min(n + 1, 100); last = (await producer.progress('back.1', { current: n })).offset; }
  await until(async () => page.evaluate((want) => /** @type {any} */ (window).offsets.at(-1) === want, last),
    { what: 'every update up to the last one' });
  const { offsets, after } = await page.evaluate((m) => {
    const w = /** @type {any} */ (window);
    return { offsets: w.offsets, after: w.statuses.slice(m) };
  }, mark2);
  const events = offsets.filter((/** @type {any} */ o) => typeof o === 'number');
  assert.equal(offsets.filter((/** @type {any} */ o) => typeof o === 'string').length, 1, 'one snapshot, at the start: the move resumed');
  assert.deepEqual(events, [...new Set(events)], 'no update twice');
  assert.deepEqual(events, Array.from({ length: events.length }, (_, i) => events[0] + i), 'no update missed');
  assert.ok(after.every((/** @type {any} */ s) => s.disconnectedSince === null && (s.state === 'connected' || s.switching)),
    `no outage shown during the move: ${JSON.stringify(after.map((/** @type {any} */ s) => [s.state, s.transport, s.switching]))}`);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).client.maxConcurrent), 1, 'one transport at a time');
});

// A switch that does not hold (a balancer where only some backends pass
// upgrades: the try gets through, the switch's own WebSocket does not):
// the client goes straight back to SSE, resuming, with no outage shown,
// and tries again later, slower. Nothing is missed meanwhile.
test('a switch to WebSocket that fails goes straight back to SSE without an outage', async (t) => {
  const { page, producer, status } = await clientBehindAProxy(t, { wsRetryMs: 1000, maxWsRetryMs: 4000 });
  await producer.start('flaky.1', 'Behind a flaky balancer', { total: 1000 });
  const mark = await page.evaluate(() => { const w = /** @type {any} */ (window); w.__policy = 'alternate'; return w.statuses.length; });
  // Two switches tried and failed, while updates flow.
  let n = 0;
  let last = 0;
  await until(async () => {
    n += 1;
    last = (await producer.progress('flaky.1', { current: n })).offset;
    return page.evaluate(() => /** @type {any} */ (window).statuses
      .filter((/** @type {any} */ s) => s.switching && s.transport === 'sse').length >= 2);
  }, { timeout: 20000, what: 'two switches back to SSE' });
  await until(async () => { const s = await status(); return s.state === 'connected' && s.transport === 'sse'; },
    { what: 'on SSE again' });
  last = (await producer.progress('flaky.1', { current: n + 1 })).offset;
  await until(async () => page.evaluate((want) => /** @type {any} */ (window).offsets.at(-1) === want, last),
    { what: 'the latest update' });
  const { offsets, after } = await page.evaluate((m) => {
    const w = /** @type {any} */ (window);
    return { offsets: w.offsets.filter((/** @type {any} */ o) => typeof o === 'number'), after: w.statuses.slice(m) };
  }, mark);
  assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, i) => offsets[0] + i), 'nothing missed or repeated');
  assert.ok(after.every((/** @type {any} */ s) => s.disconnectedSince === null),
    `no outage shown: ${JSON.stringify(after.map((/** @type {any} */ s) => [s.state, s.transport, s.switching]))}`);
  assert.ok(await page.evaluate(() => /** @type {any} */ (window).client.machine.wsRetryDelay) > 1000, 'tries slowed down');
});
