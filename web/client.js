// @ts-check
/**
 * progress-hub browser client: a live subscription to one namespace of a hub
 * that survives the network — and tells the truth when it cannot.
 *
 * Two layers:
 *  - {@link ConnectionMachine} (`connection.js`): socket-free, clock-free, DOM-free. It takes
 *    events (`open`, a received frame, `close`, a timer tick, a wake-up, …)
 *    with the current time and returns actions (`open` a transport, `send`,
 *    `close`, `probe`, and notifications for the app). It owns backoff,
 *    heartbeat liveness, resume from `(epoch, offset)`, snapshot handling,
 *    dedupe by offset and the WebSocket → SSE fallback. Tested under node.
 *  - {@link HubClient}: the thin driver that performs those actions with
 *    `WebSocket`, `EventSource`, `fetch`, timers and the browser's `online`,
 *    `visibilitychange` and `pageshow` events. It never holds two transports.
 *
 * @example
 *   import { HubClient } from './client.js';
 *   const client = new HubClient({ url: location.origin, namespace: 'default' });
 *   client.on('snapshot', ({ operations }) => replaceAll(operations));
 *   client.on('event', (ev) => upsert(ev.state));
 *   client.on('status', (s) => showConnection(s.state));
 *   client.start();
 *
 * Wire format: protocol v1 (docs/PROTOCOL.md). A server frame may hold
 * several JSON messages separated by `\n`.
 */

import { ConnectionMachine } from './connection.js';
import { decodeClaims } from './auth.js';

export { ConnectionMachine, backoffDelay, splitFrame } from './connection.js';

/** @typedef {import('./connection.js').Action} Action */
/** @typedef {import('./connection.js').Status} Status */
/** @typedef {import('./connection.js').Filter} Filter */
/** @typedef {import('./connection.js').MachineOptions} MachineOptions */
/** @typedef {import('./connection.js').OperationState} OperationState */
/** @typedef {import('./connection.js').HubEvent} HubEvent */

/**
 * Builds the WebSocket URL of a hub (`ws(s)://host/ws`, the token as
 * `?token=` because browsers cannot set headers on a WebSocket).
 * @param {string} base  the hub's http(s) origin, e.g. `location.origin`
 * @param {string|null} token
 */
