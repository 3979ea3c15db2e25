// Scenarios 2 and 3: the page tells the truth when the hub goes away.
//  2. SIGKILL: banner and stale badges within the heartbeat window + 2 s,
//     elapsed times frozen while stale, a countdown that counts; restart: the page reconnects by itself, says so,
//     and ends with exactly the hub's state (events sent while it was away
//     included, nothing twice).
//  3. SIGSTOP (a dead link without a close): "link quiet" after one missed
//     heartbeat, dropped by the heartbeat rule after two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hub, tempDir, cleanup } from '../lib/hub.mjs';
import { launch, shot, watchConsole } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, assertSameState, until } from '../lib/dashboard.mjs';

const HEARTBEAT_MS = 1000;
const HB = ['--heartbeat-interval', '1s', '--status-interval', '1s'];

/** The page's own view of its connection (state, learned heartbeat interval, reason). */
const clientStatus = (page) => page.evaluate(() => window.__hub.client.status());

/** Starts ops and moves them a bit; returns the producer. */
async function seed(hub, n) {
  const p = await Producer.connect(hub.addr);
  for (let i = 0; i < n; i++) {
    await p.start(`job.${i}`, `Job ${i}`, { kind: i % 2 ? 'render' : 'backup', total: 100 });
    await p.progress(`job.${i}`, { current: 10 + i, step: 'warm-up' });
  }
  await p.complete('job.0');
  return p;
}

/** Waits until the page has learned the hub's heartbeat interval (two heartbeats seen). */
async function waitHeartbeatLearned(page) {
  await until(async () => (await clientStatus(page)).heartbeatIntervalMs < 2 * HEARTBEAT_MS, { what: 'heartbeat interval learned', timeout: 10000 });
}

