// Unit tests of web/client.js: the socket-free connection machine (time is an
// argument, randomness injected) and the driver against fake transports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionMachine, HubClient, backoffDelay, renewalDelay, splitFrame, wsUrl, sseUrl, hubUrl, MAX_TOKEN_RETRIES } from '../../../web/client.js';
import { until } from '../lib/dashboard.mjs';
import { heartbeatSlackMs, HEARTBEAT_GAP_WINDOW, MIN_HEARTBEAT_GAP_MS } from '../../../web/connection.js';

const NS = 'default';
const frame = (...msgs) => msgs.map((m) => JSON.stringify(m)).join('\n');
const subscribed = (offset, recovered, epoch = 'E1', id) => ({ type: 'subscribed', id, namespace: NS, epoch, offset, recovered });
const ev = (offset, id = 'op-1', type = 'progress_update', progress = offset) => ({
  type, namespace: NS, offset, timestamp: 1000 + offset, operation_id: id,
  state: { operation_id: id, namespace: NS, state: 'running', progress },
});
const ofType = (acts, type) => acts.filter((a) => a.type === type);
const sent = (acts) => ofType(acts, 'send').map((a) => a.message);

/** A machine connected and subscribed at t=`at` (snapshot at offset `offset`). */
function connected({ at = 0, offset = 0, epoch = 'E1', ...opts } = {}) {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5, ...opts });
  m.start(at);
  const acts = m.onOpen(at);
  const id = sent(acts)[0].id;
  m.onFrame(frame(subscribed(offset, false, epoch, id), { type: 'operation_list', namespace: NS, epoch, offset, operations: [] }), at);
  assert.equal(m.state, 'connected');
  return m;
}

test('backoff: full jitter applied after the cap', () => {
  assert.equal(backoffDelay(0, 500, 30000, () => 0.999999), 499);
  assert.equal(backoffDelay(3, 500, 30000, () => 0.5), 2000);
  assert.equal(backoffDelay(6, 500, 30000, () => 0.999999), 29999); // 500·64 = 32000 > cap
  assert.equal(backoffDelay(40, 500, 30000, () => 0.5), 15000); // capped, then jittered: never lock-step
  assert.equal(backoffDelay(10000, 500, 30000, () => 0), 0);
  const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(20, 500, 30000, Math.random)));
  assert.ok(seen.size > 40, 'delays after the cap stay spread out');
});

test('splitFrame: several messages per frame, blank and broken lines skipped', () => {
  assert.deepEqual(splitFrame('{"a":1}\n{"b":2}\n\n{"c":3}\nnot json\n'), [{ a: 1 }, { b: 2 }, { c: 3 }]);
  assert.deepEqual(splitFrame('{"a":1}'), [{ a: 1 }]);
  assert.deepEqual(splitFrame(''), []);
});

test('urls: token in the WS query (browsers cannot set headers); SSE resumes with last_event_id', () => {
  assert.equal(wsUrl('http://h:1', null), 'ws://h:1/ws');
  assert.equal(wsUrl('https://h', 'a.b.c'), 'wss://h/ws?token=a.b.c');
  const u = new URL(sseUrl('http://h:1', 'n s', { operations: ['a.*', 'b'], kinds: ['k'] }, 't', 'E:5'));
  assert.equal(u.pathname, '/api/v1/stream');
  assert.equal(u.searchParams.get('namespace'), 'n s');
  assert.equal(u.searchParams.get('operations'), 'a.*,b');
  assert.equal(u.searchParams.get('kinds'), 'k');
  assert.equal(u.searchParams.get('last_event_id'), 'E:5');
  assert.equal(u.searchParams.get('token'), 't');
  assert.equal(u.searchParams.get('conflate'), 'true', 'the dashboard needs only the latest state');
});

test('first connect: subscribe without resume, snapshot replaces state', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0 });
  const a1 = m.start(0);
  assert.deepEqual(ofType(a1, 'open')[0], { type: 'open', transport: 'ws', namespace: NS, filter: null, token: null, lastEventId: null });
  assert.equal(m.state, 'connecting');
  const sub = sent(m.onOpen(10))[0];
  assert.equal(sub.type, 'subscribe');
  assert.equal(sub.namespace, NS);
  assert.equal(sub.resume, undefined);
  assert.equal(sub.conflate, true);
  const a2 = m.onFrame(frame(subscribed(7, false, 'E1', sub.id), ev(7)), 20); // event before the snapshot: ignored
  assert.equal(ofType(a2, 'event').length, 0);
  assert.equal(m.state, 'connected');
  const a3 = m.onFrame(frame({ type: 'operation_list', namespace: NS, epoch: 'E1', offset: 7, operations: [{ operation_id: 'x' }] }, ev(8)), 30);
  assert.equal(ofType(a3, 'snapshot')[0].operations.length, 1);
  assert.deepEqual(ofType(a3, 'synced')[0], { type: 'synced', mode: 'snapshot', recovered: 0, reconnect: false });
  assert.deepEqual(ofType(a3, 'event').map((a) => a.event.offset), [8]);
  assert.equal(m.offset, 8);
  assert.equal(m.status().disconnectedSince, null);
});

test('dedupe by offset, across frames and replays', () => {
  const m = connected({ offset: 5 });
  const acts = m.onFrame(frame(ev(6), ev(6), ev(5), ev(7)), 100);
  assert.deepEqual(ofType(acts, 'event').map((a) => a.event.offset), [6, 7]);
  assert.equal(m.duplicates, 2);
  assert.equal(m.gaps, 0);
  m.onFrame(frame(ev(9)), 110);
  assert.equal(m.gaps, 1, 'a hole in an unfiltered stream is counted');
});

test('reconnect resumes from (epoch, offset); recovered:true counts replayed updates', () => {
  const m = connected({ offset: 5 });
  m.onFrame(frame(ev(6)), 100);
  const lost = m.onClose(1006, '', 200);
  assert.equal(m.state, 'waiting');
  assert.equal(ofType(lost, 'probe').length, 0, 'it had opened: no probe');
  assert.equal(m.status().disconnectedSince, 200);
  assert.ok(m.retryAt >= 200 && m.retryAt < 200 + 500);
  assert.equal(ofType(m.tick(m.retryAt), 'open').length, 1);
  const sub = sent(m.onOpen(m.retryAt + 5))[0];
  assert.deepEqual(sub.resume, { epoch: 'E1', offset: 6 });
  const t = m.retryAt + 10;
  let acts = m.onFrame(frame(subscribed(9, true, 'E1', sub.id), ev(6), ev(7), ev(8)), t);
  assert.equal(ofType(acts, 'synced').length, 0, 'not done before the target offset');
  assert.equal(m.status().syncing, true, 'connected, but behind the hub until offset 9');
  assert.deepEqual(ofType(acts, 'event').map((a) => a.event.offset), [7, 8]);
  acts = m.onFrame(frame(ev(9), ev(10)), t + 1);
  assert.deepEqual(ofType(acts, 'synced')[0], { type: 'synced', mode: 'recovered', recovered: 3, reconnect: true });
  assert.equal(m.status().syncing, false);
  assert.equal(ofType(acts, 'status').at(-1)?.status.syncing, false, 'the page hears that it caught up');
  assert.equal(m.offset, 10);
});

test('a snapshot still to come is syncing too; its arrival ends it', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
  m.start(0);
  const id = sent(m.onOpen(0))[0].id;
  m.onFrame(frame(subscribed(3, false, 'E1', id)), 1);
  assert.equal(m.state, 'connected');
  assert.equal(m.status().syncing, true);
  const acts = m.onFrame(frame({ type: 'operation_list', namespace: NS, epoch: 'E1', offset: 3, operations: [] }), 2);
  assert.equal(m.status().syncing, false);
  assert.equal(ofType(acts, 'status').at(-1)?.status.syncing, false);
});

test('recovered with nothing missed: toast at once with 0', () => {
  const m = connected({ offset: 4 });
  m.onClose(1012, 'restart', 10);
  m.tick(m.retryAt);
  const sub = sent(m.onOpen(m.retryAt))[0];
  const acts = m.onFrame(frame(subscribed(4, true, 'E1', sub.id)), m.retryAt + 1);
  assert.deepEqual(ofType(acts, 'synced')[0], { type: 'synced', mode: 'recovered', recovered: 0, reconnect: true });
});

test('recovered:false (new epoch) → state replaced from the snapshot, offsets restart', () => {
  const m = connected({ offset: 50 });
  m.onClose(1006, '', 10);
  m.tick(m.retryAt);
  const sub = sent(m.onOpen(m.retryAt))[0];
  const t = m.retryAt + 1;
  let acts = m.onFrame(frame(subscribed(3, false, 'E2', sub.id)), t);
  assert.equal(ofType(acts, 'synced').length, 0);
  acts = m.onFrame(frame({ type: 'operation_list', namespace: NS, epoch: 'E2', offset: 3, operations: [{ operation_id: 'a' }] }, ev(4)), t + 1);
  assert.equal(ofType(acts, 'snapshot')[0].epoch, 'E2');
  assert.deepEqual(ofType(acts, 'synced')[0], { type: 'synced', mode: 'snapshot', recovered: 0, reconnect: true });
  assert.deepEqual(ofType(acts, 'event').map((a) => a.event.offset), [4], 'offset 4 < old 50 but a new epoch');
  assert.equal(m.epoch, 'E2');
});

