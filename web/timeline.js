// @ts-check
/**
 * The timeline: recently finished operations as bars on a time axis
 * (start → end, coloured by outcome) in an SVG. Hovering or focusing a bar
 * shows its details. Lanes are packed greedily so bars never overlap.
 */

import { clock, duration } from './format.js';

/** @typedef {import('./connection.js').OperationState} OperationState */

const SVG_NS = 'http://www.w3.org/2000/svg';
const LANE_H = 12;
const LANE_GAP = 3;
const AXIS_H = 18;
export const MAX_LANES = 12;
/** Room for one time label ("23:59:59" at 10 px) plus a gap, in SVG units. */
export const LABEL_PX = 56;

/**
 * How many intervals the time axis of a `width`-unit plot is cut into (at
 * most `max`), so that no two labels overlap: the outer labels are anchored
 * at the ends and the inner ones centred, so neighbours need
 * `1.5 × labelPx` between them (`2 × labelPx` with only the two outer ones).
 * Pure. At least 1 (the two ends).
 * @param {number} width @param {number} labelPx @param {number} [max]
 * @returns {number}
 */
export function axisIntervals(width, labelPx, max = 4) {
  for (let n = max; n >= 2; n--) if (width / n >= 1.5 * labelPx) return n;
  return 1;
}

/**
 * Assigns operations to lanes so bars never overlap, newest first: each goes
 * to the first lane whose earliest bar starts after it ends. Pure. When
 * `maxLanes` are full, the oldest operations are left out.
 * @param {OperationState[]} ops @param {number} maxLanes @param {number} minGapMs
 * @returns {{op: OperationState, lane: number}[]}
 */
export function packLanes(ops, maxLanes, minGapMs) {
  const sorted = [...ops].sort((a, b) => (b.started_at ?? 0) - (a.started_at ?? 0));
  /** @type {number[]} earliest start in each lane */
  const laneStart = [];
  /** @type {{op: OperationState, lane: number}[]} */
  const out = [];
  for (const op of sorted) {
    const start = op.started_at ?? 0;
    const end = Math.max(start, op.finished_at ?? start);
    let lane = laneStart.findIndex((s) => end + minGapMs <= s);
    if (lane < 0) {
      if (laneStart.length >= maxLanes) continue;
      lane = laneStart.length;
      laneStart.push(Infinity);
    }
    laneStart[lane] = start;
    out.push({ op, lane });
  }
  return out;
}

export class Timeline {
  /** @param {{root: HTMLElement, tooltip: HTMLElement, note: HTMLElement}} els */
  constructor(els) {
    this.els = els;
    const doc = els.root.ownerDocument;
    this.svg = doc.createElementNS(SVG_NS, 'svg');
    this.svg.setAttribute('role', 'group');
    this.svg.setAttribute('aria-label', 'Recently finished operations on a time axis');
    this.svg.classList.add('tl-svg');
    els.root.append(this.svg);
    /** @type {Map<Element, OperationState>} */
    this.byEl = new Map();
    const show = (/** @type {Event} */ e) => this.showTip(/** @type {Element} */ (e.target));
    const hide = () => { els.tooltip.hidden = true; };
    this.svg.addEventListener('mouseover', show);
    this.svg.addEventListener('focusin', show);
    this.svg.addEventListener('mouseout', hide);
    this.svg.addEventListener('focusout', hide);
  }

