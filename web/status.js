// @ts-check
/**
 * What the page says about its own connection and about the hub: the header
 * indicator (symbol + colour + text), the "Live updates paused" banner with
 * its countdown, the recovery toast, and the system panel with a sparkline.
 */

import { bytes, count, duration } from './format.js';
import { RETRYABLE_CODES } from './connection.js';

/** @typedef {import('./connection.js').Status} Status */

/** How long without a connection before the banner shows. */
export const BANNER_AFTER_MS = 2000;

/**
 * The header indicator's look for a status. Pure. `healthy` is false when
 * the link is connected but nothing arrived within one heartbeat interval
 * (plus slack): the page then says the data may be stale, well before the
 * link is given up on (two missed heartbeats).
 * @param {Status} s @param {number} now @param {boolean} [healthy]
 * @returns {{cls: string, symbol: string, text: string}}
 */
export function indicator(s, now, healthy = true) {
  switch (s.state) {
    case 'connected':
      if (!healthy) return { cls: 'quiet', symbol: '◌', text: 'Link quiet — data may be stale' };
      // Connected, but the missed events (or the snapshot) are still coming:
      // rows may be behind the hub until they are all in.
      if (s.syncing) return { cls: 'syncing', symbol: '◐', text: 'Catching up…' };
      return { cls: 'connected', symbol: '●', text: s.transport === 'sse' ? 'Connected (SSE)' : 'Connected' };
    case 'connecting':
      // Moving a working link to the other transport: not an outage.
      if (s.switching) {
        return { cls: 'connected', symbol: '●', text: s.transport === 'ws' ? 'Connected (switching to WebSocket)' : 'Connected (back to SSE)' };
      }
      return { cls: 'connecting', symbol: '◐', text: s.everConnected ? 'Reconnecting…' : 'Connecting…' };
    case 'waiting': {
      const secs = s.retryAt === null ? 0 : Math.max(0, Math.ceil((s.retryAt - now) / 1000));
      // The hub refused the subscription for now (e.g. RATE_LIMITED): not a
      // lost link, and not a failure either — it said to come back.
      if (s.errorCode && RETRYABLE_CODES.has(s.errorCode)) {
        return { cls: 'disconnected', symbol: '○', text: `Waiting: ${s.errorCode} — retry in ${secs} s` };
      }
      return { cls: 'disconnected', symbol: '○', text: `Disconnected — retry in ${secs} s` };
    }
    case 'failed':
      return { cls: 'failed', symbol: '●', text: `Failed: ${s.errorCode ?? 'error'}` };
    default:
      return { cls: 'disconnected', symbol: '○', text: 'Disconnected' };
  }
}

/**
 * The banner's text, or null when it should be hidden. Pure.
 * @param {Status} s @param {number} now
 */
export function bannerText(s, now) {
  if (s.state === 'connected' || s.disconnectedSince === null) return null;
  if (now - s.disconnectedSince <= BANNER_AFTER_MS) return null;
  if (s.state === 'failed') return `Live updates stopped — ${s.errorMessage ?? s.errorCode ?? 'connection failed'}`;
  if (s.state === 'waiting' && s.retryAt !== null) {
    const secs = Math.max(0, Math.ceil((s.retryAt - now) / 1000));
    if (s.errorCode && RETRYABLE_CODES.has(s.errorCode)) {
      return `Live updates paused — ${s.errorCode}: ${s.errorMessage ?? 'the hub asked to wait'} — retrying in ${secs} s`;
    }
    return `Live updates paused — reconnecting in ${secs} s`;
  }
  return 'Live updates paused — reconnecting now…';
}

/**
 * The stale badge text for data last known live at `lastLiveAt`. Pure.
 * @param {number|null} lastLiveAt @param {number} now
 */
export function staleText(lastLiveAt, now) {
  if (lastLiveAt === null) return 'stale';
  return `stale · ${duration(Math.max(0, (now - lastLiveAt) / 1000))}`;
}

/**
 * The page title: the namespace, and — whenever the data is not live — why,
 * first, so a background tab tells the truth. Pure. `healthy` as in
 * {@link indicator}.
 * @param {Status} s @param {string} namespace @param {boolean} [healthy]
 * @returns {string}
 */
export function pageTitle(s, namespace, healthy = true) {
  const base = `${namespace} · progress-hub`;
  /** @type {string|null} */
  let why;
  if (s.switching) why = null; // a move to the other transport, moments long
  else if (s.state === 'connected') why = !healthy ? 'link quiet' : s.syncing ? 'catching up' : null;
  else if (s.state === 'failed') why = 'failed';
  else if (s.lastLiveAt !== null) why = 'stale';
  else why = s.state === 'waiting' ? 'disconnected' : 'connecting';
  return why ? `⚠ ${why} · ${base}` : base;
}

