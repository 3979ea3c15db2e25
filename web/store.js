// @ts-check
/**
 * The dashboard's model of one namespace (no DOM): the latest state object
 * of every operation, what changed since the last frame, and a bounded set
 * of finished operations. The hub sends full state objects, so applying an
 * event is a replace, never a merge.
 */

import { isFinished } from './format.js';

/** @typedef {import('./connection.js').OperationState} OperationState */

export class OperationStore {
  /** @param {{maxFinished?: number}} [opts] */
  constructor(opts = {}) {
    /** Finished operations kept at most (oldest finished dropped first). */
    this.maxFinished = opts.maxFinished ?? 5000;
    /** @type {Map<string, OperationState>} */
    this.ops = new Map();
    /** Ids changed (or removed) since the last `take`. @type {Set<string>} */
    this.dirty = new Set();
    /** Whether everything was replaced since the last `take` (snapshot). */
    this.reset = false;
    /** Whether an operation finished or was removed since the last `take`. */
    this.finishedChanged = false;
    /** Newest event timestamp applied since the last `take` (for lag figures). */
    this.newestTimestamp = 0;
    this.applied = 0;
    this.finishedCount = 0;
    /** Whether a snapshot arrived (since the last `clear`): until then nothing is known, not "0 operations". */
    this.known = false;
  }

  /** Replace everything with a snapshot. @param {OperationState[]} operations */
  replace(operations) {
    for (const id of this.ops.keys()) this.dirty.add(id);
    this.ops.clear();
    this.finishedCount = 0;
    for (const op of operations) {
      if (!op || typeof op.operation_id !== 'string') continue;
      this.ops.set(op.operation_id, op);
      this.dirty.add(op.operation_id);
      if (isFinished(op.state)) this.finishedCount += 1;
    }
    this.reset = true;
    this.finishedChanged = true;
    this.known = true;
    this.trim();
  }

  /** Forget everything (namespace switch): nothing is known until the next snapshot. */
  clear() {
    this.replace([]);
    this.known = false;
  }

  /**
   * Apply one event's resulting state.
   * @param {OperationState} state @param {number} [timestamp] the event's server time
   */
  apply(state, timestamp = 0) {
    if (!state || typeof state.operation_id !== 'string') return;
    const id = state.operation_id;
    const prev = this.ops.get(id);
    const wasFinished = prev ? isFinished(prev.state) : false;
    const nowFinished = isFinished(state.state);
    this.ops.set(id, state);
    this.dirty.add(id);
    this.applied += 1;
    if (timestamp > this.newestTimestamp) this.newestTimestamp = timestamp;
    if (wasFinished !== nowFinished) {
      this.finishedCount += nowFinished ? 1 : -1;
      this.finishedChanged = true;
      if (nowFinished) this.trim();
    }
  }

  /** Drop the oldest finished operations beyond `maxFinished`. */
  trim() {
    if (this.finishedCount <= this.maxFinished) return;
    const finished = [...this.ops.values()].filter((o) => isFinished(o.state))
      .sort((a, b) => (a.finished_at ?? 0) - (b.finished_at ?? 0));
    for (const op of finished.slice(0, this.finishedCount - this.maxFinished)) {
      this.ops.delete(op.operation_id);
      this.dirty.add(op.operation_id);
    }
    this.finishedCount = Math.min(this.finishedCount, this.maxFinished);
    this.finishedChanged = true;
  }

  /**
   * Forget finished operations the hub has dropped: those finished at least
   * `retentionMs` (the hub's `finished_retention_ms`) before `now` (hub
   * time). Without it the page would show what a reload would not.
   * @param {number} now server-time ms @param {number} retentionMs
   * @returns {number} how many were dropped
   */
  expire(now, retentionMs) {
    if (!(retentionMs >= 0) || this.finishedCount === 0) return 0;
    let dropped = 0;
    for (const [id, op] of this.ops) {
      if (!isFinished(op.state) || op.finished_at === null || op.finished_at === undefined) continue;
      if (op.finished_at + retentionMs > now) continue;
      this.ops.delete(id);
      this.dirty.add(id);
      dropped += 1;
    }
    if (dropped) {
      this.finishedCount -= dropped;
      this.finishedChanged = true;
    }
    return dropped;
  }

  /**
   * What changed since the last call; clears the change set.
   * @returns {{reset: boolean, dirty: Set<string>, finishedChanged: boolean, newestTimestamp: number}}
   */
  take() {
    const out = { reset: this.reset, dirty: this.dirty, finishedChanged: this.finishedChanged, newestTimestamp: this.newestTimestamp };
    this.dirty = new Set();
    this.reset = false;
    this.finishedChanged = false;
    this.newestTimestamp = 0;
    return out;
  }

  /** @returns {boolean} */
  hasChanges() { return this.reset || this.dirty.size > 0; }

  /** Counts by state. @returns {Record<string, number>} */
  counts() {
    /** @type {Record<string, number>} */
    const c = { running: 0, stalled: 0, completed: 0, failed: 0, canceled: 0 };
    for (const op of this.ops.values()) c[op.state] = (c[op.state] ?? 0) + 1;
    return c;
  }

  /** Known kinds, sorted. */
  kinds() {
    return [...new Set([...this.ops.values()].map((o) => o.kind).filter(Boolean))].sort();
  }

  /**
   * The most recently finished operations (newest first).
   * @param {number} limit @returns {OperationState[]}
   */
  recentlyFinished(limit) {
    return [...this.ops.values()]
      .filter((o) => isFinished(o.state) && o.finished_at !== null && o.started_at !== null)
      .sort((a, b) => (b.finished_at ?? 0) - (a.finished_at ?? 0))
      .slice(0, limit);
  }
}
