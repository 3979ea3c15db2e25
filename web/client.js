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

import { ConnectionMachine, ORIGIN_NOT_ALLOWED, splitFrame } from './connection.js';
import { decodeClaims } from './auth.js';

export { ConnectionMachine, backoffDelay, splitFrame, CONNECTION_LOST, ORIGIN_NOT_ALLOWED, TOKEN_UNAVAILABLE } from './connection.js';

/** @typedef {import('./connection.js').Action} Action */
/** @typedef {import('./connection.js').Status} Status */
/** @typedef {import('./connection.js').Filter} Filter */
/** @typedef {import('./connection.js').MachineOptions} MachineOptions */
/** @typedef {import('./connection.js').OperationState} OperationState */
/** @typedef {import('./connection.js').HubEvent} HubEvent */

/**
 * A hub path (`ws`, `api/v1/…`) under `base`, the hub's origin or the path
 * prefix a reverse proxy serves it under (`https://x/progress` and
 * `https://x/progress/` both give `https://x/progress/ws`).
 * @param {string} base @param {string} path relative, no leading `/`
 * @returns {URL}
 */
export function hubUrl(base, path) {
  const b = new URL(base);
  if (!b.pathname.endsWith('/')) b.pathname += '/';
  b.search = '';
  b.hash = '';
  return new URL(path, b);
}

/**
 * Builds the WebSocket URL of a hub (`ws(s)://host/ws`, the token as
 * `?token=` because browsers cannot set headers on a WebSocket).
 * @param {string} base  the hub's http(s) base URL, e.g. `location.origin` (see {@link hubUrl})
 * @param {string|null} token
 */
export function wsUrl(base, token) {
  const u = hubUrl(base, 'ws');
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
  const u = hubUrl(base, 'api/v1/stream');
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
 * Whether a token provider's answer can be a token: a non-empty string
 * without whitespace or control characters, at most 16 KiB (the longest the
 * hub verifies). An error page's body (`fetch(…).then(r => r.text())` on a
 * 500) is not.
 * @param {unknown} t @returns {t is string}
 */
export function looksLikeToken(t) {
  return typeof t === 'string' && t.length > 0 && t.length <= 16384 && !/[\s\x00-\x1f\x7f]/.test(t);
}

/** Consecutive token-provider problems (failures, unusable or refused tokens) before giving up: `failed`. */
export const MAX_TOKEN_RETRIES = 6;

/**
 * How long to wait before asking the token provider again after `n`
 * consecutive problems (1 for the first): 1 s, 2 s, 4 s… up to 30 s, with
 * up to a quarter more of jitter.
 * @param {number} n @param {() => number} random @returns {number}
 */
export function tokenRetryDelay(n, random) {
  const base = Math.min(30000, 1000 * 2 ** Math.max(0, Math.min(n - 1, 10)));
  return Math.floor(base + random() * base / 4);
}

/**
 * When the provider returned the token the client already holds (a caching
 * provider, asked too early): ask again in half the time left before
 * `expSec`, at least 0.5 s and at most {@link tokenRetryDelay}`(n)`; null
 * once less than 1 s is left (the hub's TOKEN_EXPIRED then asks again).
 * @param {number} expSec @param {number} nowMs @param {number} n @param {() => number} random
 * @returns {number|null}
 */
export function sameTokenRetryDelay(expSec, nowMs, n, random) {
  const left = expSec * 1000 - nowMs;
  if (left < 1000) return null;
  return Math.max(500, Math.min(tokenRetryDelay(n, random), Math.floor(left / 2)));
}

/** Globals whose methods need their own `this` (`Illegal invocation` otherwise). */
const BOUND_GLOBALS = ['fetch', 'setTimeout', 'clearTimeout', 'addEventListener', 'removeEventListener'];

/**
 * `env` with the browser's own functions bound to the global object, so
 * `{ fetch, setTimeout, addEventListener }` may be passed as they are.
 * Functions that are not the global ones keep `env` as their `this`.
 * @param {any} env @returns {any}
 */