test('SIGKILL: banner + stale within heartbeat + 2 s, countdown counts; restart → toast and the exact state', async (t) => {
  const dir = tempDir('hub-e2e-data-');
  const hub = await Hub.start(['--data-dir', dir, ...HB]);
  const browser = await launch();
  let producer;
  t.after(async () => { producer?.close(); await browser.close(); await hub.stop(); cleanup(dir); });
  const page = await browser.page();
  const problems = watchConsole(page);
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  producer = await seed(hub, 6);
  await until(async () => { try { await assertSameState(page, hub); return true; } catch { return false; } }, { what: 'initial state' });
  await waitHeartbeatLearned(page);
  const rows = await page.locator('[data-testid=op-row]').count();

  // Kill the hub. The page must show the banner and stale badges within the
  // heartbeat window + 2 s.
  const killedAt = Date.now();
  await hub.kill();
  producer.close();
  await page.locator(sel.banner).waitFor({ state: 'visible', timeout: HEARTBEAT_MS + 2000 + 1500 });
  const bannerAfter = Date.now() - killedAt;
  t.diagnostic(`banner after ${bannerAfter} ms (limit: heartbeat ${HEARTBEAT_MS} ms + 2 s)`);
  assert.ok(bannerAfter <= HEARTBEAT_MS + 2000 + 500, `banner took ${bannerAfter} ms`);
  assert.match(await page.locator(sel.bannerText).textContent(), /^Live updates paused — reconnecting (in \d+ s|now…)$/);
  assert.equal(await page.locator('[data-testid=retry-now]').isVisible(), true);
  // Every card greys out with a stale badge and its age.
  const stale = await page.evaluate(() => [...document.querySelectorAll('[data-testid=op-stale]')]
    .map((b) => ({ text: b.textContent, shown: getComputedStyle(b).display !== 'none' })));
  assert.equal(stale.length, rows);
  for (const s of stale) { assert.ok(s.shown, 'stale badge visible'); assert.match(s.text, /^stale · \d+ s$/); }
  assert.notEqual(await page.locator(sel.conn).getAttribute('data-state'), 'connected');
  t.diagnostic(`screenshot: ${await shot(page, '2-disconnected')}`);

  // Stale data is shown as of its last live moment: elapsed times stop counting.
  const elapsedOf = () => page.locator(`${sel.row('job.1')} [data-testid=op-elapsed]`).textContent();
  const staleSecs = async () => Number(/(\d+) s$/.exec(await page.locator(`${sel.row('job.1')} [data-testid=op-stale]`).textContent())?.[1] ?? NaN);
  const frozenElapsed = await elapsedOf();
  const staleAt = await staleSecs();
  assert.match(frozenElapsed, /^elapsed \d+ s$/);
  // The countdown counts down (sampled, no fixed sleep).
  const seen = [];
  await until(async () => {
    const m = /reconnecting in (\d+) s/.exec(await page.locator(sel.bannerText).textContent());
    if (m) seen.push(Number(m[1]));
    for (let i = 1; i < seen.length; i++) if (seen[i] < seen[i - 1]) return true;
    return false;
  }, { what: 'the countdown to count down', timeout: 40000, interval: 200 });
  t.diagnostic(`countdown values seen: ${[...new Set(seen)].join(' ')}`);
  await until(async () => (await staleSecs()) >= staleAt + 2, { what: 'two more seconds of staleness', timeout: 10000 });
  assert.equal(await elapsedOf(), frozenElapsed, 'elapsed frozen while the data is stale');
  t.diagnostic(`elapsed stayed "${frozenElapsed}" while stale went from ${staleAt} s to ${await staleSecs()} s`);
  // "Retry now" tries at once instead of waiting out the countdown.
  const before = (await clientStatus(page)).attempt;
  await page.click('[data-testid=retry-now]');
  await until(async () => (await clientStatus(page)).attempt > before, { what: 'an immediate retry', timeout: 3000, interval: 20 });
  assert.match(await page.locator('[data-testid=op-stale]').first().textContent(), /^stale · \d+ s$/);

  // Restart on the same address and data; publish while the page is still away.
  await hub.restart();
  producer = await Producer.connect(hub.addr);
  for (const id of ['job.1', 'job.2', 'job.3']) {
    producer.seq.set(id, 2);
    await producer.progress(id, { current: 60, step: 'while the page was away' });
  }
  producer.seq.set('job.4', 2);
  await producer.fail('job.4', 'failed while the page was away');
  await producer.start('job.new', 'Started while the page was away', { kind: 'render' });
  const awayState = (await clientStatus(page)).state;
  t.diagnostic(`page state when the producer finished: ${awayState}`);

  // The page comes back by itself (no clicks), says so, and matches the hub.
  const toast = page.locator(sel.toast);
  await toast.waitFor({ state: 'visible', timeout: 45000 });
  const toastText = await toast.textContent();
  t.diagnostic(`toast: ${toastText}`);
  assert.match(toastText, /^Live again — (\d+ updates? recovered|reloaded from snapshot)$/);
  if (awayState !== 'connected') assert.match(toastText, /^Live again — (5|6) updates recovered$/, 'the 5 events sent meanwhile (+ maybe a hub-made one)');
  await waitConnected(page);
  assert.equal(await page.locator(sel.banner).isVisible(), false);
  assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), false);
  const n = await until(async () => { try { return await assertSameState(page, hub); } catch { return false; } }, { what: 'same state as the hub', timeout: 5000 });
  await assertSameState(page, hub);
  assert.equal(await page.locator(`${sel.row('job.4')} [data-testid=op-error]`).textContent(), 'failed while the page was away');
  t.diagnostic(`page equals the hub: ${n} operations, no duplicates`);
  t.diagnostic(`screenshot: ${await shot(page, '2-recovered')}`);
  assert.equal(await page.evaluate(() => window.__hub.client.machine.gaps), 0, 'no offset gaps');
  assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(p)), [], 'no unexpected console errors');
});

