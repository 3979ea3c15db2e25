// The embeddable client (web/client.js, the code a page runs) with a token
// provider, against a real hub with short-lived tokens: each new token goes
// over the live WebSocket as `refresh`, so the connection outlives every
// token's `exp` + 5 s (where the hub closes connections that did not renew)
// and keeps delivering. Node drives it, with the `ws` package as WebSocket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { HubClient } from '../../../web/client.js';
import { Hub } from '../lib/hub.mjs';
import { Producer } from '../lib/producer.mjs';
import { mintToken } from '../lib/jwt.mjs';
import { until } from '../lib/dashboard.mjs';

const SECRET = 'e2e-renewal-secret-0123456789';

test('client: getToken renews a 3 s token on the live connection, past several expiries', async (t) => {
  const hub = await Hub.start(['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const producer = await Producer.connect(hub.addr, { token: admin });
  /** @type {any[]} */ const sockets = [];
  let refreshes = 0;
  class CountingSocket extends WebSocket {
    constructor(url) { super(url); sockets.push(this); }
    send(data) {
      if (JSON.parse(data).type === 'refresh') refreshes += 1;
      super.send(data);
    }
  }
  const client = new HubClient({
    url: `http://${hub.addr}`,
    namespace: 'default',
    env: { Date, setTimeout, clearTimeout, fetch, console, WebSocket: CountingSocket },
    getToken: async () => mintToken(SECRET, { sub: 'viewer', roles: ['viewer'], namespaces: ['default'], expInSeconds: 3 }),
  });
  /** @type {any[]} */ const events = [];
  client.on('event', (e) => events.push(e));
  t.after(async () => { client.stop(); producer.close(); await hub.stop(); });

  client.start();
  await until(async () => client.status().state === 'connected', { what: 'connected' });
  // Six renewals take ~12 s: well beyond the first token's exp + 5 s (~8 s),
  // when the hub would have closed a connection that kept it.
  await until(async () => refreshes >= 6, { timeout: 30000, what: 'six refreshes' });
  assert.equal(sockets.length, 1, 'one connection throughout');
  assert.equal(client.status().state, 'connected');
  await producer.start('renewed.1', 'Still watched');
  await until(async () => events.some((e) => e.operation_id === 'renewed.1'), { what: 'an event after the renewals' });
  assert.equal(sockets.length, 1);
});
