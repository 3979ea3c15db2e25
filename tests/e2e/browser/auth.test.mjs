// Scenario 4: the page works with auth on — it asks for a token, explains a
// bad one clearly, connects with a good one (kept in sessionStorage, never in
// the URL), offers cancel only to a token whose role allows it, and swaps a
// token on the live connection (`refresh`) without reconnecting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { mintToken } from '../lib/jwt.mjs';
import { sel, waitConnected, assertSameState, until } from '../lib/dashboard.mjs';

const SECRET = 'e2e-secret-0123456789abcdef';

test('auth: token entry, clear message for a bad token, role-aware cancel, token never in the URL', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const producer = keep(await Producer.connect(hub.addr, { token: admin }));
  await producer.start('secret.1', 'Secret job', { kind: 'etl', total: 10 });
  await producer.progress('secret.1', { current: 4 });

  const page = await browser.page();
  await page.goto(`${hub.url}/`);
  // No token: the hub answers 401 AUTH_REQUIRED; the page asks for one.
  const panel = page.locator('[data-testid=auth-panel]');
  await panel.waitFor({ state: 'visible', timeout: 15000 });
  assert.match(await page.locator('[data-testid=auth-message]').textContent(), /requires an access token/);
  assert.equal(await page.locator(sel.conn).getAttribute('data-state'), 'failed');
  assert.match(await page.locator(sel.connText).textContent(), /^Failed: AUTH_REQUIRED$/);
  assert.equal(await page.locator('[data-testid=op-row]').count(), 0);

  // A token signed with another secret: a clear message, not a silent retry loop.
  const forged = mintToken('not-the-secret', { sub: 'mallory', roles: ['admin'] });
  await page.fill('[data-testid=token-input]', forged);
  await page.click('[data-testid=token-submit]');
  await until(async () => /rejected this token/.test(await page.locator('[data-testid=auth-message]').textContent()), { what: 'bad-token message' });
  const badMsg = await page.locator('[data-testid=auth-message]').textContent();
  t.diagnostic(`bad token message: ${badMsg}`);
  assert.match(await page.locator(sel.connText).textContent(), /AUTH_FAILED/);
  t.diagnostic(`screenshot: ${await shot(page, '4-bad-token')}`);

  // Garbage that is not a JWT is caught before asking the hub.
  await page.fill('[data-testid=token-input]', 'hello');
  await page.click('[data-testid=token-submit]');
  assert.match(await page.locator('[data-testid=auth-message]').textContent(), /not a JWT/);

  // A viewer token: connected, sees the operations, no cancel button.
  const viewer = mintToken(SECRET, { sub: 'viewer-vic', roles: ['viewer'], namespaces: ['default'] });
  await page.fill('[data-testid=token-input]', viewer);
  await page.press('[data-testid=token-input]', 'Enter');
  await waitConnected(page);
  await panel.waitFor({ state: 'hidden' });
  const row = page.locator(sel.row('secret.1'));
  await row.waitFor();
  assert.equal(await row.getAttribute('data-progress'), '40');
  assert.equal(await row.locator('[data-testid=op-cancel]').isVisible(), false, 'viewer: no cancel');
  await assertSameState(page, hub, 'default', admin);
  assert.ok(!page.url().includes('token') && !page.url().includes(viewer.slice(0, 20)), `token not in the URL: ${page.url()}`);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('progress-hub.token')), viewer);
  const history = await page.evaluate(() => history.length);
  t.diagnostic(`history entries: ${history}; url: ${page.url()}`);

  // Reload: the session's token is reused without asking.
  await page.reload();
  await waitConnected(page);
  assert.equal(await panel.isVisible(), false);

  // An operator token (via the Token button) may cancel, and it reaches the
  // producer. On the live WebSocket the new token goes as `refresh`: no new
  // connection, the subscription stays.
  let opened = 0;
  page.on('websocket', () => { opened += 1; });
  const operator = mintToken(SECRET, { sub: 'olga', roles: ['operator'], namespaces: ['default'] });
  await page.click('[data-testid=token-button]');
  await panel.waitFor({ state: 'visible' });
  await page.fill('[data-testid=token-input]', operator);
  await page.click('[data-testid=token-submit]');
  await until(async () => (await row.locator('[data-testid=op-cancel]').isVisible()), { what: 'cancel offered to an operator' });
  await waitConnected(page);
  await row.locator('[data-testid=op-cancel]').click();
  await page.locator('[data-testid=confirm-yes]').click();
  const notice = await producer.nextCancel(10000);
  assert.equal(notice.operation_id, 'secret.1');
  assert.equal(notice.requested_by, 'olga');
  await producer.canceled('secret.1');
  await until(async () => (await row.getAttribute('data-state')) === 'canceled', { what: 'canceled' });
  assert.equal(opened, 0, 'the new token was a refresh on the same connection');
  t.diagnostic(`screenshot: ${await shot(page, '4-authorized')}`);
});