test('SIGSTOP: a link that stays OPEN but goes silent is dropped by the heartbeat rule', async (t) => {
  const hub = await Hub.start(['--memory', ...HB]);
  const browser = await launch();
  let producer;
  t.after(async () => { producer?.close(); await browser.close(); hub.signal('SIGCONT'); await hub.stop(); });
  const page = await browser.page();
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  producer = await seed(hub, 3);
  await waitHeartbeatLearned(page);
  const learned = (await clientStatus(page)).heartbeatIntervalMs;

  const stoppedAt = Date.now();
  hub.signal('SIGSTOP');
  // One interval (+ slack) of silence: no longer green "Connected", though the
  // link is not given up on yet (that takes two missed heartbeats).
  await page.waitForFunction(() => document.querySelector('[data-testid=connection-status]')?.dataset.state === 'quiet',
    null, { timeout: 10000, polling: 'raf' });
  const quietAfter = Date.now() - stoppedAt;
  const quietText = await page.locator(sel.connText).textContent();
  t.diagnostic(`link quiet after ${quietAfter} ms: ${quietText}`);
  assert.equal(quietText, 'Link quiet — data may be stale');
  assert.ok(quietAfter <= learned + 500 + 1000, `quiet shown after ${quietAfter} ms`);
  // No close frame, no FIN: only silence. Two intervals (+ grace) later the page gives up on it.
  await until(async () => (await clientStatus(page)).state !== 'connected', { what: 'silence detected', timeout: 10000, interval: 50 });
  const detectedAfter = Date.now() - stoppedAt;
  const status = await clientStatus(page);
  t.diagnostic(`silence detected after ${detectedAfter} ms (learned heartbeat ${learned} ms); reason: ${status.reason}`);
  assert.match(status.reason ?? '', /heartbeat/, 'dropped by the heartbeat rule, not by a close');
  assert.ok(detectedAfter <= 2 * learned + 1000 + 500, `detection took ${detectedAfter} ms`);
  await page.locator(sel.banner).waitFor({ state: 'visible', timeout: 10000 });
  assert.ok(await page.evaluate(() => document.body.classList.contains('stale')), 'cards marked stale');
  t.diagnostic(`screenshot: ${await shot(page, '3-silent-link')}`);

  hub.signal('SIGCONT');
  await page.locator(sel.toast).waitFor({ state: 'visible', timeout: 45000 });
  assert.match(await page.locator(sel.toast).textContent(), /^Live again — /);
  await waitConnected(page);
  await until(async () => { try { await assertSameState(page, hub); return true; } catch { return false; } }, { what: 'same state', timeout: 5000 });
  await assertSameState(page, hub);
  const sockets = await page.evaluate(() => window.__hub.client.maxConcurrent);
  assert.equal(sockets, 1, 'never two sockets open');
});

test('a cancel confirmed while the hub is frozen: no answer in time is an unknown outcome, never "Cancel failed"', async (t) => {
  const hub = await Hub.start(['--memory', ...HB]);
  const browser = await launch();
  let producer;
  t.after(async () => { producer?.close(); await browser.close(); hub.signal('SIGCONT'); await hub.stop(); });
  producer = await Producer.connect(hub.addr);
  await producer.start('job.a', 'Job A');
  await producer.start('job.b', 'Job B');
  const page = await browser.page();
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  // Every toast the page shows, in order.
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid=toast]');
    window.__toasts = [];
    new MutationObserver(() => {
      const last = window.__toasts.at(-1);
      const now = { text: el.textContent, cls: el.className, hidden: el.hidden };
      if (!now.hidden && (last?.text !== now.text || last?.cls !== now.cls)) window.__toasts.push(now);
    }).observe(el, { childList: true, attributes: true, characterData: true, subtree: true });
  });
  const toasts = () => page.evaluate(() => window.__toasts);
  const hubCancelRequested = async (id) => (await hub.get(`/api/v1/namespaces/default/operations/${id}`)).body.operation.cancel_requested;
  const sentText = 'Cancel requested — waiting for the producer to stop.';
  const unknownText = 'No answer to the cancel yet; the row shows whether the hub took it.';

  // 1. The hub freezes as the user confirms, and is back before the request times out (10 s):
  //    the hub applied it; the page must not call it failed.
  await page.locator(sel.row('job.a')).locator('[data-testid=op-cancel]').click();
  hub.signal('SIGSTOP');
  await page.locator('[data-testid=confirm-yes]').click();
  await until(async () => (await clientStatus(page)).state !== 'connected', { what: 'frozen hub noticed', timeout: 10000 });
  hub.signal('SIGCONT');
  await waitConnected(page);
  assert.equal(await hubCancelRequested('job.a'), true, 'the hub took the cancel');
  // The cancel is no event of its own: the page sees it in the operation's next one.
  await producer.progress('job.a', { progress: 10 });
  await until(async () => (await page.evaluate(() => window.__hub.store.ops.get('job.a')?.progress)) === 10, { what: 'next event of job.a' });
  await until(async () => (await toasts()).some((x) => x.text === sentText), { what: 'the cancel reported as requested', timeout: 15000 })
    .catch(async (e) => { throw new Error(`${e.message}; toasts: ${JSON.stringify(await toasts())}`); });
  assert.equal(await page.locator(sel.row('job.a')).locator('[data-testid=op-cancel-requested]').textContent(), 'cancel requested');
  assert.ok(!(await toasts()).some((x) => /Cancel failed/.test(x.text)), 'not "Cancel failed"');

  // 2. Still frozen when the request times out: the outcome is unknown (said
  //    so, not as an error); once the hub is back and shows the cancel, the page says it was taken.
  await page.evaluate(() => { window.__toasts = []; });
  await page.locator(sel.row('job.b')).locator('[data-testid=op-cancel]').click();
  hub.signal('SIGSTOP');
  await page.locator('[data-testid=confirm-yes]').click();
  await until(async () => (await toasts()).some((x) => x.text === unknownText), { what: 'unknown outcome said', timeout: 15000 });
  const unknown = (await toasts()).find((x) => x.text === unknownText);
  assert.doesNotMatch(unknown.cls, /toast-error/, 'an unknown outcome is not shown as a failure');
  t.diagnostic(`screenshot: ${await shot(page, 'cancel-unanswered')}`);
  hub.signal('SIGCONT');
  await waitConnected(page);
  await producer.progress('job.b', { progress: 20 });
  await until(async () => (await toasts()).some((x) => x.text === sentText), { what: 'the cancel reported once the hub shows it', timeout: 15000 });
  assert.equal(await hubCancelRequested('job.b'), true);
  assert.equal(await page.locator(sel.row('job.b')).locator('[data-testid=op-cancel-requested]').textContent(), 'cancel requested');
  const all = await toasts();
  t.diagnostic(`toasts: ${JSON.stringify(all.map((x) => x.text))}`);
  assert.ok(!all.some((x) => /Cancel failed/.test(x.text)), 'never "Cancel failed" for a cancel the hub applied');
});