test('attempt counter resets only after 5 s of uptime', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.999 });
  m.start(0);
  let now = 0;
  for (let i = 0; i < 5; i++) { m.onClose(1006, '', now); now = m.retryAt; m.tick(now); }
  assert.equal(m.attempt, 5);
  // Opens, but dies after 4.9 s: still backing off.
  m.onOpen(now); m.onClose(1006, '', now + 4900);
  assert.equal(m.attempt, 6);
  assert.ok(m.retryAt - (now + 4900) > 500 * 2 ** 5 * 0.99, 'delay keeps growing');
  now = m.retryAt; m.tick(now);
  m.onOpen(now); m.onClose(1006, '', now + 5000);
  assert.equal(m.attempt, 1, 'reset, then this failure counted');
  assert.ok(m.retryAt - (now + 5000) < 500);
});

test('a silent OPEN socket is dead after two heartbeat intervals (learned from heartbeats)', () => {
  const m = connected({ at: 0 });
  assert.equal(m.hbInterval, 30000, 'default until heartbeats are seen');
  m.onFrame(frame({ type: 'heartbeat', timestamp: 5_000, clients_connected: 1 }), 400);
  m.onFrame(frame({ type: 'heartbeat', timestamp: 6_000, clients_connected: 1 }), 1400);
  assert.equal(m.hbInterval, 1000);
  assert.equal(m.clockSkewMs, 6000 - 1400);
  const deadline = m.nextDeadline();
  assert.equal(deadline, 1400 + 2000 + 500);
  assert.deepEqual(m.tick(deadline - 1), []);
  const acts = m.tick(deadline);
  assert.equal(ofType(acts, 'close').length, 1, 'the dead socket is closed before another opens');
  assert.equal(m.state, 'waiting');
  assert.equal(m.status().disconnectedSince, deadline);
});

const hb = (m, now) => m.onFrame(frame({ type: 'heartbeat', timestamp: now, clients_connected: 1 }), now);

test('heartbeat: slack is a quarter of the interval, at least 500 ms', () => {
  assert.equal(heartbeatSlackMs(300), 500);
  assert.equal(heartbeatSlackMs(2000), 500);
  assert.equal(heartbeatSlackMs(2004), 501);
  assert.equal(heartbeatSlackMs(30000), 7500);
});

test('heartbeat: a hub at 300 ms is dead after 2 × 300 ms + 500 ms of silence, not 60 s', () => {
  const m = connected({ at: 0 });
  assert.equal(m.learnedHeartbeatMs, null);
  assert.equal(m.deadAfterMs(), 60000, 'configured until two heartbeats');
  hb(m, 120);
  assert.equal(m.learnedHeartbeatMs, null, 'one heartbeat is no interval');
  assert.equal(m.nextDeadline(), 120 + 60000);
  hb(m, 420);
  assert.equal(m.learnedHeartbeatMs, 300);
  assert.equal(m.status().heartbeatIntervalMs, 300);
  assert.equal(m.nextDeadline(), 420 + 1100);
  assert.deepEqual(m.tick(1519), []);
  assert.ok(m.healthy(1220) && !m.healthy(1221), 'healthy within one learned interval + slack');
  const acts = m.tick(1520);
  assert.equal(ofType(acts, 'close').length, 1);
  assert.equal(m.state, 'waiting');
  assert.equal(m.reason, 'no heartbeat within two intervals');
});

test('heartbeat: the learned interval never exceeds the configured one', () => {
  const m = connected({ at: 0, heartbeatIntervalMs: 1000 });
  hb(m, 100);
  hb(m, 5100);
  assert.equal(m.learnedHeartbeatMs, 1000);
  assert.equal(m.deadAfterMs(), 2000, 'learning never delays detection');
  assert.equal(m.nextDeadline(), 7100);
});

test('heartbeat: the largest recent gap wins; burst gaps are ignored', () => {
  const m = connected({ at: 0 });
  let t = 0;
  for (let i = 0; i < 5; i++) { t += 1000; hb(m, t); }
  assert.equal(m.learnedHeartbeatMs, 1000);
  t += 1800; hb(m, t);
  t += 10; hb(m, t);
  assert.ok(10 < MIN_HEARTBEAT_GAP_MS);
  assert.equal(m.learnedHeartbeatMs, 1800, 'a 10 ms gap is no sample');
  assert.equal(HEARTBEAT_GAP_WINDOW, 4);
  for (const expected of [1800, 1800, 1800, 1000]) {
    t += 1000; hb(m, t);
    assert.equal(m.learnedHeartbeatMs, expected);
  }
  t += 1600; hb(m, t);
  assert.equal(m.learnedHeartbeatMs, 1600, 'a longer gap raises it at once');
});

test('heartbeat: learned again on every connection', () => {
  const m = connected({ at: 0 });
  hb(m, 300); hb(m, 600);
  assert.equal(m.learnedHeartbeatMs, 300);
  m.onClose(1012, '', 700);
  m.tick(m.retryAt);
  m.onOpen(m.retryAt + 10);
  assert.equal(m.learnedHeartbeatMs, null, 'a restarted hub may beat at another pace');
  assert.equal(m.deadAfterMs(), 60000);
  hb(m, 2000);
  assert.equal(m.learnedHeartbeatMs, null, 'no gap spans two connections');
  hb(m, 7000);
  assert.equal(m.learnedHeartbeatMs, 5000);
  assert.equal(m.deadAfterMs(), 10000 + 1250);
});

/** Deterministic PRNG (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('heartbeat (random): never dead while the hub keeps beating, always dead after 2 learned intervals + slack', () => {
  for (let seed = 1; seed <= 500; seed++) {
    const r = rng(seed);
    const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
    const configured = int(100, 60000);
    const interval = Math.max(100, Math.floor(configured * int(1, 1000) / 1000));
    const jitter = Math.min(500, Math.floor(interval / 2));
    const start = int(0, 1000000);
    const m = connected({ at: start, heartbeatIntervalMs: configured });
    // Heartbeats on the hub's timer, delayed in order by up to `jitter`,
    // with other frames in between.
    const n = int(2, 40);
    const first = Math.max(1, int(0, interval));
    /** @type {Array<[number, boolean]>} */
    const frames = [];
    let prev = start;
    for (let k = 0; k < n; k++) {
      prev = Math.max(prev, start + first + k * interval + int(0, jitter));
      frames.push([prev, true]);
    }
    for (let i = int(0, 40); i > 0; i--) frames.push([int(start + 1, prev), false]);
    frames.sort((a, b) => a[0] - b[0]);
    const beats = [];
    for (const [at, isHb] of frames) {
      for (let d = m.nextDeadline(); d !== null && d <= at; d = m.nextDeadline()) {
        m.tick(d);
        assert.equal(m.state, 'connected', `seed ${seed}: dead at ${d} before the frame at ${at}`);
      }
      if (isHb) { hb(m, at); beats.push(at); } else m.onFrame(frame(ev(beats.length + frames.length + at)), at);
      assert.ok(m.healthy(at));
    }
    const gaps = beats.slice(1).map((b, i) => b - beats[i]).filter((g) => g >= MIN_HEARTBEAT_GAP_MS).slice(-HEARTBEAT_GAP_WINDOW);
    const learned = gaps.length ? Math.min(Math.max(...gaps), configured) : null;
    assert.equal(m.learnedHeartbeatMs, learned, `seed ${seed}`);
    const expected = learned === null ? 2 * configured : Math.min(2 * learned + heartbeatSlackMs(learned), 2 * configured);
    const last = frames[frames.length - 1][0];
    assert.equal(m.nextDeadline(), last + expected, `seed ${seed}`);
    assert.deepEqual(m.tick(last + expected - 1), [], `seed ${seed}`);
    assert.equal(m.state, 'connected');
    const acts = m.tick(last + expected);
    assert.equal(ofType(acts, 'close').length, 1, `seed ${seed}`);
    assert.equal(m.state, 'waiting');
    const real = interval + jitter;
    assert.ok(expected <= Math.min(2 * real + heartbeatSlackMs(real), 2 * configured), `seed ${seed}`);
  }
});

test('any frame counts as life; a busy stream without heartbeats is not dead', () => {
  const m = connected({ at: 0, heartbeatIntervalMs: 1000 });
  for (let t = 100; t < 10000; t += 500) m.onFrame(frame(ev(t)), t);
  assert.deepEqual(m.tick(9800), []);
  assert.equal(m.state, 'connected');
});

