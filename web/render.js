// @ts-check
/**
 * The operations view: one keyed row per operation, children nested under
 * their parent, active operations (newest first) above finished ones (most
 * recently finished first). `update` is called once per animation frame
 * with what changed; it touches only those rows, and within a row only the
 * fields whose text or value changed. Rows outside the viewport (an
 * IntersectionObserver says which) get only their data attributes and state
 * class; their text is written when they scroll into view. No inline styles:
 * the bar width is the CSS custom property `--p` (0..1) set through the CSSOM.
 */

import { percent, duration, rateEta, isFinished } from './format.js';

/** @typedef {import('./connection.js').OperationState} OperationState */
/** @typedef {import('./store.js').OperationStore} OperationStore */

/**
 * @typedef {Object} Row
 * @property {string} id
 * @property {HTMLLIElement} el
 * @property {Record<string, HTMLElement>} f   field elements
 * @property {HTMLUListElement|null} kids     child list (created on demand)
 * @property {Element|null} container
 * @property {boolean} matches
 * @property {boolean} visible
 * @property {OperationState|null} op
 * @property {Record<string, any>} last       last written values
 * @property {boolean} onscreen               near the viewport (or not known yet)
 * @property {boolean} pending                text not written since the last change (off screen)
 */

const FIELDS = ['name', 'opid', 'state', 'cancelreq', 'stale', 'cancel', 'bar', 'fill', 'pct', 'step', 'rate', 'eta', 'elapsed', 'message', 'more', 'error'];
/** Messages longer than this are clamped to three lines, with a "more" toggle and the text as a tooltip. */
export const LONG_MESSAGE = 180;
/** At most this much of a message goes into its tooltip. */
const TITLE_MAX = 1000;