test('stale rows: no rate or ETA as if live, and elapsed never steps backwards', async (t) => {
  const hub = await Hub.start(['--memory', ...HB]);
  const browser = await launch();
  let producer;
  t.after(async () => { producer?.close(); await browser.close(); hub.signal('SIGCONT'); await hub.stop(); });
  producer = await Producer.connect(hub.addr);
  await producer.start('eta', 'With an ETA');
  const page = await browser.page();
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const row = page.locator(sel.row('eta'));
  const rateEl = row.locator('[data-testid=op-rate]');
  const etaEl = row.locator('[data-testid=op-eta]');
  // Reports until the hub has a rate and an ETA for it (reports must span a second).
  let p = 0;
  await until(async () => {
    p += 2;
    await producer.progress('eta', { progress: p });
    return /^ETA \d/.test(await etaEl.textContent()) && /%\/(s|min)$/.test(await rateEl.textContent());
  }, { what: 'a rate and an ETA', interval: 250 });
  // Every elapsed text the row shows from now on.
  await row.locator('[data-testid=op-elapsed]').evaluate((el) => {
    window.__elapsed = [el.textContent];
    new MutationObserver(() => window.__elapsed.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await until(async () => (await page.evaluate(() => window.__elapsed.length)) >= 2, { what: 'elapsed counting' });

  // A frozen hub: the page counts on until the link is given up on (two heartbeats), then shows the data as stale.
  hub.signal('SIGSTOP');
  await until(async () => await page.evaluate(() => document.body.classList.contains('stale')), { what: 'stale', timeout: 10000, interval: 50 });
  assert.equal(await rateEl.textContent(), '', 'no rate while stale');
  assert.equal(await etaEl.textContent(), '', 'no ETA countdown while stale');
  await until(async () => /^stale · [2-9] s$/.test(await row.locator('[data-testid=op-stale]').textContent()), { what: 'stale for a while', timeout: 10000 });
  const seen = (await page.evaluate(() => window.__elapsed)).map((x) => Number(/elapsed (\d+) s/.exec(x)?.[1]));
  t.diagnostic(`elapsed shown: ${seen.join(' ')}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `elapsed went back: ${seen.join(' ')}`);
  assert.equal(await rateEl.textContent(), '');
  assert.equal(await etaEl.textContent(), '');
  t.diagnostic(`screenshot: ${await shot(page, 'stale-no-eta')}`);

  // Live again: the hub's estimate is shown again with the next state.
  hub.signal('SIGCONT');
  await waitConnected(page);
  await until(async () => !(await page.evaluate(() => document.body.classList.contains('stale'))), { what: 'live again' });
  await producer.progress('eta', { progress: p + 2 });
  await until(async () => /^ETA \d/.test(await etaEl.textContent()), { what: 'ETA back once live' });
});
