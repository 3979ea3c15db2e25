// Keyboard focus and the cancel dialog, long messages, the timeline axis:
//  - after confirming a cancel, the focus lands on the row's "cancel
//    requested" status, not on <body>, and Tab goes on from there;
//  - the confirm dialog closes when its operation ends on its own (no
//    "Cancel failed" afterwards);
//  - a 4,000-character message takes three lines until "more" is pressed;
//  - the timeline's time labels never overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubAndBrowser } from '../lib/setup.mjs';
import { shot, watchConsole } from '../lib/browser.mjs';
import { Producer } from '../lib/producer.mjs';
import { sel, waitConnected, until } from '../lib/dashboard.mjs';

/** What has the keyboard focus: its test id and the row it is in. */
const focused = (page) => page.evaluate(() => {
  const a = document.activeElement;
  return {
    body: a === document.body || a === null,
    what: a ? `${a.tagName.toLowerCase()}${a.id ? '#' + a.id : ''}${a.getAttribute('class') ? '.' + a.getAttribute('class') : ''}` : null,
    testid: a?.getAttribute?.('data-testid') ?? null,
    row: a?.closest?.('[data-testid=op-row]')?.getAttribute('data-op-id') ?? null,
  };
});

/** Pairs of timeline labels whose boxes overlap (or touch). */
const overlappingLabels = (page) => page.evaluate(() => {
  const boxes = [...document.querySelectorAll('[data-testid=timeline-label]')].map((l) => l.getBoundingClientRect())
    .sort((a, b) => a.left - b.left);
  const bad = [];
  for (let i = 1; i < boxes.length; i++) if (boxes[i].left < boxes[i - 1].right + 2) bad.push([boxes[i - 1].right, boxes[i].left]);
  return { count: boxes.length, bad };
});