/** @param {{type: string, mode: string, recovered: number}} synced */
export function toastText(synced) {
  if (synced.mode === 'recovered') {
    return `Live again — ${synced.recovered} ${synced.recovered === 1 ? 'update' : 'updates'} recovered`;
  }
  return 'Live again — reloaded from snapshot';
}

export class ConnectionUI {
  /**
   * @param {{root: HTMLElement, dot: HTMLElement, text: HTMLElement, banner: HTMLElement, bannerText: HTMLElement,
   *   toast: HTMLElement}} els
   */
  constructor(els) {
    this.els = els;
    /** @type {any} */ this.toastTimer = null;
    this.last = { cls: '', text: '', banner: /** @type {string|null} */ (null) };
  }

  /** @param {Status} s @param {number} now @param {boolean} [healthy] see {@link indicator} */
  update(s, now, healthy = true) {
    const ind = indicator(s, now, healthy);
    const { root, dot, text, banner, bannerText: bt } = this.els;
    if (this.last.cls !== ind.cls) {
      root.classList.remove(`conn-${this.last.cls}`);
      root.classList.add(`conn-${ind.cls}`);
      root.dataset.state = ind.cls;
      dot.textContent = ind.symbol;
      this.last.cls = ind.cls;
    }
    if (this.last.text !== ind.text) { text.textContent = ind.text; this.last.text = ind.text; }
    const b = bannerText(s, now);
    if (this.last.banner !== b) {
      this.last.banner = b;
      banner.hidden = b === null;
      if (b !== null) bt.textContent = b;
      banner.classList.toggle('banner-failed', s.state === 'failed');
    }
  }

  /**
   * @param {string} message
   * @param {'ok'|'info'|'error'} [kind] `info`: neither a success nor a failure (e.g. an outcome not known yet)
   */
  toast(message, kind = 'ok') {
    const t = this.els.toast;
    t.textContent = message;
    t.classList.toggle('toast-error', kind === 'error');
    t.classList.toggle('toast-info', kind === 'info');
    t.hidden = false;
    if (this.toastTimer) clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { t.hidden = true; }, kind === 'ok' ? 6000 : 8000);
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Sparkline points for `values` in a `w`×`h` box. Pure.
 * @param {number[]} values @param {number} w @param {number} h
 */
export function sparkPoints(values, w, h) {
  if (values.length === 0) return '';
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`).join(' ');
}

export class SystemPanel {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    /** @type {number[]} */ this.history = [];
    /** @type {Record<string, HTMLElement>} */ this.cells = {};
    for (const el of root.querySelectorAll('[data-field]')) {
      this.cells[/** @type {HTMLElement} */ (el).dataset.field ?? ''] = /** @type {HTMLElement} */ (el);
    }
    this.line = root.querySelector('polyline');
    this.staleNote = /** @type {HTMLElement|null} */ (root.querySelector('.sys-stale'));
  }

  /** @param {any} msg the `system_status` message */
  update(msg) {
    const d = msg.data ?? {};
    const ops = d.operations ?? {};
    /** @param {string} k @param {string} v */
    const set = (k, v) => { const c = this.cells[k]; if (c && c.textContent !== v) c.textContent = v; };
    set('connections', count(d.connections));
    set('subscriptions', count(d.subscriptions));
    set('namespaces', count(d.namespaces));
    set('running', count(ops.running));
    set('stalled', count(ops.stalled));
    set('finished', count((ops.completed ?? 0) + (ops.failed ?? 0) + (ops.canceled ?? 0)));
    set('events_per_second', `${count(d.events_per_second)}/s`);
    set('deliveries_per_second', `${count(d.deliveries_per_second)}/s`);
    set('cpu', d.cpu_percent === null || d.cpu_percent === undefined ? '–' : `${Number(d.cpu_percent).toFixed(0)} %`);
    set('memory', bytes(d.memory_bytes));
    set('uptime', duration(d.uptime_seconds));
    const store = d.store ? (d.store.ok ? 'ok' : `failing: ${d.store.error ?? 'error'}`) : '–';
    set('store', store);
    set('backplane', dep(d.backplane));
    set('upstream', dep(d.upstream));
    this.root.classList.toggle('is-stale', !!msg.is_stale);
    if (this.staleNote) {
      this.staleNote.hidden = !msg.is_stale;
      this.staleNote.textContent = msg.is_stale ? `Partly cached${msg.error ? `: ${msg.error}` : ''}` : '';
    }
    if (typeof d.events_per_second === 'number') {
      this.history.push(d.events_per_second);
      if (this.history.length > 60) this.history.shift();
      this.line?.setAttribute('points', sparkPoints(this.history, 120, 28));
    }
  }
}

/** @param {any} v */
function dep(v) {
  if (v === null || v === undefined) return 'not configured';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return v.ok === false ? `down${v.error ? `: ${v.error}` : ''}` : (v.state ?? 'ok');
  return String(v);
}

export { SVG_NS };
