// Scenario 1: operations appear, progress moves, completion and failure
// render, children nest under their parent, and a cancel from the page
// reaches the producer, which then reports canceled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot, watchConsole } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, assertSameState, until } from '../lib/dashboard.mjs';

test('operations move, finish, fail, nest, and cancel from the page reaches the producer', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--status-interval', '1s']);

  const page = await browser.page();
  const problems = watchConsole(page);
  const resp = await page.goto(`${hub.url}/`);
  assert.equal(resp?.status(), 200);
  const csp = resp?.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/, 'served with the strict CSP');
  await waitConnected(page);
  assert.equal(await page.locator(sel.connText).textContent(), 'Connected');
  assert.equal(await page.locator(sel.conn).getAttribute('data-state'), 'connected');

  const producer = keep(await Producer.connect(hub.addr));
  await producer.start('render.1', 'Render scene', { kind: 'render', total: 200 });
  await producer.start('render.1.frames', 'Frames', { kind: 'render', parent_id: 'render.1' });
  await producer.start('test.1', 'Unit tests', { kind: 'test' });
  await producer.start('backup.1', 'Nightly backup', { kind: 'backup' });
  await producer.start('deploy.1', 'Deploy', { kind: 'deploy' });

  const row = (id) => page.locator(sel.row(id));
  await until(async () => (await page.locator('[data-testid=op-row]').count()) === 5, { what: 'five rows' });
  // The child is nested inside its parent's row.
  assert.equal(await page.locator(`${sel.row('render.1')} ${sel.row('render.1.frames')}`).count(), 1, 'child nested under parent');

  // Progress moves: units → percent, step and message shown.
  await producer.progress('render.1', { current: 50, step: 'shading', message: 'tile 4 of 16' });
  await until(async () => (await row('render.1').getAttribute('data-progress')) === '25', { what: 'progress 25' });
  assert.equal(await row('render.1').locator('[data-testid=op-percent]').first().textContent(), '25.0 %');
  assert.equal(await row('render.1').locator('[data-testid=op-step]').first().textContent(), 'step: shading');
  assert.equal(await row('render.1').locator('[data-testid=op-message]').first().textContent(), 'tile 4 of 16');
  assert.equal(await row('render.1').locator('[data-testid=op-bar]').first().getAttribute('aria-valuenow'), '25.0');
  await producer.progress('render.1', { current: 150 });
  await until(async () => (await row('render.1').getAttribute('data-progress')) === '75', { what: 'progress 75' });
  assert.match(await row('render.1').locator('[data-testid=op-elapsed]').first().textContent(), /^elapsed \d+ s$/);

  // Completion and failure.
  await producer.complete('render.1.frames');
  await producer.fail('test.1', '3 tests failed: disk full');
  await until(async () => (await row('test.1').getAttribute('data-state')) === 'failed', { what: 'failed state' });
  assert.equal(await row('test.1').locator('[data-testid=op-state]').textContent(), 'failed');
  assert.equal(await row('test.1').locator('[data-testid=op-error]').textContent(), '3 tests failed: disk full');
  assert.equal(await row('test.1').locator('[data-testid=op-cancel]').isVisible(), false, 'no cancel on a finished operation');
  await until(async () => (await row('render.1.frames').getAttribute('data-state')) === 'completed', { what: 'completed' });
  assert.equal(await row('render.1.frames').getAttribute('data-progress'), '100');
  await until(async () => (await page.locator('[data-testid=timeline-bar]').count()) >= 2, { what: 'timeline bars', timeout: 5000 });
  const bar = page.locator('[data-testid=timeline-bar][data-op-id="test.1"]');
  await bar.hover();
  await until(async () => (await page.locator('[data-testid=timeline-tip]').isVisible()), { what: 'timeline tooltip' });
  assert.match(await page.locator('[data-testid=timeline-tip]').textContent(), /failed.*disk full/s);

  // Filter: by state, then by glob.
  await page.selectOption('[data-testid=filter-state]', 'failed');
  await until(async () => !(await row('backup.1').isVisible()), { what: 'filtered out' });
  assert.equal(await row('test.1').isVisible(), true);
  await page.selectOption('[data-testid=filter-state]', '');
  await page.fill('[data-testid=filter-glob]', 'backup.*');
  await until(async () => !(await row('test.1').isVisible()) && (await row('backup.1').isVisible()), { what: 'glob filter' });
  await page.fill('[data-testid=filter-glob]', '');
  await until(async () => (await row('test.1').isVisible()), { what: 'filter cleared' });

  // System panel got system_status.
  await until(async () => (await page.locator('[data-testid=sys-store]').textContent()) === 'ok', { what: 'system panel' });

  // Cancel from the page (keyboard-reachable button, confirmation dialog).
  const cancelBtn = row('backup.1').locator('[data-testid=op-cancel]');
  assert.equal(await cancelBtn.isVisible(), true);
  await cancelBtn.click();
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await dialog.waitFor({ state: 'visible' });
  await page.locator('[data-testid=confirm-no]').click(); // first: keep it running
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(producer.cancels.length, 0, 'declining sends nothing');
  await cancelBtn.focus();
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'visible' });
  await page.locator('[data-testid=confirm-yes]').click();
  const notice = await producer.nextCancel(10000);
  assert.equal(notice.operation_id, 'backup.1');
  assert.equal(notice.requested_by, 'anonymous');
  await until(async () => (await row('backup.1').locator('[data-testid=op-cancel-requested]').textContent()) === 'cancel requested', { what: 'cancel requested badge' });
  assert.equal(await cancelBtn.isVisible(), false);
  await producer.canceled('backup.1', 'stopped by user');
  await until(async () => (await row('backup.1').getAttribute('data-state')) === 'canceled', { what: 'canceled' });
  assert.equal(await row('backup.1').locator('[data-testid=op-message]').textContent(), 'stopped by user');

  await until(async () => (await row('render.1').getAttribute('data-offset')) !== '', { what: 'offsets' });
  const n = await until(async () => { try { return await assertSameState(page, hub); } catch { return false; } }, { what: 'page equals hub', timeout: 5000 });
  await assertSameState(page, hub);
  t.diagnostic(`page shows the hub's ${n} operations exactly`);
  const path = await shot(page, '1-normal');
  t.diagnostic(`screenshot: ${path}`);

  // Dark scheme (prefers-color-scheme).
  await page.emulateMedia({ colorScheme: 'dark' });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(15, 18, 22)', 'dark background under prefers-color-scheme: dark');
  t.diagnostic(`screenshot: ${await shot(page, '1-normal-dark')}`);
  await page.emulateMedia({ colorScheme: 'light' });

  // Namespace picker: another namespace replaces the view; the URL says which.
  const other = await Producer.connect(hub.addr, { namespace: 'team-b' });
  t.after(() => other.close());
  await other.start('b.1', 'Team B job', { kind: 'etl' });
  await page.fill('[data-testid=namespace-input]', 'team-b');
  await page.press('[data-testid=namespace-input]', 'Enter');
  await until(async () => (await page.locator('[data-testid=op-row]').count()) === 1 && (await row('b.1').isVisible()), { what: 'namespace team-b' });
  assert.match(page.url(), /[?&]ns=team-b/);
  await assertSameState(page, hub, 'team-b');
  await page.fill('[data-testid=namespace-input]', 'default');
  await page.press('[data-testid=namespace-input]', 'Enter');
  await until(async () => (await page.locator('[data-testid=op-row]').count()) === 5, { what: 'back to default' });
  await assertSameState(page, hub);

  // Phone width: nothing wider than the viewport.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scroll at 375 px (overflow ${overflow}px)`);
  t.diagnostic(`screenshot: ${await shot(page, '1-normal-phone')}`);
  assert.deepEqual(problems, [], 'no console errors or CSP violations');
});