test('wake-ups: reconnect at once when waiting; ping-probe when connected', () => {
  const m = connected({ at: 0, heartbeatIntervalMs: 1000 });
  m.onClose(1006, '', 100);
  m.onFrame('x', 100);
  for (let i = 0; i < 6; i++) { m.tick(m.retryAt); m.onClose(1006, '', m.retryAt + 1); }
  assert.ok(m.retryAt > 1000);
  const acts = m.wake('online', 2000);
  assert.equal(ofType(acts, 'open').length, 1, 'online: no waiting for the backoff timer');
  assert.equal(m.state, 'connecting');
  assert.deepEqual(m.wake('visibilitychange', 2001), [], 'already connecting: nothing');

  const c = connected({ at: 0 });
  const probe = c.wake('visibilitychange', 1000);
  assert.equal(sent(probe)[0].type, 'ping');
  assert.equal(c.nextDeadline(), 1000 + 5000);
  const dead = c.tick(6000);
  assert.equal(ofType(dead, 'close').length, 1, 'unanswered ping after a wake → reconnect');
  const c2 = connected({ at: 0 });
  c2.wake('pageshow', 1000);
  c2.onFrame(frame({ type: 'pong', id: 99, timestamp: 1 }), 1200);
  assert.deepEqual(c2.tick(6000), [], 'answered: still connected');
  const c3 = connected({ at: 0, heartbeatIntervalMs: 1000 });
  assert.equal(ofType(c3.wake('visibilitychange', 60000), 'close').length, 1, 'silent for a minute (sleep): reconnect at once');
});

test('retry now skips the countdown', () => {
  const m = connected({ at: 0 });
  m.onClose(1006, '', 0);
  for (let i = 0; i < 8; i++) { m.tick(m.retryAt); m.onClose(1006, '', m.retryAt); }
  const acts = m.retryNow(m.retryAt - 10000);
  assert.equal(ofType(acts, 'open').length, 1);
});

test('auth: a 401 probe after a failed open → failed with the code; new token → reconnect', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
  m.start(0);
  const acts = m.onClose(1006, '', 5);
  assert.equal(ofType(acts, 'probe').length, 1, 'never opened: ask HTTP why');
  m.onProbe(401, 'AUTH_REQUIRED', 'a token is required', 20);
  assert.equal(m.state, 'failed');
  assert.equal(m.status().errorCode, 'AUTH_REQUIRED');
  assert.equal(m.nextDeadline(), null, 'no retries with a missing token');
  const again = m.setToken('tok', 30);
  assert.equal(ofType(again, 'open')[0].token, 'tok');
  m.onClose(1006, '', 40);
  m.onProbe(401, 'AUTH_FAILED', 'bad signature', 50);
  assert.equal(m.status().errorCode, 'AUTH_FAILED');
});

test('auth: a new token on a live WebSocket is a refresh, not a reconnect', () => {
  const m = connected({ at: 0, offset: 3 });
  const acts = m.setToken('new.token.jwt', 10);
  assert.deepEqual(acts.map((a) => a.type), ['send'], 'no close, no new open');
  const msg = sent(acts)[0];
  assert.equal(msg.type, 'refresh');
  assert.equal(msg.token, 'new.token.jwt');
  assert.equal(typeof msg.id, 'number');
  assert.equal(m.state, 'connected');
  m.onClose(1006, '', 20);
  const reopened = ofType(m.tick(m.retryAt), 'open');
  assert.equal(reopened[0]?.token, 'new.token.jwt', 'the next connection uses it');
});

test('auth: close 4001 after an error → failed, not retried', () => {
  const m = connected({ at: 0 });
  m.onFrame(frame({ type: 'error', code: 'TOKEN_EXPIRED', message: 'token expired' }), 10);
  m.onClose(4001, '', 11);
  assert.equal(m.state, 'failed');
  assert.equal(m.status().errorCode, 'TOKEN_EXPIRED');
});

test('auth: a refresh the hub refuses (error, then close 4001) reconnects with the token the link held', () => {
  const m = connected({ at: 0, offset: 4, token: 'good' });
  const msg = sent(m.setToken('forged', 10))[0];
  assert.equal(msg.type, 'refresh');
  const acts = m.onFrame(frame({ type: 'error', id: msg.id, code: 'AUTH_FAILED', message: 'bad signature' }), 11);
  assert.equal(ofType(acts, 'reply')[0]?.id, msg.id, 'the refresh gets its answer');
  assert.equal(m.token, 'good', 'the hub kept the link\'s token: so does the machine');
  m.onClose(4001, 'authentication failed', 12);
  assert.equal(m.state, 'waiting', 'not failed: the token in use was never refused');
  assert.equal(m.status().errorCode, null);
  const open = ofType(m.tick(m.retryAt), 'open')[0];
  assert.equal(open?.token, 'good');
  assert.equal(m.retryAt, null);
  assert.deepEqual(sent(m.onOpen(13))[0].resume, { epoch: 'E1', offset: 4 }, 'resumes where it was');
  // An accepted refresh becomes the link's token: a later refused one falls back to it.
  const m2 = connected({ at: 0, token: 'first' });
  const r1 = sent(m2.setToken('second', 10))[0];
  m2.onFrame(frame({ type: 'ok', id: r1.id }), 11);
  const r2 = sent(m2.setToken('forged', 20))[0];
  m2.onFrame(frame({ type: 'error', id: r2.id, code: 'AUTH_FAILED', message: 'no' }), 21);
  m2.onClose(4001, '', 22);
  assert.equal(ofType(m2.tick(m2.retryAt), 'open')[0]?.token, 'second');
  // The link's own token expired under the refresh: the new one goes with the next connection.
  const m3 = connected({ at: 0, token: 'expiring' });
  const r3 = sent(m3.setToken('fresh', 10))[0];
  m3.onFrame(frame({ type: 'error', id: r3.id, code: 'TOKEN_EXPIRED', message: 'token expired' }), 11);
  m3.onClose(4001, '', 12);
  assert.equal(m3.state, 'waiting');
  assert.equal(ofType(m3.tick(m3.retryAt), 'open')[0]?.token, 'fresh');
  // A token refused on a new connection still fails (nothing accepted to fall back on for that link).
  const m4 = new ConnectionMachine({ namespace: NS, random: () => 0.5, token: 'forged' });
  m4.start(0);
  m4.onClose(1006, '', 1);
  m4.onProbe(401, 'AUTH_FAILED', 'bad', 2);
  assert.equal(m4.state, 'failed');
});

test('auth: a refresh the hub accepts but whose token may not read the namespace ends the subscription → failed FORBIDDEN', () => {
  const m = connected({ at: 0, offset: 4, token: 'viewer' });
  const r = sent(m.setToken('other-ns', 10))[0];
  m.onFrame(frame({ type: 'ok', id: r.id }), 11);
  assert.equal(m.state, 'connected');
  const msg = 'the refreshed token does not allow namespace `default`: its subscription has ended';
  const acts = m.onFrame(frame({ type: 'error', code: 'FORBIDDEN', message: msg, data: { namespace: NS } }), 12);
  assert.equal(m.state, 'failed', 'no more events come: not connected');
  assert.equal(m.status().errorCode, 'FORBIDDEN');
  assert.equal(m.status().errorMessage, msg);
  assert.ok(ofType(acts, 'close').length === 1, 'the link that holds no subscription is closed');
  assert.ok(ofType(acts, 'status').some((a) => a.status.state === 'failed'));
  assert.equal(m.status().lastLiveAt, 12, 'the data is stale from the moment the subscription ended');
  assert.equal(m.nextDeadline(), null, 'not retried as it stands');
  // Another namespace (or another token) is a new request, with the token the hub accepted.
  const open = ofType(m.setSubscription('mine', null, 20), 'open')[0];
  assert.equal(open?.token, 'other-ns');
  // A FORBIDDEN about another namespace (or answering a request) leaves this subscription alone.
  const m2 = connected({ at: 0 });
  m2.onFrame(frame({ type: 'error', code: 'FORBIDDEN', message: 'x', data: { namespace: 'elsewhere' } }), 5);
  m2.onFrame(frame({ type: 'error', id: 99, code: 'FORBIDDEN', message: 'may not cancel', data: { namespace: NS } }), 6);
  assert.equal(m2.state, 'connected');
});

test('a refused subscription fails instead of looping', () => {
  const m = new ConnectionMachine({ namespace: 'secret', random: () => 0.5 });
  m.start(0);
  const sub = sent(m.onOpen(1))[0];
  const acts = m.onFrame(frame({ type: 'error', id: sub.id, code: 'FORBIDDEN', message: 'not allowed' }), 2);
  assert.equal(ofType(acts, 'close').length, 1);
  assert.equal(m.state, 'failed');
  assert.equal(m.status().errorCode, 'FORBIDDEN');
});

