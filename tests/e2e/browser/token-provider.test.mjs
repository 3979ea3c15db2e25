// The embeddable client's `getToken` provider, in real Chromium on another
// origin, against a real hub with --jwt-secret. The provider is the README's
// `fetch('/token').then((r) => r.text())` on the app's own token endpoint:
//  - the endpoint answers 500 (an error page) at first: the client says
//    TOKEN_UNAVAILABLE with the provider's answer, connects with no token
//    meanwhile, asks again with backoff and connects once a token comes;
//  - a caching endpoint returns the same token when asked early: the client
//    asks again before expiry, and the one connection outlives several
//    tokens (no TOKEN_EXPIRED, no reconnect).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hub } from '../lib/hub.mjs';
import { launch } from '../lib/browser.mjs';
import { until } from '../lib/dashboard.mjs';
import { appServer } from '../lib/app.mjs';
import { mintToken } from '../lib/jwt.mjs';

const SECRET = 'e2e-token-provider-secret-0123456789';

/** Counts the page's WebSockets and the `refresh` messages sent on them. */
function countSockets() {
  const w = /** @type {any} */ (window);
  w.__sockets = 0;
  w.__refreshes = 0;
  const Real = w.WebSocket;
  w.WebSocket = class extends Real {
    constructor(/** @type {any[]} */ ...a) { super(...a); w.__sockets += 1; }
    send(/** @type {string} */ data) {
      if (JSON.parse(data).type === 'refresh') w.__refreshes += 1;
      super.send(data);
    }
  };
}

async function setup(t, token) {
  const app = await appServer({ token });
  const hub = await Hub.start(['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET, '--allowed-origins', app.origin]);
  const browser = await launch();
  t.after(async () => { await browser.close(); await hub.stop(); app.close(); });
  const page = await browser.page();
  await page.addInitScript(countSockets);
  await page.goto(`${app.origin}/`);
  await page.evaluate(async (url) => {
    const { HubClient } = await import('/client.js');
    const w = /** @type {any} */ (window);
    w.statuses = [];
    w.c = new HubClient({ url, namespace: 'default', getToken: () => fetch('/token').then((r) => r.text()) });
    w.c.on('status', (/** @type {any} */ s) => w.statuses.push(s));
    w.c.start();
  }, hub.url);
  return { app, hub, page };
}

const viewer = (expInSeconds = 3600) => mintToken(SECRET, { sub: 'viewer', roles: ['viewer'], namespaces: ['default'], expInSeconds });

test('a token endpoint that fails at first: TOKEN_UNAVAILABLE with its answer, asked again, then live', async (t) => {
  let calls = 0;
  const { page } = await setup(t, () => (++calls <= 2 ? null : viewer()));
  const unavailable = await until(async () => page.evaluate(() => /** @type {any} */ (window).statuses
    .find((/** @type {any} */ s) => s.errorCode === 'TOKEN_UNAVAILABLE')), { what: 'TOKEN_UNAVAILABLE' });
  assert.equal(unavailable.state, 'waiting');
  assert.match(unavailable.errorMessage, /Internal Server Error/);
  await until(async () => page.evaluate(() => /** @type {any} */ (window).c.status().state === 'connected'),
    { what: 'connected once the endpoint gives a token', timeout: 20000 });
  const seen = await page.evaluate(() => ({
    sockets: /** @type {any} */ (window).__sockets,
    failed: /** @type {any} */ (window).statuses.some((/** @type {any} */ s) => s.state === 'failed'),
  }));
  assert.deepEqual(seen, { sockets: 1, failed: false }, 'no connection with the error page as a token');
  assert.equal(calls, 3);
});

test('a caching token endpoint (the same token when asked early): renewed before expiry on the one connection', async (t) => {
  // Tokens of 6 s; the endpoint mints a new one only when the cached one has under 1 s left.
  let cached = null;
  const { page } = await setup(t, () => {
    const left = cached ? JSON.parse(Buffer.from(cached.split('.')[1], 'base64url').toString()).exp * 1000 - Date.now() : 0;
    if (left < 1000) cached = viewer(6);
    return cached;
  });
  await until(async () => page.evaluate(() => /** @type {any} */ (window).c.status().state === 'connected'), { what: 'connected' });
  // Three refreshes take three token lifetimes (~15 s): past the first
  // token's exp + 5 s, when the hub closes a connection that kept it.
  await until(async () => page.evaluate(() => /** @type {any} */ (window).__refreshes >= 3), { what: 'three refreshes', timeout: 40000 });
  const seen = await page.evaluate(() => ({
    sockets: /** @type {any} */ (window).__sockets,
    state: /** @type {any} */ (window).c.status().state,
    expired: /** @type {any} */ (window).statuses.some((/** @type {any} */ s) => s.errorCode === 'TOKEN_EXPIRED'),
  }));
  assert.deepEqual(seen, { sockets: 1, state: 'connected', expired: false });
});
