// The embeddable client (web/client.js) says why it cannot connect, and
// does not mistake one failure for another. A page on another origin (an
// app server on another port) imports the working tree's web/ modules and
// talks to a real hub in real Chromium:
//  - an origin the hub does not list in --allowed-origins: `failed` with
//    ORIGIN_NOT_ALLOWED and the flag that fixes it, not an endless silent retry;
//  - a WebSocket upgrade refused with 429 (--max-connections-per-user):
//    RATE_LIMITED, retried over WebSocket after Retry-After, never SSE;
//  - a frozen hub (SIGSTOP of the hub this test started): the probes time
//    out, so its thaw is not read as "WebSocket blocked" (no SSE);
//  - `new WebSocket()` throwing: a failed attempt with its reason, retried
//    (and, the hub answering over HTTP, SSE after three);
//  - a cancel whose connection drops (or stop()) is settled at once as
//    CONNECTION_LOST, not after the 10 s TIMEOUT;
//  - `env` given the browser's own functions, unbound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hub } from '../lib/hub.mjs';
import { launch } from '../lib/browser.mjs';
import { until } from '../lib/dashboard.mjs';
import { appServer } from '../lib/app.mjs';
import { mintToken } from '../lib/jwt.mjs';
import { Producer } from '../lib/producer.mjs';

const SECRET = 'e2e-client-errors-secret-0123456789';

/** Counts the EventSources a page creates (the SSE fallback). */
function countEventSources() {
  const w = /** @type {any} */ (window);
  w.__eventSources = 0;
  const Real = w.EventSource;
  w.EventSource = class extends Real {
    constructor(/** @type {any[]} */ ...a) { super(...a); w.__eventSources += 1; }
  };
}

/** A hub with `args`, an app server and a browser page on the app's origin, all ended after the test. */
async function setup(t, args, { allow = true } = {}) {
  const app = await appServer();
  const hub = await Hub.start(['--memory', '--heartbeat-interval', '1s', ...(allow ? ['--allowed-origins', app.origin] : []), ...args]);
  const browser = await launch();
  /** @type {{close(): void}[]} */ const kept = [];
  t.after(async () => {
    for (const k of kept) k.close();
    await browser.close(); await hub.stop(); app.close();
  });
  const page = await browser.page();
  await page.addInitScript(countEventSources);
  await page.goto(`${app.origin}/`);
  return { app, hub, page, keep: (/** @type {any} */ x) => { kept.push(x); return x; } };
}

/**
 * Starts `window[name] = new HubClient(opts)` in the page, recording its statuses in `window.statuses[name]`.
 * `opts.env: 'unbound'` passes the page's globals as they are; a number as
 * `opts.machine.random` is that constant.
 */
async function startClient(page, name, opts) {
  await page.evaluate(async ({ name, opts }) => {
    const { HubClient } = await import('/client.js');
    const w = /** @type {any} */ (window);
    w.statuses ??= {};
    w.statuses[name] = [];
    if (typeof opts.machine?.random === 'number') {
      const r = opts.machine.random;
      opts.machine.random = () => r;
    }
    if (opts.env === 'unbound') {
      opts.env = { WebSocket, EventSource, fetch, setTimeout, clearTimeout, addEventListener, removeEventListener,
        document, Date, location, console, AbortController };
    }
    w[name] = new HubClient(opts);
    w[name].on('status', (/** @type {any} */ s) => w.statuses[name].push({ ...s, at: Date.now() }));
    w[name].start();
  }, { name, opts });
}

const status = (page, name) => page.evaluate((n) => /** @type {any} */ (window)[n].status(), name);

test('a page whose origin the hub does not allow: failed ORIGIN_NOT_ALLOWED, naming --allowed-origins', async (t) => {
  const { app, hub, page } = await setup(t, [], { allow: false });
  await startClient(page, 'c', { url: hub.url, namespace: 'default' });
  const s = await until(async () => {
    const st = await status(page, 'c');
    return st.state === 'failed' ? st : null;
  }, { timeout: 15000, what: 'the client to fail, saying why' });
  assert.equal(s.errorCode, 'ORIGIN_NOT_ALLOWED');
  assert.match(s.errorMessage, /--allowed-origins/);
  assert.ok(s.errorMessage.includes(app.origin), s.errorMessage);
  assert.equal(s.retryAt, null, 'no more attempts');
});