test('a subscription refused for now (RATE_LIMITED snapshots) waits retry_after_ms and tries again', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0 });
  m.start(0);
  const sub = sent(m.onOpen(1))[0];
  const refusal = {
    type: 'error', id: sub.id, code: 'RATE_LIMITED', message: 'the hub holds too many snapshots; try again shortly',
    data: { reason: 'snapshots', limit: 50000, retry_after_ms: 1000 },
  };
  const acts = m.onFrame(frame(refusal), 2);
  assert.equal(m.state, 'waiting', 'not failed: the hub said when to come back');
  assert.equal(ofType(acts, 'close').length, 1);
  assert.equal(m.retryAt, 1002, 'after retry_after_ms (jitter 0)');
  const st = ofType(acts, 'status').at(-1).status;
  assert.equal(st.errorCode, 'RATE_LIMITED', 'the status says why it waits');
  assert.match(st.errorMessage, /snapshots/);
  assert.equal(ofType(acts, 'server_error').length, 1);
  assert.ok(acts.findIndex((a) => a.type === 'status') < acts.findIndex((a) => a.type === 'server_error'),
    'the error is announced once the wait is set');
  assert.deepEqual(m.tick(1001), [], 'not before retry_after_ms');
  assert.equal(ofType(m.tick(1002), 'open').length, 1);
  // Refused again: again after retry_after_ms, plus jitter of up to a quarter of it.
  const m2 = new ConnectionMachine({ namespace: NS, random: () => 0.999 });
  m2.start(0);
  m2.onFrame(frame({ ...refusal, id: sent(m2.onOpen(1))[0].id }), 2);
  assert.ok(m2.retryAt >= 1002 && m2.retryAt <= 1252, `${m2.retryAt}`);
  // Then accepted: connected, the reason cleared.
  const sub2 = sent(m.onOpen(1003))[0];
  m.onFrame(frame(subscribed(0, false, 'E1', sub2.id), { type: 'operation_list', namespace: NS, epoch: 'E1', offset: 0, operations: [] }), 1004);
  assert.equal(m.state, 'connected');
  assert.equal(m.status().errorCode, null);
});

test('refusals for now without retry_after_ms use the backoff; SERVER_SHUTDOWN and STORE_UNAVAILABLE retry too', () => {
  for (const code of ['RATE_LIMITED', 'SERVER_SHUTDOWN', 'STORE_UNAVAILABLE']) {
    const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
    m.start(0);
    const sub = sent(m.onOpen(1))[0];
    m.onFrame(frame({ type: 'error', id: sub.id, code, message: 'later' }), 2);
    assert.equal(m.state, 'waiting', code);
    assert.equal(m.retryAt, 2 + backoffDelay(0, 500, 30000, () => 0.5), code);
    assert.equal(m.status().errorCode, code);
    // A plain lost link on the next attempt is no longer explained by it.
    m.tick(m.retryAt);
    m.onClose(1006, '', m.retryAt + 1);
    assert.equal(m.status().errorCode, null, code);
  }
});

test('permanent refusals of the subscription still fail', () => {
  for (const code of ['FORBIDDEN', 'BAD_MESSAGE', 'AUTH_REQUIRED']) {
    const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
    m.start(0);
    const sub = sent(m.onOpen(1))[0];
    m.onFrame(frame({ type: 'error', id: sub.id, code, message: 'no', data: { retry_after_ms: 10 } }), 2);
    assert.equal(m.state, 'failed', code);
    assert.equal(m.nextDeadline(), null, code);
  }
});

test('after a refused subscription, another namespace connects again; a refused token does not', () => {
  const m = new ConnectionMachine({ namespace: 'secret', random: () => 0.5 });
  m.start(0);
  const sub = sent(m.onOpen(1))[0];
  m.onFrame(frame({ type: 'error', id: sub.id, code: 'FORBIDDEN', message: "may not read 'secret'" }), 2);
  assert.equal(m.state, 'failed');
  const acts = m.setSubscription(NS, null, 10);
  const open = ofType(acts, 'open')[0];
  assert.equal(open?.namespace, NS, 'a new attempt, for the new namespace');
  assert.equal(m.state, 'connecting');
  assert.equal(m.status().errorCode, null, 'the old refusal no longer describes the page');
  const sub2 = sent(m.onOpen(11))[0];
  assert.equal(sub2.namespace, NS);
  m.onFrame(frame(subscribed(0, false, 'E1', sub2.id)), 12);
  assert.equal(m.state, 'connected');
  // A token the hub refused stays refused whatever the namespace: wait for a new token.
  const t = new ConnectionMachine({ namespace: NS, random: () => 0.5, token: 'bad' });
  t.start(0);
  t.onClose(1006, '', 1);
  t.onProbe(401, 'AUTH_FAILED', 'bad signature', 2);
  assert.equal(t.state, 'failed');
  assert.deepEqual(t.setSubscription('other', null, 3), []);
  assert.equal(t.state, 'failed');
  assert.equal(ofType(t.setToken('good', 4), 'open')[0].namespace, 'other', 'the next token connects to it');
});

test('SSE fallback after repeated WebSocket failures while HTTP works; resumes with Last-Event-ID', () => {
  const m = connected({ offset: 12 });
  m.onClose(1006, '', 0);
  let now = 0;
  for (let i = 0; i < 3; i++) {
    now = m.retryAt; m.tick(now);
    assert.equal(m.transport, 'ws');
    const acts = m.onClose(1006, '', now + 1);
    assert.equal(ofType(acts, 'probe').length, 1);
    m.onProbe(200, null, null, now + 2);
  }
  assert.equal(m.transport, 'sse');
  now = m.retryAt;
  const open = ofType(m.tick(now), 'open')[0];
  assert.equal(open.transport, 'sse');
  assert.equal(open.lastEventId, 'E1:12');
  assert.deepEqual(sent(m.onOpen(now + 1)), [], 'SSE: nothing to send');
  const acts = m.onFrame(frame(subscribed(13, true), ev(13)), now + 2);
  assert.equal(m.state, 'connected');
  assert.equal(ofType(acts, 'synced')[0].recovered, 1);
  assert.equal(m.request({ type: 'cancel' }).id, null, 'no socket to send on: use HTTP');
});

/** A machine connected over SSE at offset 12 (after three blocked WebSockets); `now` is when. */
function onSse(opts = {}) {
  const m = connected({ offset: 12, ...opts });
  m.onClose(1006, '', 0);
  for (let i = 0; i < 3; i++) {
    const now = m.retryAt; m.tick(now);
    m.onClose(1006, '', now + 1);
    m.onProbe(200, null, null, now + 2);
  }
  const now = m.retryAt;
  m.tick(now);
  m.onOpen(now + 1);
  m.onFrame(frame(subscribed(12, true)), now + 2);
  assert.equal(m.state, 'connected');
  assert.equal(m.transport, 'sse');
  return { m, now: now + 2 };
}

test('on SSE, WebSocket is tried again after wsRetryMs (± 25 %); a failed try keeps SSE and doubles the wait', () => {
  const { m, now } = onSse({ wsRetryMs: 1000, maxWsRetryMs: 3000 });
  const due = m.nextDeadline();
  assert.ok(due !== null && due >= now - 1 + 750 && due <= now - 1 + 1250, `first try near 1 s after the open (${due - now})`);
  assert.deepEqual(m.tick(due - 1), [], 'not before it is due');
  const tries = ofType(m.tick(due), 'try_ws');
  assert.deepEqual(tries, [{ type: 'try_ws', link: m.link, token: null }]);
  assert.deepEqual(m.tick(due + 1), [], 'one try at a time');
  assert.ok(m.nextDeadline() === null || m.nextDeadline() !== due, 'no deadline for a try already out');
  // It failed: SSE goes on, untouched, and the next try waits twice as long.
  assert.deepEqual(m.onWsTry(tries[0].link, false, due + 10), []);
  assert.equal(m.state, 'connected');
  assert.equal(m.transport, 'sse');
  const waits = [];
  let at = due + 10;
  for (let i = 0; i < 4; i++) {
    const next = m.wsTryAt;
    waits.push(next - at);
    const t = ofType(m.tick(next), 'try_ws')[0];
    at = next + 5;
    m.onWsTry(t.link, false, at);
  }
  assert.deepEqual(waits, [2000, 3000, 3000, 3000], 'doubled, then held at maxWsRetryMs (random 0.5: no jitter)');
});

test('a WebSocket that works moves the link over: SSE closed, WS opened at once, resumed, no outage reported', () => {
  const { m, now } = onSse({ wsRetryMs: 1000 });
  m.onFrame(frame(ev(13)), now + 10);
  const t = ofType(m.tick(m.wsTryAt), 'try_ws')[0];
  const at = m.wsTryAt + 50;
  const acts = m.onWsTry(t.link, true, at);
  assert.deepEqual(acts.map((a) => a.type), ['close', 'open', 'status']);
  assert.equal(acts[0].code, 1000);
  assert.equal(ofType(acts, 'open')[0].transport, 'ws');
  const st = ofType(acts, 'status')[0].status;
  assert.equal(st.state, 'connecting');
  assert.equal(st.switching, true, 'a planned move, not an outage');
  assert.equal(st.disconnectedSince, null);
  const sub = sent(m.onOpen(at + 5)).find((x) => x.type === 'subscribe');
  assert.deepEqual(sub.resume, { epoch: 'E1', offset: 13 }, 'resumes where SSE left off');
  const after = m.onFrame(frame(subscribed(14, true, 'E1', sub.id), ev(13), ev(14)), at + 10);
  assert.deepEqual(ofType(after, 'event').map((a) => a.event.offset), [14], 'no duplicate of what SSE delivered');
  assert.equal(ofType(after, 'synced')[0]?.reconnect, false, 'no "reconnected" toast for a planned move');
  assert.equal(m.state, 'connected');
  assert.equal(m.status().switching, false);
  assert.equal(m.transport, 'ws');
  assert.equal(m.wsTryAt, null, 'nothing more to try on WebSocket');
});