  /** @param {OperationState[]} finished newest first @param {number} now server-time ms */
  render(finished, now) {
    const width = Math.max(200, Math.round(this.els.root.clientWidth || 600));
    const ops = finished.filter((o) => o.started_at !== null && o.finished_at !== null);
    const t1 = Math.max(now, ...ops.map((o) => o.finished_at ?? 0));
    const t0 = Math.min(t1 - 20_000, ...ops.map((o) => o.started_at ?? t1));
    const span = Math.max(1, t1 - t0);
    // Bars closer than 4 px go to different lanes.
    const placed = packLanes(ops, MAX_LANES, (span * 4) / width);
    const lanes = placed.reduce((m, p) => Math.max(m, p.lane + 1), 0);
    const height = AXIS_H + Math.max(1, lanes) * (LANE_H + LANE_GAP);
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.setAttribute('height', String(height));
    const x = (/** @type {number} */ t) => ((t - t0) / span) * (width - 8) + 4;
    const doc = this.svg.ownerDocument;
    const frag = doc.createDocumentFragment();
    // Axis: up to 4 intervals with local times, as many as fit without overlapping labels.
    const n = axisIntervals(width - 8, LABEL_PX);
    for (let i = 0; i <= n; i++) {
      const t = t0 + (span * i) / n;
      const line = doc.createElementNS(SVG_NS, 'line');
      line.setAttribute('x1', String(x(t)));
      line.setAttribute('x2', String(x(t)));
      line.setAttribute('y1', '0');
      line.setAttribute('y2', String(height - AXIS_H + 2));
      line.setAttribute('class', 'tl-grid');
      const label = doc.createElementNS(SVG_NS, 'text');
      label.setAttribute('x', String(x(t)));
      label.setAttribute('y', String(height - 4));
      label.setAttribute('class', 'tl-label');
      label.setAttribute('data-testid', 'timeline-label');
      label.setAttribute('text-anchor', i === 0 ? 'start' : i === n ? 'end' : 'middle');
      label.textContent = clock(t);
      frag.append(line, label);
    }
    this.byEl.clear();
    for (const { op, lane } of placed) {
      const r = doc.createElementNS(SVG_NS, 'rect');
      const x0 = x(op.started_at ?? t0);
      const x1 = Math.max(x0 + 2, x(op.finished_at ?? t1));
      r.setAttribute('x', x0.toFixed(1));
      r.setAttribute('y', String(lane * (LANE_H + LANE_GAP)));
      r.setAttribute('width', (x1 - x0).toFixed(1));
      r.setAttribute('height', String(LANE_H));
      r.setAttribute('rx', '2');
      r.setAttribute('class', `tl-bar tl-${op.state}`);
      r.setAttribute('tabindex', '0');
      r.setAttribute('role', 'img');
      r.setAttribute('data-testid', 'timeline-bar');
      r.setAttribute('data-op-id', op.operation_id);
      r.setAttribute('aria-label', `${op.name || op.operation_id}: ${op.state}, ${duration(((op.finished_at ?? 0) - (op.started_at ?? 0)) / 1000)}`);
      this.byEl.set(r, op);
      frag.append(r);
    }
    this.svg.replaceChildren(frag);
    const hidden = ops.length - placed.length;
    this.els.note.textContent = ops.length === 0 ? 'No finished operations yet.'
      : `${placed.length} finished operation${placed.length === 1 ? '' : 's'}${hidden > 0 ? ` (${hidden} more not drawn)` : ''}`;
  }

  /** @param {Element} target */
  showTip(target) {
    const op = this.byEl.get(target);
    const tip = this.els.tooltip;
    if (!op) { tip.hidden = true; return; }
    const lines = [
      op.name || op.operation_id,
      `${op.operation_id} · ${op.kind}`,
      `${op.state} · ${clock(op.started_at)} → ${clock(op.finished_at)} (${duration(((op.finished_at ?? 0) - (op.started_at ?? 0)) / 1000)})`,
    ];
    if (op.error) lines.push(`error: ${op.error}`);
    else if (op.message) lines.push(op.message);
    tip.replaceChildren(...lines.map((l, i) => {
      const d = tip.ownerDocument.createElement('div');
      if (i === 0) d.className = 'tip-title';
      d.textContent = l;
      return d;
    }));
    const box = target.getBoundingClientRect();
    const host = this.els.root.getBoundingClientRect();
    // CSSOM (allowed by the CSP), not a style attribute.
    tip.style.setProperty('--tip-x', `${Math.round(box.left - host.left + box.width / 2)}px`);
    tip.style.setProperty('--tip-y', `${Math.round(box.bottom - host.top + 6)}px`);
    tip.hidden = false;
  }
}