test('FORBIDDEN namespace: the banner offers another namespace, and choosing one from the failed state goes live', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const producer = keep(await Producer.connect(hub.addr, { token: admin }));
  await producer.start('visible.1', 'Visible job', { kind: 'etl' });
  const viewer = mintToken(SECRET, { sub: 'viewer-vic', roles: ['viewer'], namespaces: ['default'] });
  const page = await browser.page();
  await page.addInitScript(([tok]) => { if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1'); sessionStorage.setItem('progress-hub.token', tok); } }, [viewer]);
  await page.goto(`${hub.url}/?ns=secret`);
  await until(async () => (await page.locator(sel.connText).textContent()) === 'Failed: FORBIDDEN', { what: 'FORBIDDEN' });
  await page.locator(sel.banner).waitFor({ state: 'visible', timeout: 5000 });
  const retry = page.locator('[data-testid=retry-now]');
  assert.equal(await retry.textContent(), 'Pick another namespace', 'not only "Enter a new token"');
  assert.match(await page.locator('[data-testid=auth-message]').textContent(), /Pick another namespace or use another token/);
  t.diagnostic(`screenshot: ${await shot(page, 'auth-forbidden')}`);

  // The banner's button takes the user to the namespace picker.
  await retry.click();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'namespace-input');
  assert.equal(await page.evaluate(() => { const i = document.activeElement; return i.selectionStart === 0 && i.selectionEnd === i.value.length; }), true,
    'the old name is selected, ready to be typed over');
  await page.keyboard.type('default');
  await page.keyboard.press('Enter');
  await waitConnected(page);
  await page.locator(sel.row('visible.1')).waitFor({ timeout: 5000 });
  await page.locator(sel.banner).waitFor({ state: 'hidden', timeout: 5000 });
  await page.locator('[data-testid=auth-panel]').waitFor({ state: 'hidden', timeout: 5000 });
  assert.equal(new URL(page.url()).searchParams.get('ns'), null, 'the address names the namespace shown');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('progress-hub.token')), viewer, 'the token stays');

  // And back to a forbidden one, then straight to an allowed one by typing (no banner click).
  await page.fill('[data-testid=namespace-input]', 'secret');
  await page.press('[data-testid=namespace-input]', 'Enter');
  await until(async () => (await page.locator(sel.connText).textContent()) === 'Failed: FORBIDDEN', { what: 'FORBIDDEN again' });
  await page.fill('[data-testid=namespace-input]', 'default');
  await page.press('[data-testid=namespace-input]', 'Enter');
  await waitConnected(page);
  await page.locator(sel.row('visible.1')).waitFor({ timeout: 5000 });
});

test('title and counts tell the truth: no counts before a snapshot, the namespace in the title, "⚠ stale" once not live', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const producer = keep(await Producer.connect(hub.addr, { token: admin }));
  await producer.start('job.1', 'A job', { kind: 'etl' });
  const page = await browser.page();
  const count = page.locator('[data-testid=op-count]');
  await page.goto(`${hub.url}/`);
  // No token: nothing is known — no "0 operations · 0 running …".
  await until(async () => (await page.locator(sel.connText).textContent()) === 'Failed: AUTH_REQUIRED', { what: 'AUTH_REQUIRED' });
  assert.doesNotMatch(await count.textContent(), /\d/, 'no counts while nothing is known');
  assert.equal(await page.title(), '⚠ failed · default · progress-hub');
  t.diagnostic(`screenshot: ${await shot(page, 'auth-no-counts')}`);

  await page.fill('[data-testid=token-input]', mintToken(SECRET, { sub: 'vic', roles: ['viewer'], namespaces: ['*'] }));
  await page.press('[data-testid=token-input]', 'Enter');
  await waitConnected(page);
  await until(async () => (await count.textContent()) === '1 operations · 1 running · 0 stalled · 0 failed', { what: 'counts once known' });
  await until(async () => (await page.title()) === 'default · progress-hub', { what: 'live title' });

  // Another namespace: nothing known about it until its snapshot; then its name in the title.
  await page.fill('[data-testid=namespace-input]', 'empty');
  await page.press('[data-testid=namespace-input]', 'Enter');
  await until(async () => (await page.title()) === 'empty · progress-hub' && (await count.textContent()) === '0 operations · 0 running · 0 stalled · 0 failed',
    { what: 'the other namespace, known and empty' });

  // The hub goes away: the title says so first.
  producer.close();
  await hub.kill();
  await until(async () => /^⚠ (stale|link quiet) · empty · progress-hub$/.test(await page.title()), { what: 'not-live title', timeout: 10000 });
  await until(async () => (await page.title()) === '⚠ stale · empty · progress-hub', { what: 'stale title', timeout: 10000 });
});