test('a try answered for an older link, or after the link changed, changes nothing', () => {
  const { m } = onSse({ wsRetryMs: 1000 });
  const t = ofType(m.tick(m.wsTryAt), 'try_ws')[0];
  assert.deepEqual(m.onWsTry(t.link - 1, true, m.wsTryAt + 1), []);
  // The SSE link drops before the answer: the answer is stale.
  m.onClose(1006, '', m.wsTryAt + 2);
  assert.deepEqual(m.onWsTry(t.link, true, m.retryAt), []);
  assert.equal(m.transport, 'sse', 'the SSE link is reopened as before');
});

/** `onSse`, then a try that works and the switch to WebSocket under way (`at`: when). */
function switching(opts = {}) {
  const { m } = onSse({ wsRetryMs: 1000, ...opts });
  const t = ofType(m.tick(m.wsTryAt), 'try_ws')[0];
  const at = m.wsTryAt + 1;
  m.onWsTry(t.link, true, at);
  assert.equal(m.transport, 'ws');
  return { m, at };
}

/** Asserts `acts` reopen SSE at once, resuming, shown as a switch, not an outage. */
function backOnSse(m, acts) {
  const open = ofType(acts, 'open')[0];
  assert.equal(open?.transport, 'sse', JSON.stringify(acts));
  assert.equal(open.lastEventId, 'E1:12', 'resumes where it was');
  assert.equal(ofType(acts, 'probe').length, 0, 'no probe: the hub is there');
  const st = m.status();
  assert.equal(st.state, 'connecting');
  assert.equal(st.switching, true);
  assert.equal(st.disconnectedSince, null, 'no outage');
  assert.equal(st.attempt, 0);
}

test('a switch whose WebSocket does not open goes straight back to SSE, no outage, and the tries slow down', () => {
  const { m, at } = switching();
  assert.equal(m.wsRetryDelay, 1000);
  backOnSse(m, m.onClose(1006, '', at + 5));
  assert.equal(m.wsRetryDelay, 2000, 'the next try waits twice as long');
  m.onOpen(at + 6);
  m.onFrame(frame(subscribed(12, true)), at + 7);
  assert.equal(m.state, 'connected');
  assert.equal(m.status().switching, false);
  assert.ok(m.wsTryAt >= at + 7 + 1500 - 1, `next try in about 2 s (${m.wsTryAt - at})`);
});

test('a switch that opens but is not subscribed within probeTimeoutMs goes back to SSE', () => {
  const { m, at } = switching({ probeTimeoutMs: 3000 });
  m.onOpen(at + 5);
  assert.equal(m.nextDeadline() <= at + 3000, true, 'the switch has a deadline');
  assert.deepEqual(m.tick(at + 2999).filter((a) => a.type !== 'status'), []);
  const acts = m.tick(at + 3000);
  assert.equal(ofType(acts, 'close')[0]?.code, 4000);
  backOnSse(m, acts);
});

test('a switched-to WebSocket that dies before it held goes back to SSE; one that held reconnects as WebSocket', () => {
  // Dies 500 ms after the switch (the hold is max(minUptimeMs, wsRetryMs) = 5 s).
  let { m, at } = switching();
  let sub = sent(m.onOpen(at + 5)).find((x) => x.type === 'subscribe');
  m.onFrame(frame(subscribed(12, true, 'E1', sub.id)), at + 10);
  assert.equal(m.state, 'connected');
  backOnSse(m, m.onClose(1006, '', at + 510));
  assert.equal(m.wsRetryDelay, 2000);

  // Holds 6 s, then dies: an ordinary loss, retried over WebSocket, and the tries start afresh.
  ({ m, at } = switching());
  sub = sent(m.onOpen(at + 5)).find((x) => x.type === 'subscribe');
  m.onFrame(frame(subscribed(12, true, 'E1', sub.id)), at + 10);
  const acts = m.onClose(1006, '', at + 6010);
  assert.equal(m.transport, 'ws');
  assert.equal(m.state, 'waiting');
  assert.equal(ofType(acts, 'open').length, 0);
  assert.equal(m.status().disconnectedSince, at + 6010, 'an outage like any other');
  assert.equal(m.wsRetryDelay, 1000);
});

test('wsRetryMs 0 never tries WebSocket again; below 1 s it is 1 s', () => {
  const { m } = onSse({ wsRetryMs: 0 });
  assert.equal(m.wsTryAt, null);
  assert.deepEqual(m.tick(10_000_000).filter((a) => a.type === 'try_ws'), []);
  const { m: fast, now } = onSse({ wsRetryMs: 10 });
  assert.ok(fast.wsTryAt >= now - 1 + 750, `clamped to 1 s ± 25 % (${fast.wsTryAt - now})`);
});

test('hub down (probe fails) never counts towards SSE', () => {
  const m = connected({});
  m.onClose(1006, '', 0);
  for (let i = 0; i < 10; i++) { m.tick(m.retryAt); m.onClose(1006, '', m.retryAt); m.onProbe(0, null, null, m.retryAt); }
  assert.equal(m.transport, 'ws');
});

test('switching namespace unsubscribes the old one and takes a fresh snapshot', () => {
  const m = connected({ offset: 9 });
  const acts = sent(m.setSubscription('other', null, 100));
  assert.deepEqual(acts.map((x) => x.type), ['unsubscribe', 'subscribe']);
  assert.equal(acts[0].namespace, NS);
  assert.equal(acts[1].namespace, 'other');
  assert.equal(acts[1].resume, undefined);
});

// ---- driver ------------------------------------------------------------

class FakeSocket {
  static all = [];
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; FakeSocket.all.push(this); }
  send(s) { this.sent.push(JSON.parse(s)); }
  close() { if (this.readyState < 2) { this.readyState = 3; } }
  serverOpen() { this.readyState = 1; this.onopen?.({}); }
  serverSend(...msgs) { this.onmessage?.({ data: frame(...msgs) }); }
  serverClose(code = 1006) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
}

function fakeEnv({ probeStatus = 401 } = {}) {
  let now = 1_000_000;
  const timers = new Map();
  let nextTimer = 1;
  const listeners = {};
  const env = {
    Date: { now: () => now },
    WebSocket: FakeSocket,
    EventSource: class { constructor(url) { this.url = url; FakeSocket.all.push(this); this.readyState = 0; } close() { this.readyState = 2; } },
    fetch: async () => {
      if (probeStatus === 0) throw new TypeError('fetch failed');
      return { ok: probeStatus < 300, status: probeStatus, json: async () => ({ error: { code: 'AUTH_REQUIRED', message: 'token needed' } }) };
    },
    setTimeout: (fn, ms) => { const id = nextTimer++; timers.set(id, { fn, at: now + ms }); return id; },
    clearTimeout: (id) => timers.delete(id),
    addEventListener: (n, fn) => { (listeners[n] ??= []).push(fn); },
    removeEventListener: () => {},
    location: { origin: 'http://hub.test:8765' },
    console,
    fire: (n) => (listeners[n] ?? []).forEach((fn) => fn({ type: n })),
    advance: (ms) => {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
      }
      now = end;
    },
  };
  return env;
}

const openSockets = () => FakeSocket.all.filter((s) => s.readyState < 2).length;

test('driver: never two sockets open, through churn, wake-ups and retries', async () => {
  FakeSocket.all = [];
  const env = fakeEnv({ probeStatus: 0 });
  const c = new HubClient({ env, namespace: NS });
  const events = [];
  c.on('event', (e) => events.push(e.offset));
  c.start();
  assert.equal(openSockets(), 1);
  const s1 = FakeSocket.all[0];
  assert.equal(s1.url, 'ws://hub.test:8765/ws');
  s1.serverOpen();
  assert.equal(s1.sent[0].type, 'subscribe');
  s1.serverSend(subscribed(0, false, 'E', s1.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] }, ev(1));
  assert.deepEqual(events, [1]);
  for (let i = 0; i < 30; i++) {
    env.fire(['online', 'pageshow', 'focus'][i % 3]);
    if (i % 4 === 0) c.retryNow();
    const live = FakeSocket.all.filter((s) => s.readyState < 2);
    assert.ok(live.length <= 1, `at most one socket (round ${i})`);
    if (i % 2) live[0]?.serverOpen?.();
    live[0]?.serverClose?.();
    await new Promise((r) => setImmediate(r));
    env.advance(700);
  }
  assert.ok(FakeSocket.all.length > 20, `churned through ${FakeSocket.all.length} sockets`);
  assert.ok(c.maxConcurrent <= 1);
  assert.ok(openSockets() <= 1);
  c.stop();
  assert.equal(openSockets(), 0);
});

test('driver: silent socket replaced after the heartbeat window; old socket closed first', () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const c = new HubClient({ env, namespace: NS, machine: { heartbeatIntervalMs: 1000 } });
  const states = [];
  c.on('status', (s) => states.push(s.state));
  c.start();
  const s1 = FakeSocket.all[0];
  s1.serverOpen();
  s1.serverSend(subscribed(0, false, 'E', s1.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] });
  env.advance(1900);
  assert.equal(s1.readyState, 1, 'still within 2 configured intervals');
  env.advance(200);
  assert.equal(s1.readyState, 3, 'closed by the client');
  assert.ok(states.includes('waiting'));
  env.advance(600);
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(openSockets(), 1);
});