test('focus after a cancel, dialog closed when its operation ends, long messages clamped, timeline labels apart', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s', '--status-interval', '1s']);
  const page = await browser.page();
  const problems = watchConsole(page);
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const producer = keep(await Producer.connect(hub.addr));
  await producer.start('first', 'First job', { kind: 'etl' });
  await producer.start('second', 'Second job', { kind: 'etl' });
  const long = `${'chatty '.repeat(570)}END`; // 4,000 characters
  assert.equal(long.length, 3993);
  await producer.start('chatty', 'Chatty job', { kind: 'etl' });
  await producer.progress('chatty', { progress: 5, message: long });
  await producer.progress('chatty', { progress: 6, message: long });
  await producer.start('done', 'Already done', { kind: 'etl' });
  await producer.complete('done');
  const row = (id) => page.locator(sel.row(id));
  await until(async () => (await page.locator('[data-testid=op-row]').count()) === 4, { what: 'four rows' });

  // Confirm a cancel from the keyboard: the focus must not fall to <body>.
  await row('first').locator('[data-testid=op-cancel]').focus();
  await page.keyboard.press('Enter');
  const dialog = page.locator('[data-testid=confirm-dialog]');
  await dialog.waitFor({ state: 'visible' });
  await page.locator('[data-testid=confirm-yes]').focus();
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  await producer.nextCancel(10000);
  await until(async () => (await row('first').locator('[data-testid=op-cancel-requested]').textContent()) === 'cancel requested', { what: 'cancel requested' });
  const after = await focused(page);
  t.diagnostic(`focus after confirming: ${JSON.stringify(after)}`);
  assert.deepEqual({ ...after, what: undefined }, { body: false, what: undefined, testid: 'op-cancel-requested', row: 'first' });
  await page.keyboard.press('Tab');
  const next = await focused(page);
  t.diagnostic(`next Tab: ${JSON.stringify(next)}`);
  assert.equal(next.body, false, 'Tab goes on from the row');
  // When the operation then ends, the focus stays on its row.
  await row('first').locator('[data-testid=op-cancel-requested]').focus();
  await producer.canceled('first', 'stopped');
  await until(async () => (await row('first').getAttribute('data-state')) === 'canceled', { what: 'first canceled' });
  await until(async () => (await row('first').evaluate((li) => li.closest('[data-testid=op-finished]') !== null)), { what: 'moved to Finished' });
  assert.deepEqual({ ...(await focused(page)), what: undefined }, { body: false, what: undefined, testid: 'op-state', row: 'first' });

  // The dialog is open when the operation finishes on its own: it closes, and says why.
  await row('second').locator('[data-testid=op-cancel]').click();
  await dialog.waitFor({ state: 'visible' });
  await producer.complete('second');
  await dialog.waitFor({ state: 'hidden', timeout: 5000 });
  const toast = page.locator(sel.toast);
  await until(async () => /completed on its own/.test(await toast.textContent()), { what: 'explaining toast' });
  assert.doesNotMatch(await toast.textContent(), /Cancel failed/);
  assert.equal((await focused(page)).body, false, 'focus kept on the page, not <body>');
  assert.equal(producer.cancels.length, 0, 'nothing was sent for it');

  // A 4,000-character message: three lines and a "more" toggle, the text as a tooltip.
  const msg = row('chatty').locator('[data-testid=op-message]');
  const more = row('chatty').locator('[data-testid=op-more]');
  await until(async () => (await msg.textContent()) === long, { what: 'long message' });
  const lineHeight = await msg.evaluate((el) => parseFloat(getComputedStyle(el).lineHeight) || parseFloat(getComputedStyle(el).fontSize) * 1.4);
  const clamped = (await msg.boundingBox()).height;
  t.diagnostic(`clamped message: ${clamped.toFixed(0)} px for line height ${lineHeight.toFixed(1)} px`);
  assert.ok(clamped <= 3 * lineHeight + 2, `message clamped to 3 lines (${clamped} px)`);
  assert.equal(await msg.getAttribute('title'), `${long.slice(0, 1000)}…`);
  assert.equal(await more.isVisible(), true);
  assert.equal(await row('done').locator('[data-testid=op-more]').isVisible(), false, 'no toggle for a short message');
  await more.click();
  await until(async () => (await msg.boundingBox()).height > 6 * lineHeight, { what: 'message expanded' });
  assert.equal(await more.getAttribute('aria-expanded'), 'true');
  t.diagnostic(`screenshot: ${await shot(page, 'interaction-long-message-open')}`);
  await more.click();
  await until(async () => (await msg.boundingBox()).height <= 3 * lineHeight + 2, { what: 'message clamped again' });

  // The timeline's time labels never overlap, wide or narrow.
  for (const width of [1280, 1000, 375]) {
    await page.setViewportSize({ width, height: 900 });
    const res = await until(async () => {
      const r = await overlappingLabels(page);
      return r.count >= 2 && r.bad.length === 0 ? r : null;
    }, { what: `timeline labels apart at ${width} px`, timeout: 8000 });
    t.diagnostic(`${width} px: ${res.count} time labels, none overlapping`);
  }
  t.diagnostic(`screenshot: ${await shot(page, 'interaction-timeline-phone')}`);
  assert.deepEqual(problems, [], 'no console errors or CSP violations');
});

