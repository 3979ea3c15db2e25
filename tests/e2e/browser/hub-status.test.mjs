// What the page learns from the hub itself (GET /api/v1/status on connect,
// with the token, and system_status): the Hub panel is filled at once, the
// hub's own heartbeat interval is the one expected (not an assumed 30 s, so
// a 70 s hub is not redialled every minute), and finished operations leave
// the page when the hub's finished retention says they left the hub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot, watchConsole } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { mintToken } from '../lib/jwt.mjs';
import { sel, waitConnected, hubState, until } from '../lib/dashboard.mjs';

const SECRET = 'e2e-status-secret-0123456789';
const RETENTION_MS = 3000;

test('on connect: Hub panel filled, heartbeat_interval_ms expected, finished rows dropped after finished_retention_ms', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--jwt-secret', SECRET, '--heartbeat-interval', '70s', '--status-interval', '70s',
    '--finished-retention', `${RETENTION_MS / 1000}s`]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const viewer = mintToken(SECRET, { sub: 'viewer-vic', roles: ['viewer'], namespaces: ['default'] });
  const page = await browser.page();
  const problems = watchConsole(page);
  // A session that already holds an accepted token (GET /api/v1/status needs it).
  await page.addInitScript((tok) => { if (!sessionStorage.getItem('progress-hub.token')) sessionStorage.setItem('progress-hub.token', tok); }, viewer);
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const connectedAt = Date.now();

  // 9. The panel does not wait for the first pushed system_status (70 s away here).
  await until(async () => (await page.locator('[data-testid=sys-store]').textContent()) === 'ok'
    && (await page.locator('[data-testid=sys-connections]').textContent()) !== '–', { what: 'Hub panel filled', timeout: 5000 });
  t.diagnostic(`Hub panel filled ${Date.now() - connectedAt} ms after connecting`);

  // 8. The hub's interval is expected: silence is judged against 2 × 70 s, not 2 × 30 s.
  const status = await until(async () => {
    const s = await page.evaluate(() => ({ ...window.__hub.client.status(), deadAfterMs: window.__hub.client.machine.deadAfterMs() }));
    return s.heartbeatIntervalMs === 70000 ? s : null;
  }, { what: 'the hub\'s heartbeat interval', timeout: 5000 });
  assert.equal(status.deadAfterMs, 140000);
  assert.equal(await page.evaluate(() => window.__hub.client.healthy()), true);
  assert.equal(await page.locator(sel.conn).getAttribute('data-state'), 'connected');

  // 5. A finished operation leaves the page when it leaves the hub.
  const producer = keep(await Producer.connect(hub.addr, { token: admin }));
  await producer.start('keep', 'Still running', { kind: 'etl' });
  await producer.start('short', 'Done quickly', { kind: 'etl' });
  await producer.complete('short');
  const row = page.locator(sel.row('short'));
  await until(async () => (await row.getAttribute('data-state')) === 'completed', { what: 'short completed' });
  const finishedAt = Date.now();
  assert.equal(await page.locator('[data-testid=op-finished] [data-testid=op-row]').count(), 1);
  await until(async () => (await row.count()) === 0, { what: 'the finished row dropped', timeout: RETENTION_MS + 5000 });
  const droppedAfter = Date.now() - finishedAt;
  t.diagnostic(`finished row dropped ${droppedAfter} ms after it finished (retention ${RETENTION_MS} ms)`);
  assert.ok(droppedAfter >= RETENTION_MS - 1000, `not before the retention (${droppedAfter} ms)`);
  assert.equal(await page.locator('[data-testid=op-finished] [data-testid=op-row]').count(), 0);
  assert.equal(await page.locator(sel.row('keep')).count(), 1, 'running operations stay');
  // The hub forgot it too: a reload would show the same.
  await until(async () => !('short' in (await hubState(hub, 'default', admin)).ops), { what: 'the hub dropped it too', timeout: 5000 });
  t.diagnostic(`screenshot: ${await shot(page, 'hub-status-after-retention')}`);
  assert.deepEqual(problems, [], 'no console errors');
});