export function wsUrl(base, token) {
  const u = new URL('/ws', base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

/**
 * The SSE URL for a subscription, resuming from `lastEventId` (`epoch:offset`).
 * @param {string} base @param {string} namespace @param {Filter|null} filter
 * @param {string|null} token @param {string|null} lastEventId
 */
export function sseUrl(base, namespace, filter, token, lastEventId) {
  const u = new URL('/api/v1/stream', base);
  u.searchParams.set('namespace', namespace);
  if (filter?.operations?.length) u.searchParams.set('operations', filter.operations.join(','));
  if (filter?.kinds?.length) u.searchParams.set('kinds', filter.kinds.join(','));
  if (lastEventId) u.searchParams.set('last_event_id', lastEventId);
  // Latest state only, as over WebSocket (see ConnectionMachine.subscribeActions).
  u.searchParams.set('conflate', 'true');
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

/**
 * How long to wait before fetching a fresh token for one that expires at
 * `expSec` (a JWT's `exp`, seconds): until a fifth of its remaining life
 * before `exp`, at least 1 s and at most 60 s before it (the hub closes a
 * connection 5 s past `exp`). 0 once that moment has passed.
 * @param {number} expSec @param {number} nowMs @returns {number}
 */
export function renewalDelay(expSec, nowMs) {
  const left = expSec * 1000 - nowMs;
  const lead = Math.min(60000, Math.max(1000, left / 5));
  return Math.max(0, Math.round(left - lead));
}

/**
 * @typedef {Object} ClientOptions
 * @property {string} [url]        the hub's http(s) origin (default: the page's origin)
 * @property {string} [namespace]  default "default"
 * @property {Filter|null} [filter]
 * @property {string|null} [token]
 * @property {() => Promise<string|null>} [getToken]  fetches a token: before the first
 *                                 connection when no `token` is given, shortly before the
 *                                 current one expires (sent as `refresh` on a live
 *                                 WebSocket, so nothing reconnects), and when the hub
 *                                 refuses one as expired
 * @property {Partial<MachineOptions>} [machine]  backoff/heartbeat tuning
 * @property {any} [env]           globals to use (WebSocket, EventSource, fetch, setTimeout,
 *                                 clearTimeout, addEventListener, document, Date); default globalThis
 */

/**
 * The browser driver: performs the machine's actions. Events: `status`,
 * `snapshot`, `event`, `synced`, `system_status`, `heartbeat`,
 * `server_error`, `message`.
 */
export class HubClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    const env = options.env ?? globalThis;
    this.env = env;
    this.base = options.url ?? env.location?.origin ?? 'http://127.0.0.1:8765';
    this.machine = new ConnectionMachine({
      namespace: options.namespace ?? 'default', filter: options.filter ?? null,
      token: options.token ?? null, ...(options.machine ?? {}),
    });
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {Map<number, {resolve: Function, timer: any}>} */
    this.pending = new Map();
    /** @type {any} */ this.conn = null;
    this.generation = 0;
    /** @type {any} */ this.timer = null;
    /** @type {number|null} */ this.timerAt = null;
    /** Transports ever opened at the same time (the invariant says ≤ 1). */
    this.maxConcurrent = 0;
    this.live = 0;
    this.onWake = (/** @type {any} */ e) => {
      if (e?.type === 'visibilitychange' && env.document?.visibilityState !== 'visible') return;
      this.run(this.machine.wake(e?.type ?? 'wake', this.now()));
    };
    this.listening = false;
    this.getToken = options.getToken ?? null;
    /** @type {any} */ this.renewTimer = null;
    /** @type {Promise<void>|null} */ this.renewing = null;
    this.running = false;
  }

  now() { return this.env.Date ? this.env.Date.now() : Date.now(); }

  /**
   * Subscribe to a notification.
   * @param {string} name @param {(payload: any) => void} fn
   * @returns {() => void} unsubscribe
   */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name)?.add(fn);
    return () => this.listeners.get(name)?.delete(fn);
  }

  /** @param {string} name @param {any} payload */
  emit(name, payload) {
    for (const fn of this.listeners.get(name) ?? []) {
      try { fn(payload); } catch (e) { this.env.console?.error?.(e); }
    }
  }

  /** @returns {Status} */
  status() { return this.machine.status(); }

  start() {
    if (!this.listening && typeof this.env.addEventListener === 'function') {
      this.listening = true;
      this.env.addEventListener('online', this.onWake);
      this.env.addEventListener('pageshow', this.onWake);
      this.env.addEventListener('focus', this.onWake);
      (this.env.document ?? this.env).addEventListener?.('visibilitychange', this.onWake);
      (this.env.document ?? this.env).addEventListener?.('resume', this.onWake);
    }
    this.running = true;
    if (this.getToken && !this.machine.token) {
      // Connect once there is a token to connect with (or without one, if
      // the provider has none: the hub then says what it needs).
      this.renewToken().then(() => { if (this.running) this.run(this.machine.start(this.now())); });
      return;
    }
    this.scheduleRenewal(this.machine.token);
    this.run(this.machine.start(this.now()));
  }

  stop() {
    this.running = false;
    if (this.renewTimer) this.env.clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.run(this.machine.stop(this.now()));
    if (this.listening) {
      this.listening = false;
      this.env.removeEventListener?.('online', this.onWake);
      this.env.removeEventListener?.('pageshow', this.onWake);
      this.env.removeEventListener?.('focus', this.onWake);
      (this.env.document ?? this.env).removeEventListener?.('visibilitychange', this.onWake);
      (this.env.document ?? this.env).removeEventListener?.('resume', this.onWake);
    }
    if (this.timer) this.env.clearTimeout(this.timer);
    this.timer = null;
  }

  retryNow() { this.run(this.machine.retryNow(this.now())); }

  /**
   * Whether the link is connected and heard from within one heartbeat
   * interval plus slack (see {@link ConnectionMachine#healthy}). Connected
   * but not healthy: the link is quiet and the data may be stale, though it
   * is not given up on before two missed heartbeats.
   * @returns {boolean}
   */
  healthy() { return this.machine.healthy(this.now()); }

  /**
   * Use another token: on a live WebSocket it is sent as `refresh`,
   * otherwise the next connection uses it. Resolves with the hub's reply to
   * the `refresh` (`ok`, or an `error` message; a TIMEOUT error after 10 s),
   * or with null when the token goes with a new connection instead (then the
   * `status` events say how it went).
   * @param {string|null} token
   * @returns {Promise<Record<string, any>|null>}
   */
  setToken(token) {
    const actions = this.machine.setToken(token, this.now());
    const refresh = actions.find((a) => a.type === 'send' && /** @type {any} */ (a.message).type === 'refresh');
    /** @type {Promise<Record<string, any>|null>} */
    let reply = Promise.resolve(null);
    if (refresh && refresh.type === 'send') {
      const id = /** @type {any} */ (refresh.message).id;
      reply = this.awaitReply(id, 'The hub did not answer the token refresh in time.');
    }
    this.run(actions);
    this.scheduleRenewal(token);
    return reply;
  }

  /**
   * A promise for the reply to request `id` (an `error` with code TIMEOUT
   * after 10 s).
   * @param {number} id @param {string} timeoutMessage
   * @returns {Promise<Record<string, any>>}
   */
  awaitReply(id, timeoutMessage) {
    return new Promise((resolve) => {
      const timer = this.env.setTimeout(() => {
        this.pending.delete(id);
        resolve({ type: 'error', code: 'TIMEOUT', message: timeoutMessage });
      }, 10000);
      this.pending.set(id, { resolve, timer });
    });
  }

  /** With `getToken`, arranges to fetch the next token before `token` expires. @param {string|null} token */
  scheduleRenewal(token) {
    if (this.renewTimer) this.env.clearTimeout(this.renewTimer);
    this.renewTimer = null;
    const exp = token ? decodeClaims(token)?.exp : undefined;
    if (!this.getToken || !this.running || typeof exp !== 'number') return;
    this.renewTimer = this.env.setTimeout(() => { this.renewTimer = null; this.renewToken(); }, renewalDelay(exp, this.now()));
  }

  /** Asks `getToken` for a token and uses it if it is a new one (one call at a time; retried in 5 s on failure). */
  renewToken() {
    const get = this.getToken;
    if (!get) return Promise.resolve();
    this.renewing ??= (async () => {
      try {
        const token = await get();
        if (token && token !== this.machine.token) this.setToken(token);
      } catch (e) {
        this.env.console?.error?.(e);
        if (this.running) this.renewTimer = this.env.setTimeout(() => { this.renewTimer = null; this.renewToken(); }, 5000);
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /** @param {string} namespace @param {Filter|null} [filter] */
  subscribe(namespace, filter = null) { this.run(this.machine.setSubscription(namespace, filter, this.now())); }

  /**
   * Ask the producer of an operation to stop: over the WebSocket when open,
   * else `POST /api/v1/namespaces/{ns}/operations/{id}/cancel`.
   * Resolves with the reply (`ok`, or an `error` message).
   * @param {string} operationId @param {string} [namespace]
   * @returns {Promise<Record<string, any>>}
   */
  cancel(operationId, namespace = this.machine.namespace) {
    const { id, actions } = this.machine.request({ type: 'cancel', namespace, operation_id: operationId });
    if (id !== null) {
      const reply = this.awaitReply(id, 'The hub did not answer the cancel request in time.');
      this.run(actions);
      return reply;
    }
    return this.cancelOverHttp(operationId, namespace);
  }

  /** @param {string} operationId @param {string} namespace */
  async cancelOverHttp(operationId, namespace) {
    const url = new URL(`/api/v1/namespaces/${encodeURIComponent(namespace)}/operations/${encodeURIComponent(operationId)}/cancel`, this.base);
    /** @type {Record<string, string>} */
    const headers = { 'content-type': 'application/json' };
    if (this.machine.token) headers.authorization = `Bearer ${this.machine.token}`;
    try {
      const resp = await this.env.fetch(url.toString(), { method: 'POST', headers, body: '{}' });
      if (resp.ok) return { type: 'ok' };
      const body = await resp.json().catch(() => ({}));
      return { type: 'error', ...(body.error ?? { code: `HTTP_${resp.status}`, message: resp.statusText }) };
    } catch (e) {
      return { type: 'error', code: 'NETWORK', message: String(e) };
    }
  }

  /** @param {Action[]} actions */
  run(actions) {
    for (const a of actions) this.perform(a);
    this.schedule();
  }

  schedule() {
    const at = this.machine.nextDeadline();
    if (at === this.timerAt) return;
    if (this.timer) this.env.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === null) return;
    // Timers are clamped to 1 s steps in background tabs; `wake` covers sleep.
    this.timer = this.env.setTimeout(() => {
      this.timer = null;
      this.timerAt = null;
      this.run(this.machine.tick(this.now()));
    }, Math.max(0, at - this.now()));
  }

  /** @param {Action} a */
  perform(a) {
    switch (a.type) {
      case 'open': this.openTransport(a); break;
      case 'close': this.closeTransport(a.code, a.reason); break;
      case 'send':
        if (this.conn?.kind === 'ws' && this.conn.socket.readyState === 1) this.conn.socket.send(JSON.stringify(a.message));
        break;
      case 'probe': this.probe(); break;
      case 'fetch_status': this.fetchStatus(a.link); break;
      case 'reply': {
        const p = this.pending.get(a.id);
        if (p) { this.pending.delete(a.id); this.env.clearTimeout(p.timer); p.resolve(a.message); }
        break;
      }
      case 'status':
        this.emit('status', a.status);
        if (a.status.state === 'failed' && a.status.errorCode === 'TOKEN_EXPIRED') this.renewToken();
        break;
      case 'snapshot': this.emit('snapshot', a); break;
      case 'event': this.emit('event', a.event); break;
      case 'synced': this.emit('synced', a); break;
      case 'system_status': this.emit('system_status', a.message); break;
      case 'heartbeat': this.emit('heartbeat', a.message); break;
      case 'server_error': this.emit('server_error', a.error); break;
      case 'message': this.emit('message', a.message); break;
    }
  }

  /** @param {Extract<Action, {type:'open'}>} a */
  openTransport(a) {
    this.closeTransport(1000, 'replaced'); // never two transports
    const gen = ++this.generation;
    const mine = () => gen === this.generation;
    const env = this.env;
    if (a.transport === 'ws') {
      const socket = new env.WebSocket(wsUrl(this.base, a.token));
      this.conn = { kind: 'ws', socket };
      socket.onopen = () => { if (mine()) this.run(this.machine.onOpen(this.now())); };
      socket.onmessage = (/** @type {any} */ e) => {
        if (mine() && typeof e.data === 'string') this.run(this.machine.onFrame(e.data, this.now()));
      };
      socket.onclose = (/** @type {any} */ e) => {
        if (!mine()) return;
        this.detach();
        this.run(this.machine.onClose(e.code ?? 1006, e.reason ?? '', this.now()));
      };
      socket.onerror = () => { /* a close event follows */ };
    } else {
      const source = new env.EventSource(sseUrl(this.base, a.namespace, a.filter, a.token, a.lastEventId));
      this.conn = { kind: 'sse', socket: source };
      source.onopen = () => { if (mine()) this.run(this.machine.onOpen(this.now())); };
      source.onmessage = (/** @type {any} */ e) => { if (mine()) this.run(this.machine.onFrame(String(e.data), this.now())); };
      source.onerror = () => {
        if (!mine()) return;
        // EventSource would retry on its own; the machine decides instead.
        this.closeTransport(1000, 'sse error');
        this.run(this.machine.onClose(1006, 'event stream error', this.now()));
      };
    }
    this.live += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.live);
  }

  detach() {
    if (!this.conn) return;
    const s = this.conn.socket;
    s.onopen = s.onmessage = s.onclose = s.onerror = null;
    this.conn = null;
    this.live -= 1;
  }

  /** @param {number} code @param {string} reason */
  closeTransport(code, reason) {
    if (!this.conn) return;
    const { kind, socket } = this.conn;
    this.generation += 1;
    this.detach();
    try {
      if (kind === 'ws') socket.close(code >= 4000 || code === 1000 ? code : 1000, reason.slice(0, 100));
      else socket.close();
    } catch { /* already closed */ }
  }

  /**
   * `GET /api/v1/status` right after a transport opened (with the token):
   * the hub's heartbeat interval goes to the machine, and the figures are
   * emitted as a `system_status` so the page need not wait for the first
   * push. A failure changes nothing (the machine keeps its assumption).
   * @param {number} link
   */
  async fetchStatus(link) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.machine.token) headers.authorization = `Bearer ${this.machine.token}`;
    /** @type {any} */
    let body = null;
    try {
      const resp = await this.env.fetch(new URL('/api/v1/status', this.base).toString(), { headers, cache: 'no-store' });
      if (!resp.ok) return;
      body = await resp.json();
    } catch { return; }
    if (!body || typeof body !== 'object') return;
    const msg = body.data && typeof body.data === 'object' ? body : { type: 'system_status', data: body, is_stale: false };
    if (link !== this.machine.link) return; // an answer for a link that is gone
    this.run(this.machine.onHubStatus(link, msg.data, this.now()));
    this.emit('system_status', msg);
  }

  async probe() {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.machine.token) headers.authorization = `Bearer ${this.machine.token}`;
    const url = new URL(`/api/v1/namespaces/${encodeURIComponent(this.machine.namespace)}/operations?limit=1`, this.base);
    let status = 0; let code = null; let message = null;
    try {
      const resp = await this.env.fetch(url.toString(), { headers, cache: 'no-store' });
      status = resp.status;
      if (!resp.ok) {
        const body = await resp.json().catch(() => null);
        code = body?.error?.code ?? null;
        message = body?.error?.message ?? null;
      }
    } catch { status = 0; }
    this.run(this.machine.onProbe(status, code, message, this.now()));
  }
}