test('driver: cancel over the socket resolves with the reply', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const c = new HubClient({ env, namespace: NS });
  c.start();
  const s = FakeSocket.all[0];
  s.serverOpen();
  const p = c.cancel('op-7');
  const msg = s.sent.at(-1);
  assert.deepEqual({ ...msg, id: 0 }, { type: 'cancel', namespace: NS, operation_id: 'op-7', id: 0 });
  s.serverSend({ type: 'ok', id: msg.id });
  assert.deepEqual(await p, { type: 'ok', id: msg.id });
});

test('driver: failed open + 401 probe → failed status, token then reconnects with ?token=', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const c = new HubClient({ env, namespace: NS });
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  c.start();
  FakeSocket.all[0].serverClose(1006);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(statuses.at(-1).state, 'failed');
  assert.equal(statuses.at(-1).errorCode, 'AUTH_REQUIRED');
  c.setToken('x.y.z');
  assert.equal(FakeSocket.all.at(-1).url, 'ws://hub.test:8765/ws?token=x.y.z');
  assert.equal(openSockets(), 1);
});

/** An unsigned JWT-shaped token (the client only reads its `exp`). */
const tokenExpiring = (expSec, sub = 'app') =>
  `e30.${Buffer.from(JSON.stringify({ sub, exp: expSec })).toString('base64url')}.sig`;

test('renewal: a fifth of the remaining life before exp, between 1 s and 60 s ahead', () => {
  assert.equal(renewalDelay(3600, 0), 3_540_000, 'an hour: 60 s early');
  assert.equal(renewalDelay(10, 0), 8_000, '10 s: 2 s early');
  assert.equal(renewalDelay(3, 0), 2_000, '3 s: 1 s early at least');
  assert.equal(renewalDelay(10, 20_000), 0, 'already past');
});

test('driver: getToken before the first connection, and a fresh token as refresh before exp', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const t0 = env.Date.now();
  const tokens = [tokenExpiring(t0 / 1000 + 10, 'first'), tokenExpiring(t0 / 1000 + 3600, 'second')];
  let asked = 0;
  const c = new HubClient({ env, namespace: NS, getToken: async () => tokens[asked++] });
  c.start();
  assert.equal(FakeSocket.all.length, 0, 'waits for the token');
  await new Promise((r) => setImmediate(r));
  assert.equal(asked, 1);
  const s1 = FakeSocket.all[0];
  assert.equal(s1.url, `ws://hub.test:8765/ws?token=${tokens[0]}`);
  s1.serverOpen();
  s1.serverSend(subscribed(0, false, 'E', s1.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] });
  env.advance(7_900);
  assert.equal(asked, 1, 'not yet: 2 s before exp');
  env.advance(200);
  await new Promise((r) => setImmediate(r));
  assert.equal(asked, 2);
  const refresh = s1.sent.find((m) => m.type === 'refresh');
  assert.equal(refresh?.token, tokens[1], 'sent on the live socket');
  assert.equal(FakeSocket.all.length, 1, 'no reconnect');
  c.stop();
});

test('driver: a token refused as expired is replaced once from getToken', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const fresh = tokenExpiring(env.Date.now() / 1000 + 3600, 'fresh');
  let asked = 0;
  const c = new HubClient({ env, namespace: NS, token: 'stale.token.x', getToken: async () => { asked += 1; return fresh; } });
  c.start();
  const s1 = FakeSocket.all[0];
  s1.serverOpen();
  s1.serverSend(subscribed(0, false, 'E', s1.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] });
  s1.serverSend({ type: 'error', code: 'TOKEN_EXPIRED', message: 'expired' });
  s1.serverClose(4001);
  assert.equal(c.status().state, 'failed');
  await new Promise((r) => setImmediate(r));
  assert.equal(asked, 1);
  assert.equal(FakeSocket.all.at(-1).url, `ws://hub.test:8765/ws?token=${fresh}`, 'reconnects with it');
  c.stop();
});

test('hub interval: GET /api/v1/status is asked for on every open; its heartbeat_interval_ms is expected, not capped at 30 s', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
  m.start(0);
  const opened = m.onOpen(0);
  const fetches = ofType(opened, 'fetch_status');
  assert.equal(fetches.length, 1, 'asked right after the open');
  m.onFrame(frame(subscribed(0, false, 'E', sent(opened)[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] }), 0);
  m.onHubStatus(fetches[0].link, { heartbeat_interval_ms: 70_000, finished_retention_ms: 3_600_000 }, 10);
  assert.equal(m.status().heartbeatIntervalMs, 70_000);
  assert.equal(m.deadAfterMs(), 140_000, 'two of the hub\'s intervals, not two assumed 30 s ones');
  // A hub beating (and reporting) every 70 s is never dropped.
  for (let t = 70_000; t <= 700_000; t += 70_000) {
    for (let d = m.nextDeadline(); d !== null && d <= t; d = m.nextDeadline()) m.tick(d);
    assert.equal(m.state, 'connected', `still connected at ${t}`);
    hb(m, t);
    assert.ok(m.healthy(t + 70_000), 'a full interval later it is still healthy (slack)');
  }
  assert.equal(m.learnedHeartbeatMs, 70_000);
  assert.equal(m.deadAfterMs(), 140_000);
});

test('hub interval: an answer for an older link is ignored; a new link starts from the assumption; system_status frames count too', () => {
  const m = connected({ at: 0, heartbeatIntervalMs: 30_000 });
  const staleLink = m.link;
  m.onClose(1006, '', 100);
  m.tick(m.retryAt);
  const acts = m.onOpen(m.retryAt);
  m.onHubStatus(staleLink, { heartbeat_interval_ms: 70_000 }, m.retryAt);
  assert.equal(m.expectedHeartbeatMs, 30_000, 'late answer of the previous link ignored');
  m.onHubStatus(ofType(acts, 'fetch_status')[0].link, { heartbeat_interval_ms: 90_000 }, m.retryAt);
  assert.equal(m.expectedHeartbeatMs, 90_000);
  m.onClose(1006, '', m.retryAt + 1);
  m.tick(m.retryAt);
  m.onOpen(m.retryAt);
  assert.equal(m.expectedHeartbeatMs, 30_000, 'fetch failed on this link: the assumption again');
  m.onFrame(frame({ type: 'system_status', data: { heartbeat_interval_ms: 45_000 }, is_stale: false }), m.retryAt + 5);
  assert.equal(m.expectedHeartbeatMs, 45_000, 'pushed system_status carries it too');
  assert.deepEqual(m.handle({ type: 'hub_status', link: null, data: { heartbeat_interval_ms: 'x' } }, m.retryAt + 6), []);
  assert.equal(m.expectedHeartbeatMs, 45_000, 'garbage ignored');
});

test('quiet link: unhealthy after one interval + slack of silence, dropped only after two', () => {
  const m = connected({ at: 0, heartbeatIntervalMs: 30_000 });
  m.onHubStatus(m.link, { heartbeat_interval_ms: 1000 }, 0);
  hb(m, 1000);
  assert.ok(m.healthy(2500));
  assert.ok(!m.healthy(2501), 'quiet after 1 s + 500 ms slack');
  assert.deepEqual(m.tick(2999), []);
  assert.equal(m.state, 'connected', 'still connected while quiet');
  m.tick(3000);
  assert.equal(m.state, 'waiting', 'dropped after two intervals');
});

test('driver: fetches /api/v1/status with the token after each open; emits it as system_status', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const asked = [];
  env.fetch = async (url, init) => {
    asked.push({ url, auth: init?.headers?.authorization });
    return { ok: true, status: 200, json: async () => ({ type: 'system_status', data: { connections: 3, heartbeat_interval_ms: 70_000 }, is_stale: false }) };
  };
  const c = new HubClient({ env, namespace: NS, token: 'a.b.c' });
  const statuses = [];
  c.on('system_status', (m) => statuses.push(m));
  c.start();
  FakeSocket.all[0].serverOpen();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(asked, [{ url: 'http://hub.test:8765/api/v1/status', auth: 'Bearer a.b.c' }]);
  assert.equal(statuses.length, 1);
  assert.equal(statuses[0].data.connections, 3);
  assert.equal(c.status().heartbeatIntervalMs, 70_000);
  c.stop();
});

test('driver: setToken resolves with the hub\'s answer to refresh; null when the token goes with a new connection', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const c = new HubClient({ env, namespace: NS, token: 'old.t.k' });
  c.start();
  const s = FakeSocket.all[0];
  s.serverOpen();
  s.serverSend(subscribed(0, false, 'E', s.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] });
  const ok = c.setToken('new.t.k');
  const r1 = s.sent.at(-1);
  assert.equal(r1.type, 'refresh');
  s.serverSend({ type: 'ok', id: r1.id });
  assert.deepEqual(await ok, { type: 'ok', id: r1.id });
  const refused = c.setToken('bad.t.k');
  const r2 = s.sent.at(-1);
  s.serverSend({ type: 'error', code: 'AUTH_FAILED', message: 'bad signature', id: r2.id });
  const answer = await refused;
  assert.equal(answer.type, 'error');
  assert.equal(answer.code, 'AUTH_FAILED');
  s.serverClose(4001);
  assert.equal(c.status().state, 'waiting', 'the refused token was the new one: not a failure');
  env.advance(0);
  assert.equal(FakeSocket.all.at(-1).url, 'ws://hub.test:8765/ws?token=new.t.k', 'back with the token the hub accepted');
  assert.equal(await c.setToken('next.t.k'), null, 'not live: a new connection carries it');
  assert.equal(FakeSocket.all.at(-1).url, 'ws://hub.test:8765/ws?token=next.t.k');
  assert.equal(openSockets(), 1);
  c.stop();
});

