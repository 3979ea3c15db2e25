// What a test reads from the dashboard page (by data-testid / data-* only).
import assert from 'node:assert/strict';

export const sel = {
  row: (id) => `[data-testid=op-row][data-op-id="${id}"]`,
  connText: '[data-testid=connection-text]',
  conn: '[data-testid=connection-status]',
  banner: '[data-testid=banner]',
  bannerText: '[data-testid=banner-text]',
  toast: '[data-testid=toast]',
};

/** Waits until the header says connected. */
export async function waitConnected(page, timeout = 15000) {
  await page.waitForFunction(() => document.querySelector('[data-testid=connection-status]')?.dataset.state === 'connected', null, { timeout });
}

/** `{id: {state, progress, offset, count}}` for every row in the page. */
export async function pageState(page) {
  return page.evaluate(() => {
    const out = {};
    for (const el of document.querySelectorAll('[data-testid=op-row]')) {
      const id = el.dataset.opId;
      const prev = out[id];
      out[id] = { state: el.dataset.state, progress: Number(el.dataset.progress), offset: Number(el.dataset.offset), count: (prev?.count ?? 0) + 1 };
    }
    return out;
  });
}

/** `{id: {state, progress, offset}}` from the hub's HTTP listing. */
export async function hubState(hub, namespace = 'default', token) {
  const r = await hub.get(`/api/v1/namespaces/${namespace}/operations?limit=10000`, token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const out = {};
  for (const op of r.body.operations) out[op.operation_id] = { state: op.state, progress: op.progress, offset: op.last_offset };
  return { ops: out, offset: r.body.offset };
}

/** Asserts the page shows exactly the hub's operations: same ids, states, progress, offsets; no duplicates. */
export async function assertSameState(page, hub, namespace = 'default', token) {
  const { ops } = await hubState(hub, namespace, token);
  const shown = await pageState(page);
  for (const [id, s] of Object.entries(shown)) assert.equal(s.count, 1, `row ${id} shown ${s.count} times`);
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(ops).sort(), 'same operations');
  for (const [id, want] of Object.entries(ops)) {
    const got = shown[id];
    assert.equal(got.state, want.state, `${id} state`);
    assert.equal(got.progress, want.progress, `${id} progress`);
    assert.equal(got.offset, want.offset, `${id} last_offset`);
  }
  return Object.keys(ops).length;
}

/** Polls `fn` until it returns truthy (no fixed sleeps); an error with `fatal: true` ends the wait at once. */
export async function until(fn, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { if (e?.fatal) throw e; last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
