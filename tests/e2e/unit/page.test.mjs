// Unit tests of the dashboard's pure modules (no DOM): formatting, globs,
// the operation store, connection texts, tokens, timeline lanes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percent, duration, rate, rateEta, bytes, globToRegExp, compileFilter, shortLabel } from '../../../web/format.js';
import { OperationStore } from '../../../web/store.js';
import { indicator, bannerText, staleText, toastText, sparkPoints, pageTitle } from '../../../web/status.js';
import { decodeClaims, mayCancel, checkToken, explainAuth } from '../../../web/auth.js';
import { packLanes, axisIntervals, LABEL_PX } from '../../../web/timeline.js';

const op = (id, state = 'running', extra = {}) => ({
  operation_id: id, namespace: 'default', name: id.toUpperCase(), kind: 'k', state, progress: 0, current: null, total: null,
  step: null, message: null, details: null, error: null, parent_id: null, started_at: 1000, updated_at: 1000,
  finished_at: state === 'running' ? null : 2000, rate: null, eta_seconds: null, cancel_requested: false, last_offset: 1, ...extra,
});

test('format', () => {
  assert.equal(percent(42.123), '42.1 %');
  assert.equal(percent(99.97), '99.9 %', 'never shows 100 before it is done');
  assert.equal(percent(null), '–');
  assert.equal(duration(5), '5 s');
  assert.equal(duration(125), '2 m 05 s');
  assert.equal(duration(7260), '2 h 01 m');
  assert.equal(duration(null), '–');
  assert.equal(rate(2.345), '2.3 %/s');
  assert.equal(rate(0.05), '3.00 %/min');
  assert.equal(bytes(1536), '1.5 KiB');
  assert.equal(shortLabel('etl'), 'etl');
  assert.equal(shortLabel('x'.repeat(40)), 'x'.repeat(40));
  assert.equal(shortLabel('x'.repeat(90)), `${'x'.repeat(39)}…`, 'long kinds shortened for the Kind list');
  assert.equal(Array.from(shortLabel('é'.repeat(50), 10)).length, 10);
});

test('globs follow the protocol: * any run, ? one, the rest literal', () => {
  assert.ok(globToRegExp('render.*').test('render.42'));
  assert.ok(!globToRegExp('render.*').test('renderX42'));
  assert.ok(globToRegExp('a?c').test('abc'));
  assert.ok(!globToRegExp('a?c').test('abbc'));
  assert.ok(globToRegExp('x(1)+[2]').test('x(1)+[2]'));
  const f = compileFilter({ glob: 'build.*', kind: '', state: 'active' });
  assert.ok(f(op('build.1')));
  assert.ok(f(op('build.2', 'stalled')));
  assert.ok(!f(op('build.3', 'completed')));
  assert.ok(!f(op('test.1')));
  const sub = compileFilter({ glob: 'BUI', kind: 'k', state: '' });
  assert.ok(sub(op('build.1')), 'plain text: substring, case-insensitive');
  assert.ok(!compileFilter({ glob: '', kind: 'other', state: '' })(op('a')));
});

test('store: snapshot replaces, events replace state, changes are taken once', () => {
  const s = new OperationStore();
  s.apply(op('old'));
  s.take();
  s.replace([op('a'), op('b', 'completed')]);
  let c = s.take();
  assert.equal(c.reset, true);
  assert.deepEqual([...c.dirty].sort(), ['a', 'b', 'old'], 'removed ids are dirty too');
  assert.equal(s.ops.has('old'), false);
  assert.equal(s.finishedCount, 1);
  s.apply(op('a', 'failed', { error: 'x' }), 5000);
  s.apply(op('a', 'failed', { error: 'x' }), 5001);
  c = s.take();
  assert.deepEqual([...c.dirty], ['a']);
  assert.equal(c.finishedChanged, true);
  assert.equal(c.newestTimestamp, 5001);
  assert.equal(s.finishedCount, 2);
  assert.deepEqual(s.counts(), { running: 0, stalled: 0, completed: 1, failed: 1, canceled: 0 });
  assert.equal(s.take().dirty.size, 0);
});

test('store: finished operations are bounded, oldest finished dropped first', () => {
  const s = new OperationStore({ maxFinished: 3 });
  for (let i = 0; i < 5; i++) s.apply(op(`f${i}`, 'completed', { finished_at: 1000 + i }));
  s.apply(op('r'));
  assert.deepEqual([...s.ops.keys()].sort(), ['f2', 'f3', 'f4', 'r']);
  assert.deepEqual(s.recentlyFinished(2).map((o) => o.operation_id), ['f4', 'f3']);
});