test('hub down is not an origin problem: waiting, no error code, from another origin', async (t) => {
  const { hub, page } = await setup(t, [], { allow: false });
  const url = hub.url;
  await hub.kill();
  await startClient(page, 'c', { url, namespace: 'default', machine: { baseDelayMs: 100, maxDelayMs: 200 } });
  await until(async () => (await status(page, 'c')).attempt >= 3, { what: 'three failed attempts' });
  const s = await status(page, 'c');
  assert.equal(s.state === 'waiting' || s.state === 'connecting', true, s.state);
  assert.equal(s.errorCode, null);
});

test('WebSocket upgrade refused with 429 (max connections per user): RATE_LIMITED, retried over WebSocket, never SSE', async (t) => {
  const { page } = await setup(t, ['--jwt-secret', SECRET, '--max-connections-per-user', '1']).then(async (x) => {
    const token = mintToken(SECRET, { sub: 'alice', roles: ['viewer'], namespaces: ['default'] });
    await startClient(x.page, 'a', { url: x.hub.url, namespace: 'default', token });
    await until(async () => (await status(x.page, 'a')).state === 'connected', { what: 'the first client connected' });
    await startClient(x.page, 'b', { url: x.hub.url, namespace: 'default', token });
    return x;
  });
  const refusals = () => page.evaluate(() => /** @type {any} */ (window).statuses.b
    .filter((/** @type {any} */ s) => s.state === 'waiting' && s.errorCode === 'RATE_LIMITED'));
  await until(async () => (await refusals()).length > 0, { what: 'RATE_LIMITED', timeout: 15000 });
  const limited = await until(async () => {
    const l = await refusals();
    return l.length >= 3 ? l : null;
  }, { what: 'three refusals', timeout: 30000 });
  assert.match(limited[0].errorMessage, /connections_per_user/);
  for (const s of limited) {
    assert.ok(s.retryAt - s.at >= 900, `waits Retry-After (1 s) at least: ${s.retryAt - s.at} ms`);
  }
  const seen = await page.evaluate(() => {
    const all = /** @type {any} */ (window).statuses.b;
    const first = all.findIndex((/** @type {any} */ s) => s.errorCode === 'RATE_LIMITED');
    return {
      sse: all.some((/** @type {any} */ s) => s.transport === 'sse'),
      eventSources: /** @type {any} */ (window).__eventSources,
      unexplained: all.slice(first).filter((/** @type {any} */ s) => s.errorCode !== 'RATE_LIMITED').length,
    };
  });
  assert.deepEqual(seen, { sse: false, eventSources: 0, unexplained: 0 },
    'a refusal at the door is not a blocked WebSocket, and the status keeps saying why between attempts');
  await page.evaluate(() => /** @type {any} */ (window).a.stop());
  await until(async () => (await status(page, 'b')).state === 'connected', { what: 'b connected once a left', timeout: 30000 });
  const b = await status(page, 'b');
  assert.equal(b.transport, 'ws');
  assert.equal(b.errorCode, null);
  assert.equal(b.attempt, 0);
});

test('a frozen hub (SIGSTOP) that thaws: the timed-out probes are no evidence of a blocked WebSocket', async (t) => {
  const { hub, page } = await setup(t, []);
  // A fixed 2.7 s wait between 1.5 s attempts: while frozen, every attempt
  // leaves a probe that the hub answers only when it thaws, while the client waits.
  await startClient(page, 'c', {
    url: hub.url, namespace: 'default', httpProbeTimeoutMs: 1000,
    machine: { connectTimeoutMs: 1500, baseDelayMs: 3000, maxDelayMs: 3000, random: 0.9 },
  });
  await until(async () => (await status(page, 'c')).state === 'connected', { what: 'connected' });
  hub.signal('SIGSTOP');
  await until(async () => (await status(page, 'c')).attempt >= 4, { what: 'four attempts against the frozen hub', timeout: 40000 });
  await until(async () => (await status(page, 'c')).state === 'waiting', { what: 'waiting', timeout: 10000 });
  hub.signal('SIGCONT');
  await until(async () => (await status(page, 'c')).state === 'connected', { what: 'connected after the thaw', timeout: 30000 });
  const seen = await page.evaluate(() => ({
    sse: /** @type {any} */ (window).statuses.c.some((/** @type {any} */ s) => s.transport === 'sse'),
    eventSources: /** @type {any} */ (window).__eventSources,
  }));
  assert.deepEqual(seen, { sse: false, eventSources: 0 });
});

