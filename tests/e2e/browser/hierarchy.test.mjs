// Parents and children: each row is coloured by its own state only (child
// rows sit inside their parent's row), running children keep their group in
// the active area even when the parent failed, and a stalled operation shows
// no countdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot, watchConsole } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, until } from '../lib/dashboard.mjs';

/** Computed colours of a row's own state badge and bar. */
const colours = (page, id) => page.evaluate((id) => {
  const li = document.querySelector(`[data-testid=op-row][data-op-id="${id}"]`);
  const card = li?.querySelector(':scope > .op-card');
  if (!card) return null;
  return {
    state: getComputedStyle(card.querySelector('[data-testid=op-state]')).color,
    bar: getComputedStyle(card.querySelector('.bar-fill')).backgroundColor,
  };
}, id);

/** Which list a top-level row is in ('active' or 'finished'), and the id of the row a row is nested in. */
const where = (page, id) => page.evaluate((id) => {
  const li = document.querySelector(`[data-testid=op-row][data-op-id="${id}"]`);
  if (!li) return null;
  return {
    list: li.closest('[data-testid=op-list]') ? 'active' : li.closest('[data-testid=op-finished]') ? 'finished' : null,
    parent: li.parentElement?.closest('[data-testid=op-row]')?.dataset.opId ?? null,
  };
}, id);

test('a row shows its own state; running children keep a finished parent active; stalled means no ETA', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--status-interval', '1s', '--stall-timeout', '2s']);
  /** @type {any} */
  let pump = null;
  keep({ close: () => clearInterval(pump) });
  const page = await browser.page();
  const problems = watchConsole(page);
  await page.goto(`${hub.url}/`);
  await waitConnected(page);

  const producer = keep(await Producer.connect(hub.addr));
  await producer.start('pipe', 'Pipeline (reports only through its steps)', { kind: 'etl' });
  await producer.start('pipe.a', 'Step A', { kind: 'etl', parent_id: 'pipe' });
  await producer.start('pipe.b', 'Step B', { kind: 'etl', parent_id: 'pipe' });
  await producer.start('solo', 'Reference (running, top level)', { kind: 'etl' });
  await producer.start('quiet', 'Goes quiet after some progress', { kind: 'etl' });
  // The steps and the reference keep reporting; the parent never does, so it stalls.
  let p = 0;
  const keepAlive = () => {
    p = Math.min(99, p + 1);
    producer.progress('pipe.a', { progress: p }).catch(() => {});
    producer.progress('solo', { progress: p }).catch(() => {});
  };
  keepAlive();
  pump = setInterval(keepAlive, 250);
  // `quiet` reports until the hub has a rate and an ETA for it (reports
  // must span a second), then stops.
  let q = 0;
  await until(async () => {
    q += 2;
    await producer.progress('quiet', { progress: q });
    return /^ETA \d/.test(await page.locator(`${sel.row('quiet')} [data-testid=op-eta]`).textContent());
  }, { what: 'an ETA while quiet runs', interval: 250 });

  await until(async () => (await page.locator(sel.row('pipe')).getAttribute('data-state')) === 'stalled'
    && (await page.locator(sel.row('quiet')).getAttribute('data-state')) === 'stalled', { what: 'parent and quiet stalled', timeout: 10000 });
  assert.equal(await page.locator(sel.row('pipe.a')).getAttribute('data-state'), 'running');

  // 1. Colours: the running step under the stalled parent looks like any running row.
  const ref = await colours(page, 'solo');
  const parent = await colours(page, 'pipe');
  const child = await colours(page, 'pipe.a');
  t.diagnostic(`running ${JSON.stringify(ref)}, stalled parent ${JSON.stringify(parent)}, its running child ${JSON.stringify(child)}`);
  assert.notEqual(parent.bar, ref.bar, 'the stalled parent is drawn as stalled');
  assert.deepEqual(child, ref, 'the running child is drawn as running, not in its parent\'s colours');

  // 3. Stalled: no countdown, old or new.
  const eta = await page.locator(`${sel.row('quiet')} [data-testid=op-eta]`).textContent();
  const rate = await page.locator(`${sel.row('quiet')} [data-testid=op-rate]`).textContent();
  t.diagnostic(`stalled row says: ${rate} · ${eta}`);
  assert.equal(eta, 'ETA unknown');
  assert.equal(rate, 'stalled');
  t.diagnostic(`screenshot: ${await shot(page, 'hierarchy-stalled-parent')}`);

  // 2. The parent fails while step A still runs: the group stays in the active area.
  await producer.complete('pipe.b');
  await producer.fail('pipe', 'one step failed');
  await until(async () => (await page.locator(sel.row('pipe')).getAttribute('data-state')) === 'failed', { what: 'parent failed' });
  await until(async () => (await page.locator(sel.row('pipe.b')).getAttribute('data-state')) === 'completed', { what: 'step B completed' });
  assert.deepEqual(await where(page, 'pipe'), { list: 'active', parent: null }, 'a group with running work stays active');
  assert.deepEqual(await where(page, 'pipe.a'), { list: 'active', parent: 'pipe' });
  assert.equal(await page.locator(sel.row('pipe.a')).getAttribute('data-state'), 'running');
  assert.deepEqual(await colours(page, 'pipe.a'), ref, 'still drawn as running under a failed parent');
  assert.notEqual((await colours(page, 'pipe')).bar, ref.bar);
  assert.match(await page.locator('[data-testid=op-count]').textContent(), /· 2 running ·/);
  t.diagnostic(`screenshot: ${await shot(page, 'hierarchy-failed-parent-running-child')}`);

  // When the last step ends, the group moves to Finished.
  clearInterval(pump);
  await producer.complete('pipe.a');
  await until(async () => (await where(page, 'pipe'))?.list === 'finished', { what: 'group finished' });
  assert.deepEqual(await where(page, 'pipe.a'), { list: 'finished', parent: 'pipe' });
  assert.deepEqual(problems, [], 'no console errors or CSP violations');
});