// ---- why an attempt failed, settled requests, token provider ------------

/** A machine whose WebSocket attempt failed before opening at t=0: waiting, probe asked for. */
function failedOpen(opts = {}) {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5, ...opts });
  m.start(0);
  const acts = m.onClose(1006, '', 10);
  const probe = ofType(acts, 'probe')[0];
  assert.deepEqual(probe, { type: 'probe', transport: 'ws', link: m.link });
  return { m, probe };
}

test('probe: 429 at the door (a connection cap) → waiting RATE_LIMITED, at least Retry-After, never SSE', () => {
  const { m, probe } = failedOpen();
  const acts = m.onProbe(429, 'RATE_LIMITED', 'this token\'s subject holds the most connections it may', 20,
    { link: probe.link, retryAfterMs: 4000, reason: 'connections_per_user' });
  assert.equal(m.state, 'waiting');
  assert.equal(m.status().errorCode, 'RATE_LIMITED');
  assert.match(m.status().errorMessage, /connections_per_user/);
  assert.ok(m.retryAt >= 20 + 4000, `${m.retryAt}`);
  assert.equal(ofType(acts, 'status').length, 1);
  let now = m.retryAt;
  for (let i = 0; i < 6; i++) {
    m.tick(now);
    const lost = m.onClose(1006, '', now + 5);
    assert.equal(ofType(lost, 'status')[0].status.errorCode, 'RATE_LIMITED', 'still said between refusals');
    assert.ok(m.retryAt >= now + 5 + 1000, 'and the last Retry-After still honoured');
    const p = ofType(lost, 'probe')[0];
    m.onProbe(429, 'RATE_LIMITED', 'full', now + 6, { link: p.link, retryAfterMs: 1000, reason: 'connections_per_user' });
    assert.equal(m.transport, 'ws', 'a refusal at the door is not a blocked WebSocket');
    now = m.retryAt;
  }
  // The door lets the next one through (the hub answers "would upgrade"): no longer rate limited.
  m.tick(now);
  const p = ofType(m.onClose(1006, '', now + 5), 'probe')[0];
  const through = m.onProbe(400, 'BAD_MESSAGE', '/ws takes WebSocket upgrades only', now + 6, { link: p.link });
  assert.equal(ofType(through, 'status')[0].status.errorCode, null);
  // Once a transport opens, a later failure is not blamed on the door either.
  const m2 = failedOpen().m;
  m2.onProbe(429, 'RATE_LIMITED', 'full', 20, { link: m2.link, retryAfterMs: 1000 });
  m2.tick(m2.retryAt);
  m2.onOpen(m2.retryAt);
  assert.equal(m2.status().errorCode, 'RATE_LIMITED', 'until subscribed');
  m2.onClose(1006, '', m2.retryAt + 1);
  assert.equal(m2.status().errorCode, null);
});

test('probe: an answer about an older link, or none (0: down or timed out), never counts towards SSE', () => {
  const { m, probe } = failedOpen({ sseAfterFailures: 1 });
  m.tick(m.retryAt); // a newer attempt…
  m.onClose(1006, '', m.retryAt + 1); // …failed too: waiting again, with a newer link
  m.onProbe(400, 'BAD_MESSAGE', '/ws takes WebSocket upgrades only', m.retryAt, { link: probe.link });
  assert.equal(m.transport, 'ws', 'the late answer is about a link that is gone');
  m.onProbe(0, null, null, m.retryAt, { link: m.link });
  assert.equal(m.transport, 'ws');
  m.onProbe(400, 'BAD_MESSAGE', '/ws takes WebSocket upgrades only', m.retryAt, { link: m.link });
  assert.equal(m.transport, 'sse', 'the hub would have upgraded: something between blocks WebSocket');
});

test('probe: the hub refuses this page\'s origin → failed ORIGIN_NOT_ALLOWED at once, no more attempts; retryNow tries again', () => {
  const { m, probe } = failedOpen();
  const acts = m.onProbe(0, 'ORIGIN_NOT_ALLOWED', 'add it with --allowed-origins http://app', 20, { link: probe.link });
  assert.equal(m.state, 'failed');
  assert.equal(m.status().errorCode, 'ORIGIN_NOT_ALLOWED');
  assert.equal(m.nextDeadline(), null);
  assert.equal(ofType(acts, 'status')[0].status.errorMessage, 'add it with --allowed-origins http://app');
  assert.equal(ofType(m.retryNow(30), 'open').length, 1);
  // A newer attempt already under way is closed: it cannot work either.
  const m2 = failedOpen().m;
  m2.tick(m2.retryAt);
  const acts2 = m2.onProbe(0, 'ORIGIN_NOT_ALLOWED', 'no', m2.retryAt, {});
  assert.equal(ofType(acts2, 'close').length, 1);
  assert.equal(m2.state, 'failed');
});

test('open failed (new WebSocket() threw): a failed attempt with its reason, the timers keep running', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
  m.start(0);
  const acts = m.openFailed('cannot open ws://h/ws from an https: page (mixed content)', 0);
  assert.equal(m.state, 'waiting');
  assert.match(m.status().reason, /mixed content/);
  assert.equal(m.status().attempt, 1);
  assert.notEqual(m.nextDeadline(), null);
  assert.equal(ofType(acts, 'close').length, 0, 'nothing was open');
  assert.deepEqual(m.openFailed('late', 0), [], 'only while connecting');
  assert.equal(ofType(m.tick(m.retryAt), 'open').length, 1, 'tried again');
});

test('requests sent on a link are settled at once when it drops, or on stop: CONNECTION_LOST, outcome unknown', () => {
  const m = connected({ heartbeatIntervalMs: 1000 });
  const a = m.request({ type: 'cancel', namespace: NS, operation_id: 'x' });
  const b = m.request({ type: 'cancel', namespace: NS, operation_id: 'y' });
  const answered = m.onFrame(frame({ type: 'ok', id: b.id }), 10);
  assert.deepEqual(ofType(answered, 'reply').map((r) => r.id), [b.id]);
  const lost = m.tick(m.livenessDeadline());
  const replies = ofType(lost, 'reply');
  assert.deepEqual(replies.map((r) => r.id), [a.id], 'only the unanswered one');
  assert.equal(replies[0].message.code, 'CONNECTION_LOST');
  assert.equal(replies[0].message.outcome, 'unknown');
  const m2 = connected();
  const c = m2.request({ type: 'cancel', namespace: NS, operation_id: 'x' });
  m2.setToken('new.t.k', 5); // a refresh, outstanding too
  const stopped = ofType(m2.stop(10), 'reply');
  assert.deepEqual(stopped.map((r) => r.message.code), ['CONNECTION_LOST', 'CONNECTION_LOST']);
  assert.ok(stopped.some((r) => r.id === c.id));
  assert.deepEqual(ofType(m2.stop(11), 'reply'), [], 'settled once');
});

test('RATE_LIMITED for the connection\'s own limits (subscriptions, filters) is final, as in hub-client', () => {
  for (const reason of ['subscriptions', 'filters']) {
    const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
    m.start(0);
    const id = sent(m.onOpen(0))[0].id;
    const acts = m.onFrame(frame({ type: 'error', id, code: 'RATE_LIMITED', message: 'too many', data: { reason, limit: 128 } }), 5);
    assert.equal(m.state, 'failed', reason);
    assert.equal(m.status().errorCode, 'RATE_LIMITED');
    assert.match(m.status().errorMessage, new RegExp(reason));
    assert.equal(ofType(acts, 'close').length, 1);
    assert.equal(m.nextDeadline(), null);
  }
});

test('status: attempt 0 and no reason once connected (the backoff still needs the uptime rule)', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
  m.start(0);
  m.onClose(1006, 'refused', 1);
  m.tick(m.retryAt);
  assert.equal(m.status().attempt, 1);
  const id = sent(m.onOpen(2000))[0].id;
  m.onFrame(frame(subscribed(0, false, 'E', id)), 2001);
  assert.equal(m.status().state, 'connected');
  assert.equal(m.status().attempt, 0);
  assert.equal(m.status().reason, null);
  assert.equal(m.attempt, 1, 'internally kept until the connection has lived minUptimeMs');
});