test('store: finished operations expire with the hub\'s retention; running ones never', () => {
  const s = new OperationStore();
  s.replace([op('r'), op('old', 'completed', { finished_at: 1000 }), op('new', 'failed', { finished_at: 5000 }), op('x', 'canceled', { finished_at: null })]);
  s.take();
  assert.equal(s.expire(3999, 3000), 0, 'not before finished_at + retention');
  assert.equal(s.expire(4000, 3000), 1);
  let c = s.take();
  assert.deepEqual([...c.dirty], ['old'], 'the dropped row is dirty (removed from the view)');
  assert.equal(c.finishedChanged, true);
  assert.equal(s.finishedCount, 2);
  assert.equal(s.expire(1e12, 3000), 1, 'a finished operation without finished_at is kept');
  assert.deepEqual([...s.ops.keys()].sort(), ['r', 'x']);
  assert.equal(s.finishedCount, 1);
  c = s.take();
  assert.deepEqual([...c.dirty], ['new']);
});

test('rate and ETA: no countdown while stalled, nothing once finished', () => {
  assert.deepEqual(rateEta(op('a', 'running', { rate: 7.6, eta_seconds: 8 })), { rate: '7.6 %/s', eta: 'ETA 8 s' });
  assert.deepEqual(rateEta(op('a', 'stalled', { rate: 7.6, eta_seconds: 8 })), { rate: 'stalled', eta: 'ETA unknown' },
    'an old estimate is not shown either');
  assert.deepEqual(rateEta(op('a', 'stalled', { rate: 7.6, eta_seconds: null })), { rate: 'stalled', eta: 'ETA unknown' });
  assert.deepEqual(rateEta(op('a', 'running')), { rate: '', eta: '' }, 'no estimate yet');
  assert.deepEqual(rateEta(op('a', 'completed', { rate: 3, eta_seconds: 1 })), { rate: '', eta: '' });
});

const st = (over) => ({
  state: 'connected', transport: 'ws', attempt: 0, retryAt: null, disconnectedSince: null, lastLiveAt: 0,
  errorCode: null, errorMessage: null, heartbeatIntervalMs: 1000, clockSkewMs: 0, everConnected: true, reason: null, ...over,
});

test('connection texts: a subscription refused for now is a wait with its reason, not a failure', () => {
  const busy = st({ state: 'waiting', disconnectedSince: 0, retryAt: 4500, errorCode: 'RATE_LIMITED', errorMessage: 'too many unread snapshots (snapshots)' });
  assert.deepEqual(indicator(busy, 3000), { cls: 'disconnected', symbol: '○', text: 'Waiting: RATE_LIMITED — retry in 2 s' });
  assert.equal(bannerText(busy, 3000), 'Live updates paused — RATE_LIMITED: too many unread snapshots (snapshots) — retrying in 2 s');
  assert.doesNotMatch(indicator(busy, 3000).text, /Failed/);
});

test('connection texts: symbol, colour class and words, banner after 2 s with countdown', () => {
  assert.deepEqual(indicator(st({}), 0), { cls: 'connected', symbol: '●', text: 'Connected' });
  assert.deepEqual(indicator(st({ syncing: true }), 0), { cls: 'syncing', symbol: '◐', text: 'Catching up…' },
    'not "Connected" while the missed events are still coming');
  assert.equal(indicator(st({ state: 'connecting' }), 0).symbol, '◐');
  assert.equal(indicator(st({ state: 'connecting', everConnected: false }), 0).text, 'Connecting…');
  assert.deepEqual(indicator(st({ state: 'waiting', retryAt: 4500 }), 1000), { cls: 'disconnected', symbol: '○', text: 'Disconnected — retry in 4 s' });
  assert.equal(indicator(st({ state: 'failed', errorCode: 'AUTH_FAILED' }), 0).cls, 'failed');
  assert.deepEqual(indicator(st({}), 0, false), { cls: 'quiet', symbol: '◌', text: 'Link quiet — data may be stale' },
    'connected but silent past one heartbeat: not green');
  assert.equal(indicator(st({ state: 'waiting', retryAt: 4500 }), 1000, false).cls, 'disconnected', 'quiet only means something while connected');
  assert.equal(bannerText(st({}), 0), null);
  assert.equal(bannerText(st({ state: 'waiting', disconnectedSince: 1000, retryAt: 9000 }), 3000), null, 'not before 2 s');
  assert.equal(bannerText(st({ state: 'waiting', disconnectedSince: 1000, retryAt: 9000 }), 3001), 'Live updates paused — reconnecting in 6 s');
  assert.equal(bannerText(st({ state: 'waiting', disconnectedSince: 1000, retryAt: 9000 }), 7100), 'Live updates paused — reconnecting in 2 s');
  assert.equal(bannerText(st({ state: 'connecting', disconnectedSince: 0 }), 5000), 'Live updates paused — reconnecting now…');
  assert.equal(staleText(1000, 13_400), 'stale · 12 s');
  assert.equal(toastText({ type: 'synced', mode: 'recovered', recovered: 7 }), 'Live again — 7 updates recovered');
  assert.equal(toastText({ type: 'synced', mode: 'recovered', recovered: 1 }), 'Live again — 1 update recovered');
  assert.equal(toastText({ type: 'synced', mode: 'snapshot', recovered: 0 }), 'Live again — reloaded from snapshot');
  assert.equal(sparkPoints([0, 10], 100, 20), '0.0,19.0 100.0,1.0');
});