test('new WebSocket() throwing is a failed attempt with its reason, retried with the backoff, then SSE', async (t) => {
  const { hub, page } = await setup(t, []);
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.WebSocket = class { constructor() { throw new DOMException('The operation is insecure.', 'SecurityError'); } };
  });
  await startClient(page, 'c', { url: hub.url, namespace: 'default', machine: { baseDelayMs: 100, maxDelayMs: 200 } });
  // Each failed attempt says why, and the next one comes: the hub answering
  // GET /ws means something blocks WebSocket, so SSE is tried after three.
  const failed = await until(async () => {
    const f = await page.evaluate(() => /** @type {any} */ (window).statuses.c
      .filter((/** @type {any} */ s) => s.state === 'waiting' && /SecurityError/.test(s.reason ?? '')));
    return f.length >= 2 ? f : null;
  }, { what: 'failed attempts with their reason' });
  assert.ok(failed[1].attempt > failed[0].attempt);
  await until(async () => (await status(page, 'c')).state === 'connected', { what: 'connected (over SSE)' });
  assert.equal((await status(page, 'c')).transport, 'sse');
});

test('a cancel whose connection drops, or whose client stops, is settled at once as CONNECTION_LOST', async (t) => {
  const { hub, page, keep } = await setup(t, []);
  const producer = keep(await Producer.connect(hub.addr));
  await producer.start('slow.1', 'Never answered');
  await startClient(page, 'c', { url: hub.url, namespace: 'default' });
  await until(async () => (await status(page, 'c')).state === 'connected', { what: 'connected' });
  hub.signal('SIGSTOP');
  // Dropped: the heartbeat rule gives up on the frozen link after ~2 s.
  const dropped = await page.evaluate(async () => {
    const c = /** @type {any} */ (window).c;
    const t0 = Date.now();
    const reply = await c.cancel('slow.1');
    return { reply, ms: Date.now() - t0, state: c.status().state };
  });
  assert.equal(dropped.reply.code, 'CONNECTION_LOST', JSON.stringify(dropped));
  assert.equal(dropped.reply.outcome, 'unknown');
  assert.ok(dropped.ms < 8000, `settled when the link dropped, not at the 10 s timeout: ${dropped.ms} ms`);
  hub.signal('SIGCONT');
  await until(async () => (await status(page, 'c')).state === 'connected', { what: 'connected again' });
  hub.signal('SIGSTOP');
  const stopped = await page.evaluate(async () => {
    const c = /** @type {any} */ (window).c;
    const t0 = Date.now();
    const p = c.cancel('slow.1');
    c.stop();
    const reply = await p;
    return { reply, ms: Date.now() - t0 };
  });
  hub.signal('SIGCONT');
  assert.equal(stopped.reply.code, 'CONNECTION_LOST', JSON.stringify(stopped));
  assert.ok(stopped.ms < 1000, `settled by stop(): ${stopped.ms} ms`);
});

test('env: the browser\'s own globals, passed unbound, work', async (t) => {
  const { hub, page } = await setup(t, []);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await startClient(page, 'c', { url: hub.url, namespace: 'default', env: 'unbound' });
  await until(async () => (await status(page, 'c')).state === 'connected', { what: 'connected with env globals' });
  await page.evaluate(() => { /** @type {any} */ (window).c.stop(); });
  assert.deepEqual(errors, []);
});