function bindEnv(env) {
  if (env === globalThis) return env;
  const out = Object.create(env);
  const g = /** @type {any} */ (globalThis);
  for (const name of BOUND_GLOBALS) {
    const f = env[name];
    if (typeof f === 'function') out[name] = f.bind(f === g[name] ? g : env);
  }
  return out;
}

/**
 * @typedef {Object} ClientOptions
 * @property {string} [url]        the hub's http(s) base URL (default: the page's origin); a path
 *                                 prefix is kept (a hub behind a reverse proxy at `https://x/progress/`)
 * @property {string} [namespace]  default "default"
 * @property {Filter|null} [filter]
 * @property {string|null} [token]
 * @property {() => Promise<string|null>} [getToken]  fetches a token: before the first
 *                                 connection when no `token` is given, shortly before the
 *                                 current one expires (sent as `refresh` on a live
 *                                 WebSocket, so nothing reconnects; the same token again is
 *                                 asked for again later, before expiry), and when the hub
 *                                 refuses one (TOKEN_EXPIRED, AUTH_FAILED, AUTH_REQUIRED).
 *                                 A provider that throws, or returns what is not a token (an
 *                                 error page: check `r.ok`), is asked again with backoff
 *                                 (1 s, 2 s, … 30 s) while the status says TOKEN_UNAVAILABLE
 *                                 with its error; after {@link MAX_TOKEN_RETRIES} problems in a
 *                                 row the client is `failed`. Null: connect without a token.
 * @property {number} [httpProbeTimeoutMs=5000]  how long the HTTP probe after a failed open may take;
 *                                 longer counts as "hub unreachable"
 * @property {Partial<MachineOptions>} [machine]  backoff/heartbeat tuning
 * @property {any} [env]           globals to use (WebSocket, EventSource, fetch, setTimeout,
 *                                 clearTimeout, addEventListener, removeEventListener, document,
 *                                 Date, location, console, AbortController); default globalThis.
 *                                 The browser's own functions may be passed unbound.
 */

/**
 * The browser driver: performs the machine's actions. Events: `status`,
 * `snapshot`, `event`, `synced`, `system_status`, `heartbeat`,
 * `server_error`, `message`.
 */