test('page title: the namespace, and when the data is not live, why (first, for a background tab)', () => {
  assert.equal(pageTitle(st({}), 'default'), 'default · progress-hub');
  assert.equal(pageTitle(st({}), 'media', false), '⚠ link quiet · media · progress-hub');
  assert.equal(pageTitle(st({ syncing: true }), 'default'), '⚠ catching up · default · progress-hub');
  assert.equal(pageTitle(st({ state: 'waiting', retryAt: 9000, lastLiveAt: 1000 }), 'default'), '⚠ stale · default · progress-hub');
  assert.equal(pageTitle(st({ state: 'connecting', lastLiveAt: 1000 }), 'default'), '⚠ stale · default · progress-hub');
  assert.equal(pageTitle(st({ state: 'failed', errorCode: 'FORBIDDEN', lastLiveAt: 1000 }), 'default'), '⚠ failed · default · progress-hub');
  assert.equal(pageTitle(st({ state: 'failed', errorCode: 'AUTH_REQUIRED', lastLiveAt: null }), 'default'), '⚠ failed · default · progress-hub');
  assert.equal(pageTitle(st({ state: 'connecting', lastLiveAt: null, everConnected: false }), 'default'), '⚠ connecting · default · progress-hub');
  assert.equal(pageTitle(st({ state: 'waiting', retryAt: 900, lastLiveAt: null }), 'default'), '⚠ disconnected · default · progress-hub');
});

test('store: nothing is known before the first snapshot (no "0 operations"), nor after a namespace switch', () => {
  const s = new OperationStore();
  assert.equal(s.known, false);
  s.replace([]);
  assert.equal(s.known, true, 'an empty snapshot is knowledge: 0 operations');
  s.replace([op('a')]);
  s.clear();
  assert.equal(s.known, false);
  assert.equal(s.ops.size, 0);
});

function jwt(claims) {
  const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'HS256' })}.${b(claims)}.sig`;
}

test('tokens: claims decoded for the UI, expiry spotted, cancel offered by role and namespace', () => {
  const t = jwt({ sub: 'ana', roles: ['operator'], namespaces: ['team-*'], exp: 2e9 });
  assert.equal(decodeClaims(t)?.sub, 'ana');
  assert.equal(decodeClaims('nope'), null);
  assert.equal(mayCancel(t, 'team-a'), true);
  assert.equal(mayCancel(t, 'default'), false);
  assert.equal(mayCancel(jwt({ exp: 2e9 }), 'default'), false, 'absent roles mean viewer');
  assert.equal(mayCancel(jwt({ roles: ['admin'], exp: 2e9 }), 'default'), true, 'absent namespaces mean default');
  assert.equal(mayCancel(null, 'default'), true, 'open hub: offered, refusal explained');
  assert.match(checkToken(jwt({ exp: 1 }), Date.now()) ?? '', /expired/);
  assert.match(checkToken('abc', Date.now()) ?? '', /not a JWT/);
  assert.equal(checkToken(t, Date.now()), null);
  assert.match(explainAuth('AUTH_FAILED', 'bad signature'), /rejected this token.*bad signature/);
  assert.match(explainAuth('AUTH_REQUIRED', null), /requires an access token/);
});

test('timeline lanes never overlap; newest placed first', () => {
  const ops = [
    op('a', 'completed', { started_at: 0, finished_at: 100 }),
    op('b', 'failed', { started_at: 50, finished_at: 150 }),
    op('c', 'canceled', { started_at: 120, finished_at: 200 }),
    op('d', 'completed', { started_at: 10, finished_at: 20 }),
  ];
  const placed = packLanes(ops, 2, 0);
  for (const p of placed) {
    for (const q of placed) {
      if (p === q || p.lane !== q.lane) continue;
      assert.ok(p.op.finished_at <= q.op.started_at || q.op.finished_at <= p.op.started_at, `${p.op.operation_id}/${q.op.operation_id}`);
    }
  }
  assert.deepEqual(placed.map((p) => p.op.operation_id).sort(), ['b', 'c', 'd'], 'newest placed first; a no longer fits (d fills a gap)');
});

test('timeline axis: as many labels as fit without overlapping', () => {
  // Outer labels are anchored at the ends, inner ones centred: neighbours need 1.5 labels of room.
  for (const width of [192, 288, 330, 500, 592, 1200]) {
    const n = axisIntervals(width, LABEL_PX);
    assert.ok(n >= 1 && n <= 4, `${width}: ${n}`);
    if (n >= 2) assert.ok(width / n >= 1.5 * LABEL_PX, `${width}: ${n} intervals overlap`);
    else assert.ok(width >= 2 * LABEL_PX, `${width}: even two labels overlap`);
  }
  assert.equal(axisIntervals(288, LABEL_PX), 3, 'the side panel: 4 labels, not 5 crammed ones');
  assert.equal(axisIntervals(592, LABEL_PX), 4);
});