test('a ~90-character kind: the Kind filter stays in its column at 360 px, the option names it in full as its title', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s']);
  const producer = keep(await Producer.connect(hub.addr));
  const longKind = `nightly.reconciliation.${'ledger-partition-'.repeat(4)}eu-west-1.rebuild`;
  assert.ok(longKind.length >= 90, `${longKind.length}`);
  await producer.start('long.1', 'Long-kind job', { kind: longKind });
  await producer.start('short.1', 'Short-kind job', { kind: 'etl' });
  const page = await browser.page();
  const problems = watchConsole(page);
  await page.setViewportSize({ width: 360, height: 760 });
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const kindSel = page.locator('[data-testid=filter-kind]');
  await until(async () => (await kindSel.locator('option').count()) === 3, { what: 'kinds listed' });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no sideways scroll at 360 px (overflow ${overflow}px)`);
  const box = await kindSel.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 360, `the select fits the viewport: ${JSON.stringify(box)}`);
  const opt = await kindSel.locator('option').evaluateAll((os, k) => os.filter((o) => o.value === k)
    .map((o) => ({ text: o.textContent, title: o.title })), longKind);
  assert.equal(opt.length, 1);
  assert.ok(opt[0].text.length < longKind.length && opt[0].text.endsWith('…'), `shortened label: ${opt[0].text}`);
  assert.equal(opt[0].title, longKind, 'the full kind as the title');
  // Choosing it still filters by the full kind.
  await kindSel.selectOption(longKind);
  await until(async () => (await page.locator(sel.row('short.1')).isHidden()) && (await page.locator(sel.row('long.1')).isVisible()), { what: 'filtered by the long kind' });
  const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow2 <= 0, `still no sideways scroll with it chosen (overflow ${overflow2}px)`);
  t.diagnostic(`screenshot: ${await shot(page, 'interaction-long-kind-phone')}`);
  assert.deepEqual(problems, [], 'no console errors or CSP violations');
});

test('the Kind filter goes in the address like the others, and a reload keeps it', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s']);
  const producer = keep(await Producer.connect(hub.addr));
  await producer.start('r.1', 'Render', { kind: 'render' });
  await producer.start('b.1', 'Backup', { kind: 'backup' });
  const page = await browser.page();
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const kindSel = page.locator('[data-testid=filter-kind]');
  await until(async () => (await kindSel.locator('option').count()) === 3, { what: 'kinds listed' });
  await kindSel.selectOption('render');
  await page.selectOption('[data-testid=filter-state]', 'running');
  await until(async () => new URL(page.url()).searchParams.get('kind') === 'render', { what: 'kind in the URL' });
  assert.equal(new URL(page.url()).searchParams.get('state'), 'running');
  await until(async () => (await page.locator(sel.row('b.1')).isHidden()), { what: 'filtered' });

  await page.reload();
  await waitConnected(page);
  await page.locator(sel.row('r.1')).waitFor();
  assert.equal(await kindSel.inputValue(), 'render', 'the kind chosen before the reload');
  assert.equal(await page.locator('[data-testid=filter-state]').inputValue(), 'running');
  assert.equal(await page.locator(sel.row('b.1')).isHidden(), true, 'and it filters');
  assert.match(await page.locator('[data-testid=op-count]').textContent(), /^1 of 2 operations shown$/);
  assert.equal(new URL(page.url()).searchParams.get('kind'), 'render', 'still in the address');
  // Back to all kinds: out of the address.
  await kindSel.selectOption('');
  await until(async () => new URL(page.url()).searchParams.get('kind') === null, { what: 'kind out of the URL' });
  await page.locator(sel.row('b.1')).waitFor();
});

test('a 250-character step without spaces wraps inside its card (390 px and desktop), whole in its title', async (t) => {
  const { hub, browser, keep } = await hubAndBrowser(t, ['--memory', '--heartbeat-interval', '1s']);
  const producer = keep(await Producer.connect(hub.addr));
  const step = `s3://bucket/${'a'.repeat(237)}Z`;
  assert.equal(step.length, 250);
  await producer.start('long', 'Long step');
  await producer.progress('long', { progress: 33, step });
  const page = await browser.page();
  await page.goto(`${hub.url}/`);
  await waitConnected(page);
  const row = page.locator(sel.row('long'));
  await until(async () => (await row.locator('[data-testid=op-step]').textContent()) === `step: ${step}`, { what: 'step shown' });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 800 });
    const m = await row.evaluate((li) => {
      const card = li.querySelector(':scope > .op-card');
      const s = card.querySelector('[data-testid=op-step]');
      const c = card.getBoundingClientRect();
      const r = s.getBoundingClientRect();
      return { cardClient: card.clientWidth, cardScroll: card.scrollWidth, stepRight: r.right, cardRight: c.right, stepLeft: r.left, cardLeft: c.left,
        page: document.documentElement.scrollWidth - document.documentElement.clientWidth };
    });
    assert.ok(m.cardScroll <= m.cardClient, `${width} px: the card does not overflow ${JSON.stringify(m)}`);
    assert.ok(m.stepRight <= m.cardRight && m.stepLeft >= m.cardLeft, `${width} px: the step stays inside the card ${JSON.stringify(m)}`);
    assert.ok(m.page <= 0, `${width} px: no sideways scroll ${JSON.stringify(m)}`);
  }
  assert.equal(await row.locator('[data-testid=op-step]').getAttribute('title'), step, 'the whole step as its title');
  t.diagnostic(`screenshot: ${await shot(page, 'interaction-long-step-phone')}`);
});