export class HubClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    const env = bindEnv(options.env ?? globalThis);
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
    /** @type {{abort: () => void}|null} the WebSocket being tried while on SSE (`try_ws`) */
    this.trial = null;
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
    /** Token-provider problems in a row (see {@link MAX_TOKEN_RETRIES}); reset when the hub accepts one of its tokens. */
    this.tokenProblems = 0;
    /** @type {string|null} the last token the provider gave */
    this.providedToken = null;
    /** @type {string|null} why `new WebSocket()` threw during the actions being performed */
    this.openError = null;
    this.httpProbeTimeoutMs = options.httpProbeTimeoutMs ?? 5000;
    /** @type {'start'|'renew'|'auth'} what the provider is asked again for after a problem */
    this.tokenWhy = 'start';
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
      // the provider has none: the hub then says what it needs). A provider
      // that fails is asked again; the status says why meanwhile.
      this.renewToken('start').then(() => { if (this.running) this.run(this.machine.start(this.now())); });
      return;
    }
    this.scheduleRenewal(this.machine.token);
    this.run(this.machine.start(this.now()));
  }

  stop() {
    this.running = false;
    this.clearRenewal();
    this.trial?.abort();
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
   * the `refresh` (`ok`, or an `error` message; a TIMEOUT error after 10 s;
   * CONNECTION_LOST at once when the link drops first: the new token then
   * goes with the reconnection), or with null when the token goes with a
   * new connection instead (then the `status` events say how it went).
   * A refused refresh leaves the link on the token it held, and the next
   * renewal is timed from that token.
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
      reply.then((r) => this.refreshAnswered(token, r));
    }
    this.run(actions);
    this.scheduleRenewal(token);
    return reply;
  }

  /**
   * The hub's answer to a `refresh` with `token`: accepted, the provider's
   * problems are over; refused, the link keeps its own token, and the next
   * renewal is timed from that one, no sooner than the backoff.
   * @param {string|null} token @param {Record<string, any>|null} r
   */
  refreshAnswered(token, r) {
    if (!r) return;
    if (r.type !== 'error') {
      if (token === this.providedToken) this.tokenProblems = 0;
      return;
    }
    if (r.code === 'TIMEOUT' || r.code === 'CONNECTION_LOST' || r.code === 'TOKEN_EXPIRED') return; // the reconnection decides
    this.tokenProblems += 1;
    if (this.tokenProblems > MAX_TOKEN_RETRIES) { this.scheduleRenewal(null); return; }
    this.scheduleRenewal(this.machine.token, tokenRetryDelay(this.tokenProblems, this.machine.opts.random));
  }

  /**
   * A promise for the reply to request `id` (an `error` with code TIMEOUT
   * after 10 s; the machine settles it sooner, CONNECTION_LOST, when the
   * link drops or the client stops).
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

  /**
   * With `getToken`, arranges to fetch the next token before `token`
   * expires (not sooner than `minDelayMs`).
   * @param {string|null} token @param {number} [minDelayMs]
   */
  scheduleRenewal(token, minDelayMs = 0) {
    const exp = token ? decodeClaims(token)?.exp : undefined;
    if (!this.getToken || !this.running || typeof exp !== 'number') { this.clearRenewal(); return; }
    this.askTokenIn(Math.max(minDelayMs, renewalDelay(exp, this.now())), 'renew');
  }

  clearRenewal() {
    if (this.renewTimer) this.env.clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /** @param {number} ms @param {'start'|'renew'|'auth'} why */
  askTokenIn(ms, why) {
    this.clearRenewal();
    this.renewTimer = this.env.setTimeout(() => { this.renewTimer = null; this.renewToken(why); }, ms);
  }

  /**
   * Asks `getToken` for a token (one call at a time) and uses it if it is a
   * new one. `why`: `start` (none yet), `renew` (before expiry: the same
   * token again is asked for again later, before expiry), `auth` (the hub
   * refused the one held: the same token again is a problem). A provider
   * that throws or returns what is not a token is asked again with
   * {@link tokenRetryDelay}, at most {@link MAX_TOKEN_RETRIES} times in a row.
   * @param {'start'|'renew'|'auth'} [why]
   */
  renewToken(why = 'renew') {
    const get = this.getToken;
    if (!get) return Promise.resolve();
    this.renewing ??= (async () => {
      try {
        /** @type {unknown} */ let token = null;
        /** @type {string|null} */ let problem = null;
        try {
          token = await get();
        } catch (e) {
          problem = `getToken failed: ${/** @type {any} */ (e)?.message ?? e}`;
        }
        if (!this.running) return;
        if (problem === null && token !== null && token !== undefined && token !== '' && !looksLikeToken(token)) {
          problem = `getToken returned something that is not a token: ${JSON.stringify(String(token).slice(0, 80))}`;
        }
        if (problem === null && token && token === this.machine.token) {
          if (why !== 'auth') { this.sameTokenAgain(/** @type {string} */ (token)); return; }
          const m = this.machine;
          problem = `getToken returned the token the hub refused (${m.errorCode}${m.errorMessage ? `: ${m.errorMessage}` : ''})`;
        }
        if (problem !== null) { this.tokenProblem(problem, why); return; }
        if (!token) return; // the provider has none: the hub says whether it needs one
        this.providedToken = /** @type {string} */ (token);
        this.setToken(/** @type {string} */ (token));
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /** The provider gave the token already held: ask again later, before it expires. @param {string} token */
  sameTokenAgain(token) {
    this.tokenProblems += 1;
    const exp = decodeClaims(token)?.exp;
    const delay = typeof exp === 'number' && this.tokenProblems <= MAX_TOKEN_RETRIES
      ? sameTokenRetryDelay(exp, this.now(), this.tokenProblems, this.machine.opts.random) : null;
    if (delay !== null) this.askTokenIn(delay, 'renew');
  }

  /** @param {string} problem @param {'start'|'renew'|'auth'} why */
  tokenProblem(problem, why) {
    this.env.console?.error?.(`progress-hub client: ${problem}`);
    this.tokenProblems += 1;
    const now = this.now();
    if (this.tokenProblems > MAX_TOKEN_RETRIES) {
      this.run(this.machine.tokenUnavailable(`${problem} (gave up after ${MAX_TOKEN_RETRIES} tries)`, null, now));
      return;
    }
    const delay = tokenRetryDelay(this.tokenProblems, this.machine.opts.random);
    this.tokenWhy = why;
    this.askTokenIn(delay, why);
    this.run(this.machine.tokenUnavailable(problem, now + delay, now));
  }

  /** @param {string} namespace @param {Filter|null} [filter] */
  subscribe(namespace, filter = null) { this.run(this.machine.setSubscription(namespace, filter, this.now())); }

  /**
   * Ask the producer of an operation to stop: over the WebSocket when open,
   * else `POST /api/v1/namespaces/{ns}/operations/{id}/cancel`.
   * Resolves with the reply (`ok`, or an `error` message). Over the socket
   * the outcome may be unknown: `error` CONNECTION_LOST (with `outcome:
   * "unknown"`) at once when the link drops or the client stops first,
   * TIMEOUT when no answer came within 10 s; the hub may have applied it.
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
    const url = hubUrl(this.base, `api/v1/namespaces/${encodeURIComponent(namespace)}/operations/${encodeURIComponent(operationId)}/cancel`);
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
    if (this.openError !== null) {
      // After the attempt's own actions (its `connecting` status), so the
      // failure comes last.
      const reason = this.openError;
      this.openError = null;
      this.run(this.machine.openFailed(reason, this.now()));
      return;
    }
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
      case 'probe': this.probe(a); break;
      case 'try_ws': this.tryWebSocket(a); break;
      case 'get_token': this.clearRenewal(); this.renewToken(this.tokenWhy); break;
      case 'fetch_status': this.fetchStatus(a.link); break;
      case 'reply': {
        const p = this.pending.get(a.id);
        if (p) { this.pending.delete(a.id); this.env.clearTimeout(p.timer); p.resolve(a.message); }
        break;
      }
      case 'status':
        this.emit('status', a.status);
        this.tokenAfterStatus(a.status);
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

  /**
   * With a provider: a token the hub refused (`failed` with TOKEN_EXPIRED,
   * AUTH_FAILED, AUTH_REQUIRED) is replaced from it, at once the first time,
   * then with backoff, at most {@link MAX_TOKEN_RETRIES} times in a row;
   * connected with one of its tokens ends the series.
   * @param {Status} s
   */
  tokenAfterStatus(s) {
    if (s.state === 'connected' && this.providedToken !== null && this.machine.linkToken === this.providedToken) {
      this.tokenProblems = 0;
    }
    if (!this.getToken || !this.running || s.state !== 'failed') return;
    if (s.errorCode !== 'TOKEN_EXPIRED' && s.errorCode !== 'AUTH_FAILED' && s.errorCode !== 'AUTH_REQUIRED') return;
    if (this.tokenProblems === 0) { this.tokenProblems = 1; this.clearRenewal(); this.renewToken('auth'); return; }
    this.tokenProblems += 1;
    if (this.tokenProblems > MAX_TOKEN_RETRIES) { this.clearRenewal(); return; }
    this.askTokenIn(tokenRetryDelay(this.tokenProblems, this.machine.opts.random), 'auth');
  }

  /**
   * Why `new WebSocket(url)` (or `EventSource`) threw, in words that say what to do.
   * @param {any} e @param {string} url @returns {string}
   */
  openErrorReason(e, url) {
    const page = this.env.location?.protocol;
    if (page === 'https:' && /^(ws|http):/.test(url)) {
      return `cannot open ${url.split('?')[0]} from an https: page (mixed content): give the hub's https:// URL, so the client uses wss://`;
    }
    return `cannot open ${url.split('?')[0]}: ${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  }

  /** @param {Extract<Action, {type:'open'}>} a */
  openTransport(a) {
    this.closeTransport(1000, 'replaced'); // never two transports
    const gen = ++this.generation;
    const mine = () => gen === this.generation;
    const env = this.env;
    const url = a.transport === 'ws' ? wsUrl(this.base, a.token) : sseUrl(this.base, a.namespace, a.filter, a.token, a.lastEventId);
    /** @type {any} */ let socket;
    try {
      socket = a.transport === 'ws' ? new env.WebSocket(url) : new env.EventSource(url);
    } catch (e) {
      this.openError = this.openErrorReason(e, url);
      return;
    }
    if (a.transport === 'ws') {
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
      const source = socket;
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

  /**
   * While on SSE: does a WebSocket to the hub work again? Opens one (with
   * the token), sends a `ping` and waits for the `pong`, so frames are
   * known to pass both ways through whatever blocked them before, then
   * closes it and tells the machine (which moves over when it works). No
   * pong within `probeTimeoutMs`, a close, or a constructor that throws:
   * it does not. Never counted as a transport: the SSE link stays the
   * page's one connection until the machine closes it.
   * @param {Extract<Action, {type:'try_ws'}>} a
   */
  tryWebSocket(a) {
    this.trial?.abort();
    const env = this.env;
    /** @type {any} */ let socket = null;
    let done = false;
    /** @param {boolean} ok @param {boolean} report */
    const finish = (ok, report) => {
      if (done) return;
      done = true;
      env.clearTimeout(timer);
      if (this.trial === trial) this.trial = null;
      if (socket) {
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        try { socket.close(1000, 'tried'); } catch { /* already closed */ }
      }
      if (report) this.run(this.machine.onWsTry(a.link, ok, this.now()));
    };
    const trial = { abort: () => finish(false, false) };
    this.trial = trial;
    const timer = env.setTimeout(() => finish(false, true), this.machine.opts.probeTimeoutMs);
    try {
      socket = new env.WebSocket(wsUrl(this.base, a.token));
    } catch {
      finish(false, true);
      return;
    }
    socket.onopen = () => {
      try { socket.send(JSON.stringify({ type: 'ping', id: 1 })); } catch { finish(false, true); }
    };
    socket.onmessage = (/** @type {any} */ e) => {
      if (typeof e.data === 'string' && splitFrame(e.data).some((m) => /** @type {any} */ (m).type === 'pong')) finish(true, true);
    };
    socket.onclose = () => finish(false, true);
    socket.onerror = () => { /* a close event follows */ };
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
      const resp = await this.env.fetch(hubUrl(this.base, 'api/v1/status').toString(), { headers, cache: 'no-store' });
      if (!resp.ok) return;
      body = await resp.json();
    } catch { return; }
    if (!body || typeof body !== 'object') return;
    const msg = body.data && typeof body.data === 'object' ? body : { type: 'system_status', data: body, is_stale: false };
    if (link !== this.machine.link) return; // an answer for a link that is gone
    this.run(this.machine.onHubStatus(link, msg.data, this.now()));
    this.emit('system_status', msg);
  }

  /**
   * Runs `fn` (given an abort signal) for at most `httpProbeTimeoutMs`; rejects
   * with `timedOut: true` past it (a frozen hub must not hold a probe open
   * until it thaws and then answer as if nothing happened).
   * @template T @param {(signal: any) => Promise<T>} fn @returns {Promise<T>}
   */
  within(fn) {
    const env = this.env;
    const ctl = typeof env.AbortController === 'function' ? new env.AbortController() : null;
    /** @type {any} */ let timer = null;
    const timeout = new Promise((_, reject) => {
      timer = env.setTimeout(() => {
        ctl?.abort();
        reject(Object.assign(new Error('probe timed out'), { timedOut: true }));
      }, this.httpProbeTimeoutMs);
    });
    return /** @type {Promise<T>} */ (Promise.race([fn(ctl?.signal), timeout]))
      .finally(() => env.clearTimeout(timer));
  }

  /**
   * Why did the transport not open? After a WebSocket: `GET /ws` over
   * HTTP, which the hub answers with the refusal the upgrade got (401
   * token, 429 a connection cap with `Retry-After`…) or 400 when it would
   * have upgraded (then something between blocks WebSocket). After SSE: the
   * namespace's listing. Unanswered within `httpProbeTimeoutMs`: unreachable.
   * A page on another origin whose request the browser blocks (CORS) asks
   * again in `no-cors` mode: an (opaque) answer means the hub is up but
   * refuses this origin ({@link ORIGIN_NOT_ALLOWED}); none, that it is down.
   * @param {Extract<Action, {type:'probe'}>} a
   */
  async probe(a) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.machine.token) headers.authorization = `Bearer ${this.machine.token}`;
    const url = (a.transport === 'ws' ? hubUrl(this.base, 'ws')
      : hubUrl(this.base, `api/v1/namespaces/${encodeURIComponent(this.machine.namespace)}/operations?limit=1`)).toString();
    let status = 0;
    /** @type {string|null} */ let code = null;
    /** @type {string|null} */ let message = null;
    /** @type {number|null} */ let retryAfterMs = null;
    /** @type {string|null} */ let reason = null;
    try {
      const r = await this.within(async (signal) => {
        const resp = await this.env.fetch(url, { headers, cache: 'no-store', signal });
        const body = resp.ok ? null : await resp.json().catch(() => null);
        return { status: resp.status, body, retryAfter: resp.headers?.get?.('retry-after') ?? null };
      });
      status = r.status;
      const err = r.body?.error;
      code = err?.code ?? null;
      message = err?.message ?? null;
      reason = typeof err?.data?.reason === 'string' ? err.data.reason : null;
      const ms = Number(err?.data?.retry_after_ms);
      const secs = Number(r.retryAfter);
      if (Number.isFinite(ms) && ms >= 0) retryAfterMs = ms;
      else if (r.retryAfter !== null && Number.isFinite(secs) && secs >= 0) retryAfterMs = secs * 1000;
    } catch (e) {
      status = 0;
      if (!/** @type {any} */ (e)?.timedOut && await this.answersOpaquely(url)) {
        code = ORIGIN_NOT_ALLOWED;
        const page = this.env.location?.origin ?? 'this page\'s origin';
        message = `The hub at ${new URL(url).origin} answers but refuses pages from ${page}: `
          + `start it with --allowed-origins ${page} (allowed_origins in its config).`;
      }
    }
    this.run(this.machine.onProbe(status, code, message, this.now(), { link: a.link, retryAfterMs, reason }));
  }

  /**
   * Whether a page on another origin than the hub gets an answer from `url`
   * in `no-cors` mode (an opaque response: the hub is up, the browser only
   * hid the answer from the page). Always false on the hub's own origin.
   * @param {string} url @returns {Promise<boolean>}
   */
  async answersOpaquely(url) {
    const page = this.env.location?.origin;
    if (!page || page === new URL(url).origin) return false;
    try {
      await this.within((signal) => this.env.fetch(url, { mode: 'no-cors', cache: 'no-store', signal }));
      return true;
    } catch {
      return false;
    }
  }
}
