// @ts-check
/**
 * Pure formatting and matching helpers for the dashboard (no DOM): numbers,
 * durations, ages, bytes, and the protocol's operation-id globs.
 */

/** @param {number|null|undefined} p percent 0..100 */
export function percent(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return '–';
  const v = Math.max(0, Math.min(100, p));
  return `${v >= 99.95 && v < 100 ? '99.9' : v.toFixed(1)} %`;
}

/**
 * A duration in seconds as `42 s`, `3 m 05 s`, `2 h 07 m`, `3 d 4 h`.
 * @param {number|null|undefined} s
 */
export function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s) || s < 0) return '–';
  const t = Math.round(s);
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} m ${String(t % 60).padStart(2, '0')} s`;
  if (t < 86400) return `${Math.floor(t / 3600)} h ${String(Math.floor((t % 3600) / 60)).padStart(2, '0')} m`;
  return `${Math.floor(t / 86400)} d ${Math.floor((t % 86400) / 3600)} h`;
}

/** Rate in percent per second. @param {number|null|undefined} r */
export function rate(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  if (r === 0) return '0 %/s';
  if (Math.abs(r) >= 10) return `${r.toFixed(0)} %/s`;
  if (Math.abs(r) >= 0.1) return `${r.toFixed(1)} %/s`;
  return `${(r * 60).toFixed(2)} %/min`;
}

/** @param {number|null|undefined} n */
export function bytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Compact count: 950, 12.3k, 4.5M. @param {number|null|undefined} n */
export function count(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (Math.abs(n) < 1000) return Number.isInteger(n) ? String(n) : n.toFixed(1);
  if (Math.abs(n) < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

/** Local time of day for a ms timestamp. @param {number|null|undefined} ms */
export function clock(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}

/**
 * A glob as the protocol defines it: `*` any run of characters, `?` one;
 * everything else literal. Compiled once per pattern.
 * @param {string} glob
 * @returns {RegExp}
 */
export function globToRegExp(glob) {
  let re = '^';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

/**
 * The dashboard's filter: `glob` matches the operation id (or, case-
 * insensitively, its name; a glob without wildcards matches as a substring),
 * `kind` exact, `state` one state or `active` (running or stalled).
 * @typedef {{glob: string, kind: string, state: string}} ViewFilter
 */

/**
 * @param {ViewFilter} f
 * @returns {(op: {operation_id: string, name?: string|null, kind?: string|null, state: string}) => boolean}
 */
export function compileFilter(f) {
  const glob = f.glob.trim();
  /** @type {((s: string) => boolean)|null} */
  let textTest = null;
  if (glob) {
    if (/[*?]/.test(glob)) {
      const re = globToRegExp(glob);
      const reI = new RegExp(re.source, 'is');
      textTest = (s) => re.test(s) || reI.test(s);
    } else {
      const needle = glob.toLowerCase();
      textTest = (s) => s.toLowerCase().includes(needle);
    }
  }
  const kind = f.kind;
  const state = f.state;
  return (op) => {
    if (kind && op.kind !== kind) return false;
    if (state) {
      if (state === 'active') { if (op.state !== 'running' && op.state !== 'stalled') return false; }
      else if (op.state !== state) return false;
    }
    if (textTest && !textTest(op.operation_id) && !(op.name && textTest(op.name))) return false;
    return true;
  };
}

/**
 * The rate and ETA texts of an operation's row. A stalled operation shows
 * no countdown (the hub's estimate then only extrapolates the rate its
 * silence decayed: no promise worth a clock); a finished one shows neither.
 * @param {{state: string, rate: number|null, eta_seconds: number|null}} op
 * @returns {{rate: string, eta: string}}
 */
export function rateEta(op) {
  if (isFinished(op.state)) return { rate: '', eta: '' };
  if (op.state === 'stalled') return { rate: 'stalled', eta: 'ETA unknown' };
  return {
    rate: op.rate !== null && op.rate !== undefined ? rate(op.rate) : '',
    eta: op.eta_seconds !== null && op.eta_seconds !== undefined ? `ETA ${duration(op.eta_seconds)}` : '',
  };
}

/** @param {string} s */
export function isFinished(s) {
  return s === 'completed' || s === 'failed' || s === 'canceled';
}

/**
 * A label of at most `max` characters: longer text keeps its start and ends
 * with "…" (the full text goes in a title). Pure.
 * @param {string} text @param {number} [max=40] @returns {string}
 */
export function shortLabel(text, max = 40) {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}