test('token unavailable: waiting with the provider\'s error, no connection without a token; a token connects; null retryAt fails', () => {
  const m = new ConnectionMachine({ namespace: NS, random: () => 0.5 });
  const acts = m.tokenUnavailable('getToken failed: 500', 2000, 0);
  assert.equal(m.state, 'waiting');
  assert.equal(m.status().errorCode, 'TOKEN_UNAVAILABLE');
  assert.equal(m.status().retryAt, 2000);
  assert.equal(ofType(acts, 'status').length, 1);
  assert.equal(m.nextDeadline(), null, 'the driver asks the provider, not the machine\'s timer');
  assert.deepEqual(m.tick(5000), []);
  assert.deepEqual(m.wake('online', 5000), [{ type: 'get_token' }]);
  assert.deepEqual(m.start(5000), [], 'start does not connect without the token');
  const open = ofType(m.setToken('a.b.c', 6000), 'open')[0];
  assert.equal(open.token, 'a.b.c');
  assert.equal(m.status().errorCode, null);
  const c = connected();
  assert.deepEqual(c.tokenUnavailable('x', 10, 5), [], 'while connected the link\'s token still works');
  const f = new ConnectionMachine({ namespace: NS });
  f.tokenUnavailable('gave up', null, 0);
  assert.equal(f.state, 'failed');
  assert.equal(f.status().errorCode, 'TOKEN_UNAVAILABLE');
});

test('urls: a path prefix in the hub URL is kept (a hub behind a reverse proxy)', () => {
  assert.equal(wsUrl('https://x.example/progress/', null), 'wss://x.example/progress/ws');
  assert.equal(wsUrl('https://x.example/progress', 't'), 'wss://x.example/progress/ws?token=t');
  assert.equal(new URL(sseUrl('http://x/p', NS, null, null, null)).pathname, '/p/api/v1/stream');
  assert.equal(hubUrl('http://h:1', 'api/v1/status').toString(), 'http://h:1/api/v1/status');
});

test('driver: the probe after a failed WebSocket asks GET /ws; unanswered within httpProbeTimeoutMs it means "unreachable"', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const urls = [];
  env.fetch = (url) => { urls.push(url); return new Promise(() => {}); }; // a frozen hub
  const c = new HubClient({ env, namespace: NS, httpProbeTimeoutMs: 1000, machine: { sseAfterFailures: 1 } });
  c.start();
  FakeSocket.all[0].serverClose(1006);
  assert.equal(urls[0], 'http://hub.test:8765/ws');
  env.advance(1000);
  await new Promise((r) => setImmediate(r));
  assert.equal(c.status().transport, 'ws', 'a timed-out probe is no evidence of a blocked WebSocket');
  c.stop();
});

test('driver: a 429 probe reads Retry-After; the wait honours it', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  env.fetch = async () => ({
    ok: false, status: 429, headers: { get: (h) => (h === 'retry-after' ? '3' : null) },
    json: async () => ({ error: { code: 'RATE_LIMITED', message: 'full', data: { reason: 'connections_per_user', limit: 1 } } }),
  });
  const c = new HubClient({ env, namespace: NS });
  c.start();
  const t0 = env.Date.now();
  FakeSocket.all[0].serverClose(1006);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const s = c.status();
  assert.equal(s.errorCode, 'RATE_LIMITED');
  assert.ok(s.retryAt >= t0 + 3000, `${s.retryAt - t0}`);
  c.stop();
});

test('driver: a page on another origin whose probe the browser blocks, but which gets an opaque answer → ORIGIN_NOT_ALLOWED', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  env.location = { origin: 'http://app.test', protocol: 'http:' };
  env.fetch = async (_url, init) => {
    if (init?.mode === 'no-cors') return { type: 'opaque', status: 0, ok: false };
    throw new TypeError('Failed to fetch');
  };
  const c = new HubClient({ env, url: 'http://hub.test:8765', namespace: NS });
  c.start();
  FakeSocket.all[0].serverClose(1006);
  await until(async () => c.status().state === 'failed', { what: 'failed', timeout: 1000, interval: 1 });
  assert.equal(c.status().errorCode, 'ORIGIN_NOT_ALLOWED');
  assert.match(c.status().errorMessage, /--allowed-origins http:\/\/app\.test/);
});

test('driver: new WebSocket() throwing does not throw from start(); mixed content is named, wss suggested', () => {
  const env = fakeEnv();
  env.location = { origin: 'https://app.test', protocol: 'https:' };
  env.WebSocket = class { constructor() { throw new DOMException('insecure', 'SecurityError'); } };
  const c = new HubClient({ env, url: 'http://hub.test:8765', namespace: NS });
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  c.start();
  assert.equal(statuses.at(-1).state, 'waiting', 'the failure comes after the `connecting` status');
  assert.match(c.status().reason, /mixed content.*https:\/\//);
  assert.notEqual(c.timer, null, 'the retry timer runs');
  c.stop();
});

test('token provider: the same token again is asked for again before expiry, not left to expire', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const t0 = env.Date.now();
  const first = tokenExpiring(t0 / 1000 + 20, 'first');
  const second = tokenExpiring(t0 / 1000 + 3600, 'second');
  let asked = 0;
  // A caching provider: the same token until 15 s, then a new one.
  const c = new HubClient({ env, namespace: NS, getToken: async () => { asked += 1; return env.Date.now() - t0 < 17_000 ? first : second; } });
  c.start();
  await new Promise((r) => setImmediate(r));
  const s1 = FakeSocket.all[0];
  s1.serverOpen();
  s1.serverSend(subscribed(0, false, 'E', s1.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] });
  for (let i = 0; i < 40 && !s1.sent.some((m) => m.type === 'refresh'); i++) {
    env.advance(500);
    await new Promise((r) => setImmediate(r));
  }
  const refresh = s1.sent.find((m) => m.type === 'refresh');
  assert.equal(refresh?.token, second, `renewed before exp (asked ${asked} times)`);
  assert.ok(env.Date.now() - t0 < 20_000, 'before the first token expired');
  assert.equal(FakeSocket.all.length, 1);
  c.stop();
});

test('token provider: an error page instead of a token, or a throw, → TOKEN_UNAVAILABLE, asked again with backoff, no tokenless connect', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const good = tokenExpiring(env.Date.now() / 1000 + 3600);
  const answers = [() => { throw new Error('provider down'); }, () => 'Internal Server Error', () => good];
  const c = new HubClient({ env, namespace: NS, getToken: async () => answers.shift()() });
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  c.start();
  await new Promise((r) => setImmediate(r));
  assert.equal(FakeSocket.all.length, 0, 'no connection without a token');
  assert.equal(c.status().errorCode, 'TOKEN_UNAVAILABLE');
  assert.match(c.status().errorMessage, /provider down/);
  env.advance(1250);
  await new Promise((r) => setImmediate(r));
  assert.match(c.status().errorMessage, /not a token: "Internal Server Error"/);
  assert.equal(FakeSocket.all.length, 0);
  env.advance(2500);
  await new Promise((r) => setImmediate(r));
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(FakeSocket.all[0].url, `ws://hub.test:8765/ws?token=${good}`);
  assert.equal(c.status().errorCode, null);
  c.stop();
});

test('token provider: AUTH_FAILED asks it again (first at once, then with backoff), bounded; a refused same token counts', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  let asked = 0;
  const bad = () => tokenExpiring(env.Date.now() / 1000 + 3600, `bad${asked}`);
  const c = new HubClient({ env, namespace: NS, token: 'x.y.z', getToken: async () => { asked += 1; return bad(); } });
  c.start();
  for (let round = 0; round < 12; round++) {
    const s = FakeSocket.all.at(-1);
    if (s.readyState < 2) s.serverClose(1006); // the 401 probe fails it
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    env.advance(40_000);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(asked, MAX_TOKEN_RETRIES, 'asked again, but not forever');
  assert.equal(c.status().state, 'failed');
  assert.equal(c.status().errorCode, 'AUTH_REQUIRED');
  c.stop();
});

test('token provider: after a refused refresh the next renewal is timed from the token the link still holds', async () => {
  FakeSocket.all = [];
  const env = fakeEnv();
  const t0 = env.Date.now();
  const held = tokenExpiring(t0 / 1000 + 100, 'held');
  const refused = tokenExpiring(t0 / 1000 + 3600, 'refused');
  let asked = 0;
  const c = new HubClient({ env, namespace: NS, token: held, machine: { heartbeatIntervalMs: 3_600_000 },
    getToken: async () => { asked += 1; return refused; } });
  c.start();
  const s1 = FakeSocket.all[0];
  s1.serverOpen();
  s1.serverSend(subscribed(0, false, 'E', s1.sent[0].id), { type: 'operation_list', namespace: NS, epoch: 'E', offset: 0, operations: [] });
  env.advance(renewalDelay(t0 / 1000 + 100, t0));
  await new Promise((r) => setImmediate(r));
  assert.equal(asked, 1);
  const refresh = s1.sent.find((m) => m.type === 'refresh');
  s1.serverSend({ type: 'error', id: refresh.id, code: 'AUTH_FAILED', message: 'bad signature' });
  await new Promise((r) => setImmediate(r));
  assert.equal(c.machine.token, held, 'the link keeps its token');
  const at = c.renewTimer === null ? null : env.Date.now();
  assert.notEqual(at, null, 'a renewal is scheduled');
  env.advance(30_000);
  await new Promise((r) => setImmediate(r));
  assert.equal(asked, 2, 'asked again before the held token expires, not an hour later');
  c.stop();
});
