// Token changes the hub answers: a token is kept in sessionStorage only once
// the hub accepted it; a new token on a live page (`refresh`) closes the
// panel on the hub's `ok` and names the new subject; a refused one says so
// and is not kept, and the page reconnects with the token it was using;
// after TOKEN_EXPIRED the banner's button asks for a new token instead of
// retrying the expired one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { mintToken } from '../lib/jwt.mjs';
import { sel, waitConnected, until } from '../lib/dashboard.mjs';

const SECRET = 'e2e-token-secret-0123456789';
const KEY = 'progress-hub.token';
const stored = (page) => page.evaluate((k) => sessionStorage.getItem(k), KEY);

test('tokens: saved only once accepted; refresh answered → panel closed; expired → ask for a new one', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const producer = keep(await Producer.connect(hub.addr, { token: admin }));
  await producer.start('job', 'A job', { kind: 'etl' });
  const page = await browser.page();
  let sockets = 0;
  page.on('websocket', () => { sockets += 1; });
  const panel = page.locator('[data-testid=auth-panel]');
  const message = page.locator('[data-testid=auth-message]');
  const input = page.locator('[data-testid=token-input]');

  await page.goto(`${hub.url}/`);
  await panel.waitFor({ state: 'visible', timeout: 15000 });

  // A token the hub refuses is not kept for the next reload.
  const forged = mintToken('not-the-secret', { sub: 'mallory', roles: ['admin'] });
  await input.fill(forged);
  await input.press('Enter');
  await until(async () => /rejected this token/.test(await message.textContent()), { what: 'refused' });
  assert.equal(await stored(page), null, 'a refused token is not saved');

  // An accepted one is.
  const viewer = mintToken(SECRET, { sub: 'viewer-vic', roles: ['viewer'], namespaces: ['default'] });
  await input.fill(viewer);
  await input.press('Enter');
  await waitConnected(page);
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await stored(page), viewer);

  // On the live page a new token goes as `refresh`; the hub's ok closes the panel.
  const before = sockets;
  await page.click('[data-testid=token-button]');
  await panel.waitFor({ state: 'visible' });
  assert.equal(await input.getAttribute('placeholder'), 'current: viewer-vic (viewer)');
  const operator = mintToken(SECRET, { sub: 'olga', roles: ['operator'], namespaces: ['default'] });
  await input.fill(operator);
  await input.press('Enter');
  await panel.waitFor({ state: 'hidden', timeout: 5000 });
  assert.equal(await message.textContent(), '', 'no "Connecting with this token…" left behind');
  assert.equal(await input.getAttribute('placeholder'), 'current: olga (operator)', 'names the new subject');
  assert.equal(await page.locator('[data-testid=token-button]').getAttribute('aria-expanded'), 'false');
  assert.equal(await stored(page), operator);
  assert.equal(sockets, before, 'a refresh, not a reconnect');
  assert.equal(await page.locator(sel.conn).getAttribute('data-state'), 'connected');

  // A refresh the hub refuses: said in the panel, the accepted token stays saved.
  await page.click('[data-testid=token-button]');
  await panel.waitFor({ state: 'visible' });
  await input.fill(forged);
  await input.press('Enter');
  await until(async () => /rejected this token/.test(await message.textContent()), { what: 'refresh refused' });
  assert.equal(await panel.isVisible(), true);
  assert.equal(await stored(page), operator, 'the refused token did not replace the accepted one');
  // The hub closes the link (4001) after refusing the refresh: the page comes
  // back with the token it was using instead of stopping at AUTH_FAILED.
  await waitConnected(page);
  assert.equal(await page.locator(sel.connText).textContent(), 'Connected');
  assert.equal(await panel.isVisible(), true, 'the panel still says the new token was refused');
  assert.match(await message.textContent(), /rejected this token.*The token in use \(olga\) stays in use\./);
  assert.equal(await input.getAttribute('placeholder'), 'current: olga (operator)');
  assert.equal(await stored(page), operator);
  await producer.progress('job', { progress: 60 });
  await until(async () => (await page.locator(sel.row('job')).getAttribute('data-progress')) === '60', { what: 'live again after the refused refresh' });
  assert.equal(await page.locator(sel.row('job')).locator('[data-testid=op-cancel]').isVisible(), true, 'still an operator');
  t.diagnostic(`screenshot: ${await shot(page, 'token-refresh-refused')}`);

  // An expired token (e.g. left in the session): the banner asks for a new token, it does not retry it.
  const expired = mintToken(SECRET, { sub: 'old', roles: ['viewer'], namespaces: ['default'], expInSeconds: -120 });
  const page2 = await browser.context.newPage();
  let sockets2 = 0;
  page2.on('websocket', () => { sockets2 += 1; });
  await page2.addInitScript(([k, tok]) => { if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1'); sessionStorage.setItem(k, tok); } }, [KEY, expired]);
  await page2.goto(`${hub.url}/`);
  await until(async () => (await page2.locator(sel.connText).textContent()) === 'Failed: TOKEN_EXPIRED', { what: 'TOKEN_EXPIRED' });
  const banner = page2.locator(sel.banner);
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  const retry = page2.locator('[data-testid=retry-now]');
  assert.equal(await retry.textContent(), 'Enter a new token');
  assert.equal(await page2.evaluate((k) => sessionStorage.getItem(k), KEY), null, 'the expired token is not kept');
  await page2.locator('[data-testid=token-button]').click(); // close the panel the failure opened…
  await page2.locator('[data-testid=auth-panel]').waitFor({ state: 'hidden' });
  const attempts = sockets2;
  await retry.click(); // …the banner's button brings it back, focused, without a new attempt
  await page2.locator('[data-testid=auth-panel]').waitFor({ state: 'visible' });
  assert.match(await page2.locator('[data-testid=auth-message]').textContent(), /expired/);
  assert.equal(await page2.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'token-input');
  assert.equal(await page2.locator(sel.connText).textContent(), 'Failed: TOKEN_EXPIRED');
  assert.equal(sockets2, attempts, 'the expired token was not tried again');
  t.diagnostic(`screenshot: ${await shot(page2, 'token-expired')}`);
  await page2.close();
});