export class OperationsView {
  /**
   * @param {{active: HTMLElement, finished: HTMLElement, empty: HTMLElement, count: HTMLElement,
   *   finishedHeading: HTMLElement, onCancel: (id: string) => void}} els
   */
  constructor(els) {
    this.els = els;
    this.doc = els.active.ownerDocument;
    /** @type {Map<string, Row>} */
    this.rows = new Map();
    /** children by parent id (including parents not shown yet) @type {Map<string, Set<string>>} */
    this.kids = new Map();
    /** @type {(op: OperationState) => boolean} */
    this.filter = () => true;
    /** @type {(op: OperationState) => boolean} */
    this.canCancel = () => true;
    /** ids with a cancel sent from this page (until the hub's state says so) @type {Set<string>} */
    this.cancelSent = new Set();
    this.skewMs = 0;
    this.proto = this.buildPrototype();
    /** @type {IntersectionObserver|null} */
    this.io = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => this.onIntersect(entries), { rootMargin: '300px 0px' })
      : null;
    /** @type {number|null} elapsed times are shown as of this moment (stale data), else now */
    this.frozenAt = null;
    /** The latest moment elapsed times were shown for while live (local ms). */
    this.shownUntil = 0;
    /** For unique message element ids (the "more" toggle's aria-controls). */
    this.messageIds = 0;
    const click = (/** @type {Event} */ e) => {
      const target = e.target instanceof Element ? e.target : null;
      const more = target?.closest('.op-more');
      if (more) { this.toggleMessage(/** @type {HTMLElement} */ (more)); return; }
      const btn = /** @type {HTMLElement|null} */ (target ? target.closest('.op-cancel') : null);
      const li = btn?.closest('li.op');
      if (btn && li instanceof HTMLElement && li.dataset.opId) els.onCancel(li.dataset.opId);
    };
    els.active.addEventListener('click', click);
    els.finished.addEventListener('click', click);
  }

  buildPrototype() {
    const d = this.doc;
    /** @param {string} tag @param {string} cls @param {string} [testid] */
    const mk = (tag, cls, testid) => {
      const e = d.createElement(tag);
      e.className = cls;
      if (testid) e.dataset.testid = testid;
      return e;
    };
    const li = mk('li', 'op', 'op-row');
    const card = mk('div', 'op-card');
    const head = mk('div', 'op-head');
    const state = mk('span', 'badge state', 'op-state');
    const cancelReq = mk('span', 'badge cancel-req', 'op-cancel-requested');
    // Focus targets when the Cancel button disappears (see focusRow).
    state.tabIndex = -1;
    cancelReq.tabIndex = -1;
    head.append(mk('span', 'op-name', 'op-name'), mk('code', 'op-id', 'op-id'), state, cancelReq,
      mk('span', 'badge stale-badge', 'op-stale'));
    const cancel = mk('button', 'op-cancel', 'op-cancel');
    cancel.setAttribute('type', 'button');
    cancel.textContent = 'Cancel';
    head.append(cancel);
    const bar = mk('div', 'bar', 'op-bar');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    bar.append(mk('div', 'bar-fill'));
    const meta = mk('div', 'op-meta');
    meta.append(mk('span', 'pct', 'op-percent'), mk('span', 'step', 'op-step'), mk('span', 'rate', 'op-rate'),
      mk('span', 'eta', 'op-eta'), mk('span', 'elapsed', 'op-elapsed'));
    const more = mk('button', 'op-more', 'op-more');
    more.setAttribute('type', 'button');
    more.setAttribute('aria-expanded', 'false');
    more.textContent = 'more';
    more.hidden = true;
    card.append(head, bar, meta, mk('p', 'op-message', 'op-message'), more, mk('p', 'op-error', 'op-error'));
    li.append(card);
    return li;
  }

  /** @param {string} id @returns {Row} */
  createRow(id) {
    const el = /** @type {HTMLLIElement} */ (this.proto.cloneNode(true));
    el.dataset.opId = id;
    const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (el.querySelector(s));
    const f = {
      name: q('.op-name'), opid: q('.op-id'), state: q('.state'), cancelreq: q('.cancel-req'), stale: q('.stale-badge'),
      cancel: q('.op-cancel'), bar: q('.bar'), fill: q('.bar-fill'), pct: q('.pct'), step: q('.step'),
      rate: q('.rate'), eta: q('.eta'), elapsed: q('.elapsed'), message: q('.op-message'), more: q('.op-more'),
      error: q('.op-error'),
    };
    this.messageIds += 1;
    f.message.id = `op-message-${this.messageIds}`;
    f.more.setAttribute('aria-controls', f.message.id);
    f.opid.textContent = id;
    /** @type {Row} */
    const row = { id, el, f, kids: null, container: null, matches: true, visible: true, op: null, last: {}, onscreen: true, pending: false };
    for (const k of FIELDS) row.last[k] = undefined;
    this.rows.set(id, row);
    this.io?.observe(el);
    return row;
  }

  /** @param {IntersectionObserverEntry[]} entries */
  onIntersect(entries) {
    for (const e of entries) {
      const row = this.rows.get(/** @type {HTMLElement} */ (e.target).dataset.opId ?? '');
      if (!row || row.el !== e.target) continue;
      row.onscreen = e.isIntersecting;
      if (row.onscreen && row.pending && row.op) this.write(row, row.op, Date.now());
    }
  }

  /** @param {(op: OperationState) => boolean} pred @param {OperationStore} store */
  setFilter(pred, store) {
    this.filter = pred;
    for (const row of this.rows.values()) if (row.op) row.matches = pred(row.op);
    // Bottom-up: a row is shown when it matches or one of its descendants is shown.
    /** @type {(row: Row) => boolean} */
    const visit = (row) => {
      let any = row.matches;
      for (const kid of this.kids.get(row.id) ?? []) {
        const k = this.rows.get(kid);
        if (k && visit(k)) any = true;
      }
      this.setVisible(row, any);
      return any;
    };
    for (const row of this.rows.values()) {
      const parent = row.op?.parent_id;
      if (!parent || !this.rows.has(parent)) visit(row);
    }
    this.updateSummary(store);
  }

  /** @param {(op: OperationState) => boolean} pred */
  setPermission(pred) {
    this.canCancel = pred;
    for (const row of this.rows.values()) if (row.op) this.writeCancel(row, row.op);
  }

  /** @param {Row} row @param {boolean} v */
  setVisible(row, v) {
    if (row.visible === v) return;
    row.visible = v;
    row.el.hidden = !v;
  }

  /**
   * Apply one frame's changes.
   * @param {{reset: boolean, dirty: Set<string>}} changes @param {OperationStore} store @param {number} now
   */
  update(changes, store, now) {
    for (const id of changes.dirty) {
      const op = store.ops.get(id);
      if (!op) this.remove(id);
      else this.upsert(op, now);
    }
    if (changes.dirty.size || changes.reset) this.updateSummary(store);
  }

  /** @param {OperationStore} store */
  updateSummary(store) {
    const n = store.ops.size;
    let shown = 0;
    for (const r of this.rows.values()) if (r.visible) shown += 1;
    const c = store.counts();
    // Before the first snapshot nothing is known: no counts (not "0 operations").
    const text = !store.known ? '—'
      : shown === n ? `${n} operations · ${c.running} running · ${c.stalled} stalled · ${c.failed} failed`
        : `${shown} of ${n} operations shown`;
    if (this.els.count.textContent !== text) this.els.count.textContent = text;
    this.els.empty.hidden = n > 0;
    const fin = `Finished (${store.finishedCount})`;
    if (this.els.finishedHeading.textContent !== fin) this.els.finishedHeading.textContent = fin;
  }

  /** @param {OperationState} op @param {number} now */
  upsert(op, now) {
    let row = this.rows.get(op.operation_id);
    const prev = row?.op ?? null;
    if (!row) row = this.createRow(op.operation_id);
    row.op = op;
    if (op.cancel_requested || isFinished(op.state)) this.cancelSent.delete(op.operation_id);
    if (!prev || prev.parent_id !== op.parent_id) {
      if (prev?.parent_id) this.kids.get(prev.parent_id)?.delete(op.operation_id);
      if (op.parent_id) {
        if (!this.kids.has(op.parent_id)) this.kids.set(op.parent_id, new Set());
        this.kids.get(op.parent_id)?.add(op.operation_id);
      }
    }
    const movedGroup = !prev || isFinished(prev.state) !== isFinished(op.state) || prev.parent_id !== op.parent_id;
    if (movedGroup) this.place(row);
    if (!prev) {
      // Children that arrived before their parent move under it now.
      for (const kid of this.kids.get(op.operation_id) ?? []) {
        const k = this.rows.get(kid);
        if (k) this.place(k);
      }
    }
    if (movedGroup) {
      // A group is finished only when all of it is: its top row may move.
      const top = this.topOf(row);
      if (top !== row) this.place(top);
      const oldParent = prev?.parent_id && prev.parent_id !== op.parent_id ? this.rows.get(prev.parent_id) : undefined;
      if (oldParent) this.place(this.topOf(oldParent));
    }
    if (row.onscreen || !prev || movedGroup || prev.state !== op.state) this.write(row, op, now);
    else this.writeData(row, op);
    const m = this.filter(op);
    if (m !== row.matches || !prev) {
      row.matches = m;
      this.refreshVisibility(row);
    }
  }

  /** A row's visibility changed its inputs: recompute it and its ancestors'. @param {Row} row */
  refreshVisibility(row) {
    /** @type {Row|undefined} */
    let r = row;
    for (let depth = 0; r && depth < 256; depth++) {
      let any = r.matches;
      if (!any) for (const kid of this.kids.get(r.id) ?? []) if (this.rows.get(kid)?.visible) { any = true; break; }
      if (any === r.visible && r !== row) break;
      this.setVisible(r, any);
      /** @type {string|null|undefined} */ const parent = r.op?.parent_id;
      r = parent ? this.rows.get(parent) : undefined;
    }
  }

  /** The top row of a row's group (following parents shown on the page). @param {Row} row @returns {Row} */
  topOf(row) {
    let r = row;
    for (let depth = 0; depth < 256; depth++) {
      const parent = r.op?.parent_id;
      const p = parent ? this.rows.get(parent) : undefined;
      if (!p || p === row) break;
      r = p;
    }
    return r;
  }

  /**
   * Whether a row and all its descendants on the page are finished: only
   * then does its group belong in the Finished section. Running work under a
   * failed or completed parent stays in the active area.
   * @param {string} id @param {number} [depth]
   */
  groupFinished(id, depth = 0) {
    const op = this.rows.get(id)?.op;
    if (!op || !isFinished(op.state)) return false;
    if (depth > 256) return true;
    for (const kid of this.kids.get(id) ?? []) {
      if (this.rows.has(kid) && !this.groupFinished(kid, depth + 1)) return false;
    }
    return true;
  }

  /** @param {string} id */
  remove(id) {
    const row = this.rows.get(id);
    if (!row) return;
    this.rows.delete(id);
    this.io?.unobserve(row.el);
    row.el.remove();
    const parent = row.op?.parent_id;
    if (parent) this.kids.get(parent)?.delete(id);
    // Its children (if any remain) go back to the top level.
    for (const kid of this.kids.get(id) ?? []) {
      const k = this.rows.get(kid);
      if (k) this.place(k);
    }
    // Its group may be all finished now.
    const parentRow = parent ? this.rows.get(parent) : undefined;
    if (parentRow) this.place(this.topOf(parentRow));
  }

  /** Put a row in its container at its sorted position. @param {Row} row */
  place(row) {
    const op = /** @type {OperationState} */ (row.op);
    const parentRow = op.parent_id ? this.rows.get(op.parent_id) : undefined;
    let container;
    /** @type {(a: OperationState, b: OperationState) => number} negative: a before b */
    let cmp;
    let fromEnd = false;
    if (parentRow && parentRow !== row) {
      if (!parentRow.kids) {
        parentRow.kids = this.doc.createElement('ul');
        parentRow.kids.className = 'op-children';
        parentRow.el.append(parentRow.kids);
      }
      container = parentRow.kids;
      cmp = (a, b) => (a.started_at ?? 0) - (b.started_at ?? 0) || (a.operation_id < b.operation_id ? -1 : 1);
      fromEnd = true;
    } else if (this.groupFinished(row.id)) {
      container = this.els.finished;
      cmp = (a, b) => (b.finished_at ?? 0) - (a.finished_at ?? 0) || (a.operation_id < b.operation_id ? -1 : 1);
    } else {
      container = this.els.active;
      cmp = (a, b) => (b.started_at ?? 0) - (a.started_at ?? 0) || (a.operation_id < b.operation_id ? -1 : 1);
    }
    row.el.classList.toggle('child', container !== this.els.active && container !== this.els.finished);
    row.container = container;
    // Moving a node drops the focus inside it: put it back.
    const focused = this.doc.activeElement;
    const keep = focused instanceof HTMLElement && row.el.contains(focused) ? focused : null;
    try { this.placeIn(row, op, container, cmp, fromEnd); } finally {
      if (keep && this.doc.activeElement !== keep) keep.focus({ preventScroll: true });
    }
  }

  /**
   * @param {Row} row @param {OperationState} op @param {Element} container
   * @param {(a: OperationState, b: OperationState) => number} cmp @param {boolean} fromEnd
   */
  placeIn(row, op, container, cmp, fromEnd) {
    const opOf = (/** @type {Element} */ el) => this.rows.get(/** @type {HTMLElement} */ (el).dataset.opId ?? '')?.op;
    if (fromEnd) {
      let before = null;
      for (let el = container.lastElementChild; el; el = el.previousElementSibling) {
        if (el === row.el) continue;
        const other = opOf(el);
        if (other && cmp(other, op) <= 0) break;
        before = el;
      }
      if (row.el.parentNode !== container || row.el.nextElementSibling !== before) container.insertBefore(row.el, before);
    } else {
      let before = null;
      for (let el = container.firstElementChild; el; el = el.nextElementSibling) {
        if (el === row.el) continue;
        const other = opOf(el);
        if (other && cmp(op, other) < 0) { before = el; break; }
      }
      if (row.el.parentNode !== container || row.el.nextElementSibling !== before) container.insertBefore(row.el, before);
    }
  }

  /**
   * An off-screen row: only what tests and selectors read (state class and
   * data attributes); the text waits until it scrolls into view.
   * @param {Row} row @param {OperationState} op
   */
  writeData(row, op) {
    row.pending = true;
    row.el.dataset.progress = String(op.progress ?? '');
    row.el.dataset.offset = String(op.last_offset ?? '');
  }

  /** Write the fields of a row that changed. @param {Row} row @param {OperationState} op @param {number} now */
  write(row, op, now) {
    row.pending = false;
    const { f, last } = row;
    /** @param {string} k @param {HTMLElement} el @param {string} text */
    const text = (k, el, text) => { if (last[k] !== text) { last[k] = text; el.textContent = text; } };
    if (last.stateClass !== op.state) {
      if (last.stateClass) row.el.classList.remove(`s-${last.stateClass}`);
      row.el.classList.add(`s-${op.state}`);
      last.stateClass = op.state;
      row.el.dataset.state = op.state;
    }
    text('name', f.name, op.name || op.operation_id);
    text('state', f.state, op.state);
    const p = Math.max(0, Math.min(100, op.progress ?? 0));
    if (last.p !== p) {
      last.p = p;
      f.fill.style.setProperty('--p', String(p / 100));
      f.bar.setAttribute('aria-valuenow', p.toFixed(1));
      row.el.dataset.progress = String(op.progress ?? '');
    }
    if (last.name2 !== op.name) { last.name2 = op.name; f.bar.setAttribute('aria-label', `Progress of ${op.name || op.operation_id}`); }
    row.el.dataset.offset = String(op.last_offset ?? '');
    text('pct', f.pct, percent(op.progress));
    text('step', f.step, op.step ? `step: ${op.step}` : '');
    if (last.stepTitle !== op.step) {
      // A long step (a path, a URL) wraps in its card; its title gives it whole on one line.
      last.stepTitle = op.step;
      if (op.step) f.step.title = op.step;
      else f.step.removeAttribute('title');
    }
    const running = !isFinished(op.state);
    this.writeRateEta(row, op);
    const msg = op.message ?? '';
    if (last.message !== msg) {
      last.message = msg;
      f.message.textContent = msg;
      const long = msg.length > LONG_MESSAGE;
      // Long messages are clamped to three lines (CSS); the whole text is a click or a hover away.
      if (long) f.message.title = msg.length > TITLE_MAX ? `${msg.slice(0, TITLE_MAX)}…` : msg;
      else f.message.removeAttribute('title');
      if (last.more !== long) { last.more = long; f.more.hidden = !long; }
    }
    text('error', f.error, op.state === 'failed' ? (op.error ?? 'failed') : '');
    this.writeElapsed(row, op, now);
    const cr = running && (!!op.cancel_requested || this.cancelSent.has(op.operation_id));
    if (last.cancelreq !== cr) {
      const hadFocus = this.doc.activeElement === f.cancelreq;
      last.cancelreq = cr;
      f.cancelreq.textContent = cr ? 'cancel requested' : '';
      row.el.classList.toggle('cancel-pending', cr);
      // An emptied badge is not displayed and would drop the focus: keep it on the row.
      if (hadFocus && !cr) f.state.focus({ preventScroll: true });
    }
    this.writeCancel(row, op);
  }

  /**
   * Put the keyboard focus on a row: its "cancel requested" badge when it
   * shows one, else (or with `preferCancel`, when shown) its Cancel button,
   * else its state badge. For when the focused control went away.
   * @param {string} id @param {boolean} [preferCancel]
   */
  focusRow(id, preferCancel = false) {
    const row = this.rows.get(id);
    if (!row) return;
    const { f } = row;
    if (preferCancel && !f.cancel.hidden) f.cancel.focus();
    else if (f.cancelreq.textContent) f.cancelreq.focus();
    else f.state.focus();
  }

  /** Whether the focus is inside a row's own card (or nowhere). @param {string} id */
  hasFocus(id) {
    const a = this.doc.activeElement;
    if (!a || a === this.doc.body) return true;
    const card = this.rows.get(id)?.el.querySelector(':scope > .op-card');
    return !!card && card.contains(a);
  }

  /** The "more"/"less" toggle of a clamped message. @param {HTMLElement} btn */
  toggleMessage(btn) {
    const li = btn.closest('li.op');
    if (!li) return;
    const open = !li.classList.contains('msg-open');
    li.classList.toggle('msg-open', open);
    btn.setAttribute('aria-expanded', String(open));
    btn.textContent = open ? 'less' : 'more';
  }

  /** @param {Row} row @param {OperationState} op */
  writeCancel(row, op) {
    const show = (op.state === 'running' || op.state === 'stalled') && !op.cancel_requested
      && !this.cancelSent.has(op.operation_id) && this.canCancel(op);
    if (row.last.cancel !== show) {
      row.last.cancel = show;
      row.f.cancel.hidden = !show;
      row.f.cancel.setAttribute('aria-label', `Cancel ${op.name || op.operation_id}`);
    }
  }

  /**
   * Rate and ETA: the hub's estimate as of the last live moment. While the
   * data is stale they are not shown (a countdown would claim progress
   * nobody sees); they come back with the next live state.
   * @param {Row} row @param {OperationState} op
   */
  writeRateEta(row, op) {
    const re = this.frozenAt === null ? rateEta(op) : { rate: '', eta: '' };
    const { f, last } = row;
    if (last.rate !== re.rate) { last.rate = re.rate; f.rate.textContent = re.rate; }
    if (last.eta !== re.eta) { last.eta = re.eta; f.eta.textContent = re.eta; }
  }

  /** @param {Row} row @param {OperationState} op @param {number} now local ms */
  writeElapsed(row, op, now) {
    let s = null;
    if (this.frozenAt === null) this.shownUntil = Math.max(this.shownUntil, now);
    if (op.started_at !== null) {
      // While stale, elapsed times stop — at the last live moment, or at the
      // last time shown if that was later: they never step backwards.
      const end = op.finished_at ?? ((this.frozenAt === null ? now : Math.max(this.frozenAt, this.shownUntil)) + this.skewMs);
      s = Math.max(0, (end - op.started_at) / 1000);
    }
    const t = s === null ? '' : `${isFinished(op.state) ? 'took' : 'elapsed'} ${duration(s)}`;
    if (row.last.elapsed !== t) { row.last.elapsed = t; row.f.elapsed.textContent = t; }
  }

  /** Once a second: elapsed times of running operations. @param {number} now */
  tick(now) {
    for (const row of this.rows.values()) {
      if (!row.op || isFinished(row.op.state)) continue;
      if (row.onscreen) this.writeElapsed(row, row.op, now);
      else row.pending = true;
    }
  }

  /**
   * The stale badges' text (empty when live) and the moment the data was
   * last live (null when live): while stale, elapsed times stop there
   * instead of counting on as if the operations were known to still run
   * (never going back from what was shown), and no rate or ETA is shown.
   * @param {string} text @param {number|null} [frozenAt]
   */
  setStale(text, frozenAt = null) {
    const changed = this.frozenAt !== frozenAt;
    this.frozenAt = frozenAt;
    for (const row of this.rows.values()) {
      if (row.last.staleText !== text) { row.last.staleText = text; row.f.stale.textContent = text; }
      if (!changed || !row.op || isFinished(row.op.state)) continue;
      if (row.onscreen) { this.writeElapsed(row, row.op, Date.now()); this.writeRateEta(row, row.op); } else row.pending = true;
    }
  }

  /** @param {string} id */
  markCancelSent(id) {
    this.cancelSent.add(id);
    const row = this.rows.get(id);
    if (row?.op) { row.last.cancelreq = undefined; this.write(row, row.op, Date.now()); }
  }

  /** @param {string} id */
  unmarkCancelSent(id) {
    this.cancelSent.delete(id);
    const row = this.rows.get(id);
    if (row?.op) { row.last.cancelreq = undefined; this.write(row, row.op, Date.now()); }
  }
}