test('refresh to a valid token that may not read the namespace: the page stops claiming to be live (as after a reload)', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--jwt-secret', SECRET]);
  const admin = mintToken(SECRET, { sub: 'producer', roles: ['admin'], namespaces: ['*'] });
  const producer = keep(await Producer.connect(hub.addr, { token: admin }));
  await producer.start('job', 'A job', { kind: 'etl' });
  const viewer = mintToken(SECRET, { sub: 'viewer-vic', roles: ['viewer'], namespaces: ['default'] });
  const page = await browser.page();
  await page.addInitScript(([k, tok]) => { if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1'); sessionStorage.setItem(k, tok); } }, [KEY, viewer]);
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const row = page.locator(sel.row('job'));
  await row.waitFor();
  const panel = page.locator('[data-testid=auth-panel]');
  const message = page.locator('[data-testid=auth-message]');
  const input = page.locator('[data-testid=token-input]');

  for (const [label, claims] of [
    ['a token for another namespace', { sub: 'otto', roles: ['viewer'], namespaces: ['other'] }],
    ['a token without the viewer role', { sub: 'nobody', roles: [], namespaces: ['default'] }],
  ]) {
    const other = mintToken(SECRET, claims);
    if (await panel.isHidden()) await page.click('[data-testid=token-button]');
    await input.fill(other);
    await input.press('Enter');
    await until(async () => (await page.locator(sel.connText).textContent()) === 'Failed: FORBIDDEN', { what: `FORBIDDEN after refresh to ${label}` });
    assert.notEqual(await page.locator(sel.conn).getAttribute('data-state'), 'connected', label);
    await page.locator(sel.banner).waitFor({ state: 'visible', timeout: 5000 });
    assert.match(await page.locator(sel.bannerText).textContent(), /Live updates stopped/, label);
    assert.equal(await page.locator('[data-testid=retry-now]').textContent(), 'Pick another namespace', label);
    assert.equal(await panel.isVisible(), true, label);
    assert.match(await message.textContent(), /may not read this namespace.*Pick another namespace or use another token/, label);
    assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), true, `${label}: rows shown as stale`);
    assert.match(await row.locator('[data-testid=op-stale]').textContent(), /^stale/, label);
    t.diagnostic(`screenshot: ${await shot(page, `token-refresh-forbidden-${claims.sub}`)}`);

    // Back to the viewer token: live again.
    await input.fill(viewer);
    await input.press('Enter');
    await waitConnected(page);
    await page.locator(sel.banner).waitFor({ state: 'hidden', timeout: 5000 });
    await producer.progress('job', { progress: claims.sub === 'otto' ? 30 : 60 });
    await until(async () => (await row.getAttribute('data-progress')) === (claims.sub === 'otto' ? '30' : '60'), { what: `live again after ${label}` });
    assert.equal(await page.evaluate(() => document.body.classList.contains('stale')), false);
  }
});
