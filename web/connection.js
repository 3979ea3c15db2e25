// @ts-check
/**
 * The connection state machine of the progress-hub client: socket-free,
 * clock-free, DOM-free. It takes events (`open`, a received frame, `close`,
 * a timer tick, a wake-up, …) with the current time and returns actions
 * (`open` a transport, `send`, `close`, `probe`, and notifications for the
 * app). It owns backoff, heartbeat liveness, resume from `(epoch, offset)`,
 * snapshot handling, dedupe by offset, the WebSocket → SSE fallback and
 * the way back: while on SSE it tries WebSocket again now and then
 * (`try_ws`), and once one opens and answers a ping it switches over,
 * resuming from its offset; a switch that does not hold goes straight
 * back to SSE and the tries slow down. `client.js` is the browser driver that performs the actions.
 *
 * Wire format: protocol v1 (docs/PROTOCOL.md). A server frame may hold
 * several JSON messages separated by `\n`.
 */

/** @typedef {'idle'|'connecting'|'connected'|'waiting'|'failed'|'stopped'} ConnState */
/** @typedef {'ws'|'sse'} Transport */

/**
 * @typedef {Object} OperationState  The hub's operation state object.
 * @property {string} operation_id
 * @property {string} namespace
 * @property {string} name
 * @property {string} kind
 * @property {'running'|'stalled'|'completed'|'failed'|'canceled'} state
 * @property {number|null} progress
 * @property {number|null} current
 * @property {number|null} total
 * @property {string|null} step
 * @property {string|null} message
 * @property {Object|null} details
 * @property {string|null} error
 * @property {string|null} parent_id
 * @property {number|null} started_at
 * @property {number|null} updated_at
 * @property {number|null} finished_at
 * @property {number|null} rate
 * @property {number|null} eta_seconds
 * @property {boolean} cancel_requested
 * @property {number|null} last_offset
 */

/**
 * @typedef {Object} HubEvent  An operation event as the hub sends it.
 * @property {string} type
 * @property {string} namespace
 * @property {number} offset
 * @property {number} timestamp
 * @property {string} operation_id
 * @property {OperationState} state
 */

/**
 * @typedef {Object} Filter
 * @property {string[]} [operations]  globs on operation_id
 * @property {string[]} [kinds]       exact kinds
 */

/**
 * @typedef {Object} MachineOptions
 * @property {string} namespace
 * @property {Filter|null} [filter]
 * @property {string|null} [token]
 * @property {number} [baseDelayMs=500]        backoff base
 * @property {number} [maxDelayMs=30000]       backoff cap (jitter is applied after the cap)
 * @property {number} [minUptimeMs=5000]       a connection must live this long to reset the attempt counter
 * @property {number} [heartbeatIntervalMs=30000]  assumed until the hub says its own (`heartbeat_interval_ms`
 *   of `GET /api/v1/status` or `system_status`, see {@link ConnectionMachine#onHubStatus}); the expected
 *   interval is the upper bound of the one learned from heartbeats (see {@link ConnectionMachine#deadAfterMs})
 * @property {number} [connectTimeoutMs=10000] an attempt that has not opened by then failed
 * @property {number} [probeTimeoutMs=5000]    after a wake-up, a ping must be answered this fast
 * @property {number} [sseAfterFailures=3]     WebSocket failures (hub reachable over HTTP) before trying SSE
 * @property {number} [wsRetryMs=60000]       while on SSE, try WebSocket again after about this long
 *   (± 25 %, at least 1 s; 0: never); doubled after each try or switch that fails, up to
 *   `maxWsRetryMs`; a switched-to WebSocket that dies within this long of the switch (or
 *   `minUptimeMs`, the longer) counts as a failed switch
 * @property {number} [maxWsRetryMs=600000]   the longest wait between two such tries
 * @property {() => number} [random]           uniform in [0, 1); injectable for tests
 */

/**
 * @typedef {{type:'open', transport: Transport, namespace: string, filter: Filter|null, token: string|null, lastEventId: string|null}
 *  | {type:'close', code: number, reason: string}
 *  | {type:'send', message: Object}
 *  | {type:'probe', transport: Transport, link: number}
 *  | {type:'try_ws', link: number, token: string|null}
 *  | {type:'get_token'}
 *  | {type:'fetch_status', link: number}
 *  | {type:'status', status: Status}
 *  | {type:'snapshot', namespace: string, epoch: string, offset: number, operations: OperationState[]}
 *  | {type:'event', event: HubEvent}
 *  | {type:'synced', mode: 'snapshot'|'recovered', recovered: number, reconnect: boolean}
 *  | {type:'system_status', message: Object}
 *  | {type:'heartbeat', message: Object}
 *  | {type:'reply', id: number, message: Object}
 *  | {type:'server_error', error: Object}
 *  | {type:'message', message: Object}} Action
 */

/**
 * @typedef {Object} Status
 * @property {ConnState} state
 * @property {Transport} transport
 * @property {number} attempt            consecutive failed attempts (0 while connected)
 * @property {number|null} retryAt       when `waiting`: time of the next attempt
 * @property {number|null} disconnectedSince  first moment without a live subscription (null while connected)
 * @property {number|null} lastLiveAt    last time a frame proved the connection alive
 * @property {string|null} errorCode     why the client is not connected:
 *   - `failed` (final until a new token, subscription or `retryNow`): AUTH_REQUIRED, AUTH_FAILED,
 *     TOKEN_EXPIRED, FORBIDDEN, BAD_MESSAGE, RATE_LIMITED for a connection's own limits
 *     (`subscriptions`, `filters`), ORIGIN_NOT_ALLOWED (the hub answers but refuses this page's origin:
 *     list it in the hub's `--allowed-origins`), TOKEN_UNAVAILABLE (the `getToken` provider kept failing);
 *   - `waiting` (retried on its own): RATE_LIMITED (a subscribe refused for now, or the upgrade refused
 *     at the door, e.g. `connections_per_user`: the wait honours the hub's `retry_after_ms` or
 *     `Retry-After`), SERVER_SHUTDOWN, STORE_UNAVAILABLE (see {@link RETRYABLE_CODES}),
 *     TOKEN_UNAVAILABLE (the token provider failed; asked again with backoff)
 * @property {string|null} errorMessage  the hub's message for `errorCode` (with `data.reason` of a RATE_LIMITED)
 * @property {number} heartbeatIntervalMs  interval in effect: learned on this connection, else the hub's
 *   advertised one, else configured
 * @property {number} clockSkewMs        server clock minus local clock (from heartbeats)
 * @property {boolean} everConnected
 * @property {string|null} reason       why the last connection was lost (e.g. "no heartbeat within two intervals");
 *   null while connected
 * @property {boolean} syncing          connected, but the replay or snapshot that brings the view up to the
 *   `subscribed` offset is not all in yet: what is shown may be behind the hub
 * @property {boolean} switching        `connecting` only to move a working link to the other transport:
 *   to WebSocket once one was proven to work, or back to SSE when that switch did not hold. Not an
 *   outage; it lasts at most `probeTimeoutMs`, then it is one
 */

/** How many recent heartbeat gaps the learned interval is the maximum of. */
export const HEARTBEAT_GAP_WINDOW = 4;
/** Gaps shorter than this are a burst after a stall, not a sample of the interval. */
export const MIN_HEARTBEAT_GAP_MS = 50;
/** The least jitter allowance added to a learned interval. */
export const MIN_HEARTBEAT_SLACK_MS = 500;

/**
 * Jitter allowance for a learned heartbeat interval: `max(500 ms, interval / 4)`.
 * @param {number} intervalMs @returns {number}
 */
export function heartbeatSlackMs(intervalMs) {
  return Math.max(MIN_HEARTBEAT_SLACK_MS, Math.floor(intervalMs / 4));
}

const AUTH_CODES = new Set(['AUTH_REQUIRED', 'AUTH_FAILED', 'TOKEN_EXPIRED']);
/**
 * Refusals of a `subscribe` that waiting can cure (a limit, a hub that is
 * stopping, a store that failed): retried after the hub's `retry_after_ms`,
 * else with the backoff. Every other refusal (FORBIDDEN, BAD_MESSAGE, auth)
 * would be refused again as it stands, so it fails.
 */
export const RETRYABLE_CODES = new Set(['RATE_LIMITED', 'SERVER_SHUTDOWN', 'STORE_UNAVAILABLE']);
/**
 * `RATE_LIMITED` limits of the connection's own making (`data.reason`):
 * more subscriptions or filter globs than one connection may hold. The
 * same request is refused again however long one waits, so they fail,
 * as in hub-client (docs/PROTOCOL.md, "Limits answered at the door").
 */
export const FINAL_LIMITS = new Set(['subscriptions', 'filters']);
/** Error code of a request whose connection closed before its answer: the outcome is unknown. */
export const CONNECTION_LOST = 'CONNECTION_LOST';
/**
 * Client-side code: the hub answered over HTTP but refused this page's
 * origin (the browser hid the answer: CORS), so no transport can work.
 */
export const ORIGIN_NOT_ALLOWED = 'ORIGIN_NOT_ALLOWED';
/** Client-side code: the `getToken` provider threw, or returned something that is not a token. */
export const TOKEN_UNAVAILABLE = 'TOKEN_UNAVAILABLE';
const EVENT_TYPES = new Set([
  'operation_started', 'progress_update', 'operation_completed', 'operation_failed',
  'operation_canceled', 'operation_stalled', 'operation_resumed',
]);

/**
 * Full-jitter backoff, jitter applied after the cap:
 * `random(0, min(cap, base · 2^attempt))`.
 * @param {number} attempt  0 for the first retry
 * @param {number} baseMs
 * @param {number} capMs
 * @param {() => number} random  uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, baseMs, capMs, random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}

/**
 * Splits one server frame into its messages (`\n`-separated JSON), skipping
 * blank lines and lines that do not parse.
 * @param {string} frame
 * @returns {Object[]}
 */
export function splitFrame(frame) {
  /** @type {Object[]} */
  const out = [];
  let start = 0;
  while (start <= frame.length) {
    let end = frame.indexOf('\n', start);
    if (end < 0) end = frame.length;
    if (end > start) {
      try {
        const msg = JSON.parse(frame.slice(start, end));
        if (msg && typeof msg === 'object') out.push(msg);
      } catch { /* not JSON: ignore this line */ }
    }
    start = end + 1;
  }
  return out;
}

/**
 * The connection state machine. Every method takes `now` (ms) and returns
 * the actions to perform, in order. It never touches a socket or a clock.
 */
export class ConnectionMachine {
  /** @param {MachineOptions} opts */
  constructor(opts) {
    this.opts = {
      baseDelayMs: 500, maxDelayMs: 30000, minUptimeMs: 5000, heartbeatIntervalMs: 30000,
      connectTimeoutMs: 10000, probeTimeoutMs: 5000, sseAfterFailures: 3,
      wsRetryMs: 60000, maxWsRetryMs: 600000, random: Math.random,
      filter: null, token: null, ...opts,
    };
    /** @type {ConnState} */ this.state = 'idle';
    /** @type {Transport} */ this.transport = 'ws';
    this.namespace = this.opts.namespace;
    /** @type {Filter|null} */ this.filter = this.opts.filter ?? null;
    /** @type {string|null} */ this.token = this.opts.token ?? null;
    /** @type {string|null} the token the hub holds for the current link (its connect token, or an accepted `refresh`) */
    this.linkToken = null;
    /** @type {{id: number, token: string|null}|null} a `refresh` sent on this link and not answered yet */
    this.pendingRefresh = null;
    /** The hub refused a `refresh` on this link: its close 4001 is about the new token, not the link's own. */
    this.refreshRefused = false;
    this.attempt = 0;
    /** WebSocket attempts that never opened while the hub answered HTTP. */
    this.wsBlocked = 0;
    /** Whether the current attempt's transport opened. */
    this.opened = false;
    /** @type {number|null} */ this.openedAt = null;
    /** @type {number|null} */ this.attemptStartedAt = null;
    /** @type {number|null} */ this.retryAt = null;
    /** @type {number|null} */ this.disconnectedSince = null;
    /** @type {number|null} */ this.lastLiveAt = null;
    /** @type {number|null} */ this.lastRxAt = null;
    /** @type {number|null} */ this.lastHeartbeatAt = null;
    /** @type {number|null} */ this.probeDeadline = null;
    /** @type {number[]} recent gaps (ms) between heartbeats of the current connection, newest last */
    this.hbGaps = [];
    /** @type {number|null} the heartbeat interval the hub advertised on this connection */
    this.advertisedHbMs = null;
    /** Counts transport attempts: tells a late `fetch_status` answer from a current one. */
    this.link = 0;
    this.clockSkewMs = 0;
    /** @type {number[]} recent (server − local) samples from heartbeats */
    this.skewSamples = [];
    /** @type {string|null} */ this.errorCode = null;
    /** @type {string|null} */ this.errorMessage = null;
    this.everConnected = false;
    /** @type {string|null} */ this.reason = null;
    // Subscription position and progress.
    /** @type {string|null} */ this.epoch = null;
    this.offset = 0;
    /** @type {number|null} */ this.subscribeId = null;
    this.subscribed = false;
    /** @type {null|{target: number, count: number, reconnect: boolean, quietAt: number}} */
    this.replay = null;
    this.awaitingSnapshot = false;
    this.reconnecting = false;
    /** Whether the snapshot awaited now ends a reconnection (for the toast). */
    this.pendingReconnect = false;
    /** @type {Transport|null} transport of the last attempt that failed before opening */
    this.lastFailedTransport = null;
    this.nextId = 1;
    /** Events dropped as duplicates (offset already applied). */
    this.duplicates = 0;
    /**
     * Offsets skipped in an unfiltered stream. The client subscribes with
     * `conflate: true`, so a viewer that falls behind gets superseded
     * progress updates replaced by newer ones: skips then are expected, not
     * lost events (lifecycle events are never conflated).
     */
    this.gaps = 0;
    /** @type {Set<number>} ids of requests (`cancel`, `refresh`…) sent on this link and not answered yet */
    this.outstanding = new Set();
    /** The token provider failed: waiting for the driver to get a token, not for `retryAt`. */
    this.awaitingToken = false;
    /** `errorCode` RATE_LIMITED came from a probe: the hub refused the connection itself at the door. */
    this.doorRefusal = false;
    /** The `Retry-After` (ms) of that refusal: later attempts that fail before opening wait that long too. */
    this.doorRetryMs = 0;
    /** @type {number|null} while connected over SSE: when to try WebSocket again */
    this.wsTryAt = null;
    /** A `try_ws` was asked for on this link and not answered yet. */
    this.wsTrying = false;
    const retry = Number(this.opts.wsRetryMs);
    /** Whether WebSocket is tried again while on SSE (`wsRetryMs` > 0). */
    this.wsTries = retry > 0 && retry !== Infinity;
    /** `wsRetryMs` as used: at least 1 s (0 when there are no tries). */
    this.wsRetryBase = this.wsTries ? Math.max(1000, retry) : 0;
    /** The wait before the next `try_ws` (grows while WebSocket keeps failing). */
    this.wsRetryDelay = this.wsRetryBase;
    /** Connecting only to move a working link to the other transport (see `Status.switching`). */
    this.switching = false;
    /**
     * Where a switch to WebSocket stands: `moving` until its subscription
     * is answered, `proving` until it has held for {@link switchHoldMs};
     * null otherwise.
     * @type {null|'moving'|'proving'}
     */
    this.switchState = null;
    /** When the switched-to WebSocket was subscribed. @type {number|null} */
    this.switchedAt = null;
  }

  /** @returns {Status} */
  status() {
    return {
      state: this.state, transport: this.transport,
      attempt: this.state === 'connected' ? 0 : this.attempt, retryAt: this.retryAt,
      disconnectedSince: this.disconnectedSince, lastLiveAt: this.lastLiveAt,
      errorCode: this.errorCode, errorMessage: this.errorMessage,
      heartbeatIntervalMs: this.hbInterval, clockSkewMs: this.clockSkewMs,
      everConnected: this.everConnected, reason: this.state === 'connected' ? null : this.reason,
      syncing: this.state === 'connected' && (this.replay !== null || this.awaitingSnapshot),
      switching: this.switching && this.state === 'connecting',
    };
  }

  /** The time of the next `tick` the driver must deliver, or null. @returns {number|null} */
  nextDeadline() {
    /** @type {number[]} */
    const ds = [];
    if (this.state === 'waiting' && this.retryAt !== null && !this.awaitingToken) ds.push(this.retryAt);
    if (this.state === 'connecting' && !this.opened && this.attemptStartedAt !== null) {
      ds.push(this.attemptStartedAt + this.opts.connectTimeoutMs);
    }
    if (this.switching && this.state === 'connecting' && this.attemptStartedAt !== null) {
      ds.push(this.attemptStartedAt + this.opts.probeTimeoutMs);
    }
    if (this.opened && (this.state === 'connecting' || this.state === 'connected')) {
      ds.push(this.livenessDeadline());
      if (this.probeDeadline !== null) ds.push(this.probeDeadline);
      if (this.replay) ds.push(this.replay.quietAt);
      if (this.wsTryDue() !== null) ds.push(/** @type {number} */ (this.wsTryAt));
    }
    return ds.length ? Math.min(...ds) : null;
  }

  /**
   * The heartbeat interval to expect from the hub on this connection: the
   * one it advertised (`heartbeat_interval_ms`), else the configured
   * assumption.
   * @returns {number}
   */
  get expectedHeartbeatMs() {
    return this.advertisedHbMs ?? this.opts.heartbeatIntervalMs;
  }

  /**
   * The hub's heartbeat interval learned on this connection: the largest of
   * its last {@link HEARTBEAT_GAP_WINDOW} heartbeat gaps (gaps under
   * {@link MIN_HEARTBEAT_GAP_MS} are ignored), never above the expected
   * interval ({@link expectedHeartbeatMs}); null until the connection has
   * seen two heartbeats.
   * @returns {number|null}
   */
  get learnedHeartbeatMs() {
    if (this.hbGaps.length === 0) return null;
    return Math.min(Math.max(...this.hbGaps), this.expectedHeartbeatMs);
  }

  /** The heartbeat interval in effect: learned, else expected. @returns {number} */
  get hbInterval() {
    return this.learnedHeartbeatMs ?? this.expectedHeartbeatMs;
  }

  /**
   * Silence (no frame at all) for this long means the link is dead: two
   * expected intervals until two heartbeats were seen, then
   * `min(2 × learned + slack, 2 × expected)` with
   * `slack = max(500 ms, learned / 4)` for jitter. Learning only ever makes
   * detection faster. Same rule as hub-client's `Machine::dead_after_ms`,
   * with the hub's advertised interval (when known) as the expected one.
   * @returns {number}
   */
  deadAfterMs() {
    const expected = 2 * this.expectedHeartbeatMs;
    const l = this.learnedHeartbeatMs;
    const ms = l === null ? expected : Math.min(2 * l + heartbeatSlackMs(l), expected);
    return Math.max(1, ms);
  }

  /**
   * Whether the link is connected and a frame arrived within one heartbeat
   * interval plus its slack (the learned interval, else the expected one).
   * Between this and {@link deadAfterMs} the link is quiet: maybe stale,
   * not yet given up on.
   * @param {number} now @returns {boolean}
   */
  healthy(now) {
    if (this.state !== 'connected' || this.lastRxAt === null) return false;
    const i = this.hbInterval;
    return now - this.lastRxAt <= i + heartbeatSlackMs(i);
  }

  /**
   * What the hub says about itself (`system_status.data`, from the socket
   * or from `GET /api/v1/status` after a `fetch_status` action): its
   * `heartbeat_interval_ms` becomes the expected interval of this
   * connection. `link` is the action's, or null for a message that came
   * over the current link; answers for an older link are ignored.
   * @param {number|null} link @param {Record<string, any>|null} data @param {number} _now
   * @returns {Action[]}
   */
  onHubStatus(link, data, _now) {
    if (link !== null && link !== this.link) return [];
    const ms = data?.heartbeat_interval_ms;
    if (typeof ms === 'number' && Number.isFinite(ms) && ms > 0) this.advertisedHbMs = ms;
    return [];
  }

  /** Silence for {@link deadAfterMs} after the last frame means the link is dead. */
  livenessDeadline() {
    const since = this.lastRxAt ?? this.openedAt ?? 0;
    return since + this.deadAfterMs();
  }

  // ---- commands --------------------------------------------------------

  /** Start connecting (no-op unless idle or stopped). @param {number} now @returns {Action[]} */
  start(now) {
    if (this.state !== 'idle' && this.state !== 'stopped') return [];
    if (this.disconnectedSince === null) this.disconnectedSince = now;
    return this.connect(now);
  }

  /** Close and stay closed. @param {number} now @returns {Action[]} */
  stop(now) {
    /** @type {Action[]} */
    const acts = [];
    if (this.state === 'connecting' || this.state === 'connected') {
      acts.push({ type: 'close', code: 1000, reason: 'client stopped' });
    }
    acts.push(...this.resetLink());
    this.awaitingToken = false;
    this.switching = false;
    this.switchState = null;
    this.state = 'stopped';
    this.retryAt = null;
    if (this.disconnectedSince === null) this.disconnectedSince = now;
    acts.push(this.statusAction());
    return acts;
  }

  /** The user asked to retry now (also leaves `failed`). @param {number} now @returns {Action[]} */
  retryNow(now) {
    if (this.state === 'connecting' || this.state === 'connected') return [];
    this.errorCode = null;
    this.errorMessage = null;
    this.awaitingToken = false;
    this.doorRefusal = false;
    return this.connect(now);
  }

  /**
   * The page woke up (`online`, `visibilitychange` to visible, `pageshow`,
   * timers resuming after sleep): reconnect at once when waiting; when
   * connected, prove the link with a ping or reconnect if it has been silent.
   * @param {string} _reason @param {number} now @returns {Action[]}
   */
  wake(_reason, now) {
    if (this.state === 'waiting' && this.awaitingToken) return [{ type: 'get_token' }];
    if (this.state === 'waiting') return this.connect(now);
    if (this.state !== 'connected') return [];
    if (now >= this.livenessDeadline()) return this.linkLost(now, 'silent past the heartbeat window');
    if (this.transport === 'ws' && this.probeDeadline === null) {
      this.probeDeadline = now + this.opts.probeTimeoutMs;
      return [{ type: 'send', message: { type: 'ping', id: this.nextId++ } }];
    }
    return [];
  }

  /**
   * Replace the token. On a live WebSocket it is sent as `refresh` (the
   * subscription and position stay). A refresh the hub refuses (an error
   * answering it, then close 4001) puts back the token the link held, and
   * the link reconnects with that one instead of failing: the hub refused the
   * new token, not the one the page was using. Otherwise the link reconnects
   * with the new token.
   * @param {string|null} token @param {number} now @returns {Action[]}
   */
  setToken(token, now) {
    this.token = token;
    this.errorCode = null;
    this.errorMessage = null;
    this.awaitingToken = false;
    this.doorRefusal = false;
    if (token && this.state === 'connected' && this.transport === 'ws') {
      const id = this.nextId++;
      this.pendingRefresh = { id, token };
      this.outstanding.add(id);
      return [{ type: 'send', message: { type: 'refresh', id, token } }];
    }
    /** @type {Action[]} */
    const acts = [];
    if (this.state === 'connecting' || this.state === 'connected') {
      acts.push({ type: 'close', code: 1000, reason: 'token changed' });
      acts.push(...this.resetLink());
      this.state = 'waiting';
    }
    if (this.state === 'idle' || this.state === 'stopped') return acts; // takes effect on start()
    return acts.concat(this.connect(now));
  }

  /**
   * Follow another namespace and/or filter. The position is dropped (the
   * next `subscribed` brings a snapshot). When the previous subscription
   * was refused (`failed` with FORBIDDEN, BAD_MESSAGE…), this is a new
   * request: it connects again. A failure of the token itself (AUTH_*,
   * TOKEN_EXPIRED) waits for another token.
   * @param {string} namespace @param {Filter|null} filter @param {number} now @returns {Action[]}
   */
  setSubscription(namespace, filter, now) {
    const old = this.namespace;
    this.namespace = namespace;
    this.filter = filter;
    this.epoch = null;
    this.offset = 0;
    this.replay = null;
    this.reconnecting = false;
    if (this.state === 'failed' && !(this.errorCode !== null && AUTH_CODES.has(this.errorCode))) {
      this.errorCode = null;
      this.errorMessage = null;
      return this.connect(now);
    }
    if (this.state !== 'connected' && this.state !== 'connecting') return [];
    if (this.transport === 'sse') {
      // SSE carries the subscription in its URL: reopen.
      return [{ type: 'close', code: 1000, reason: 'resubscribe' }, ...this.resetLink(), ...this.connect(now)];
    }
    if (!this.opened) return []; // `onOpen` subscribes to the new one
    /** @type {Action[]} */
    const acts = [];
    if (old !== namespace) acts.push({ type: 'send', message: { type: 'unsubscribe', id: this.nextId++, namespace: old } });
    this.subscribed = false;
    acts.push(...this.subscribeActions());
    return acts;
  }

  /**
   * Send a request (e.g. `cancel`) over the WebSocket; returns its id, or
   * null when no WebSocket is open (then use the HTTP API).
   * @param {Object} message @returns {{id: number|null, actions: Action[]}}
   */
  request(message) {
    if (this.transport !== 'ws' || !this.opened || (this.state !== 'connected' && this.state !== 'connecting')) {
      return { id: null, actions: [] };
    }
    const id = this.nextId++;
    this.outstanding.add(id);
    return { id, actions: [{ type: 'send', message: { ...message, id } }] };
  }

  // ---- transport events ------------------------------------------------

  /** The transport opened. @param {number} now @returns {Action[]} */
  onOpen(now) {
    if (this.state !== 'connecting') return [];
    this.opened = true;
    this.doorRefusal = false;
    this.openedAt = now;
    this.lastRxAt = now;
    // Ask the hub for its heartbeat interval (and first figures) at once.
    /** @type {Action} */
    const fetchStatus = { type: 'fetch_status', link: this.link };
    if (this.transport === 'ws') {
      this.wsBlocked = 0;
      return [...this.subscribeActions(), fetchStatus];
    }
    if (this.wsTries) this.wsTryAt = now + this.jittered(this.wsRetryDelay);
    return [fetchStatus]; // SSE: the subscription is in the URL; `subscribed` comes first.
  }

  /** One text frame arrived. @param {string} frame @param {number} now @returns {Action[]} */
  onFrame(frame, now) {
    if (this.state !== 'connecting' && this.state !== 'connected') return [];
    this.lastRxAt = now;
    this.probeDeadline = null;
    if (this.state === 'connected') this.lastLiveAt = now;
    /** @type {Action[]} */
    const acts = [];
    for (const msg of splitFrame(frame)) this.onMessage(/** @type {any} */ (msg), now, acts);
    if (this.replay && this.replay.count > 0 && this.isFiltered()) this.replay.quietAt = now + 300;
    return acts;
  }

  /**
   * The transport closed (or failed to open, or errored).
   * @param {number} code WebSocket close code (1006 when unknown)
   * @param {string} reason @param {number} now @returns {Action[]}
   */
  onClose(code, reason, now) {
    if (this.state !== 'connecting' && this.state !== 'connected') return [];
    if (code === 4001 && this.refreshRefused) {
      // The refused refresh is why: reconnect at once with the link's own token.
      return this.linkLost(now, 'token refresh refused', false, { delayMs: 0 });
    }
    if (code === 4001) {
      const codeName = this.errorCode && AUTH_CODES.has(this.errorCode) ? this.errorCode : 'AUTH_FAILED';
      return this.fail(now, codeName, this.errorMessage ?? (reason || 'The hub refused the token.'));
    }
    return this.linkLost(now, reason || `closed (${code})`, false);
  }

  /**
   * Result of the HTTP probe the machine asked for after a transport failed
   * to open (`GET /ws` after a WebSocket, which the hub answers with the
   * refusal the upgrade got: 401, 403, 429…, or 400 when it would have
   * upgraded; the namespace's listing after SSE). `status` is the HTTP
   * status, 0 when the hub is unreachable or did not answer within the
   * driver's probe timeout (never evidence that WebSocket is blocked);
   * `code` and `message` come from a JSON error body, or from the driver:
   * {@link ORIGIN_NOT_ALLOWED} when the hub answered but the browser hid the
   * answer (CORS). `info.link` is the probe action's (an answer about an
   * older link only counts for auth); `info.retryAfterMs` the hub's
   * `Retry-After` or `data.retry_after_ms`; `info.reason` its `data.reason`.
   * @param {number} status @param {string|null} code @param {string|null} message @param {number} now
   * @param {{link?: number|null, retryAfterMs?: number|null, reason?: string|null}} [info]
   * @returns {Action[]}
   */
  onProbe(status, code, message, now, info = {}) {
    const current = info.link === undefined || info.link === null || info.link === this.link;
    if (status === 401 || (code !== null && AUTH_CODES.has(code))) {
      if (this.opened || this.state === 'failed' || this.state === 'stopped' || this.state === 'idle') return [];
      // Waiting, or a newer attempt that has not opened (and will not, with this token).
      /** @type {Action[]} */
      const acts = this.state === 'connecting' ? [{ type: 'close', code: 1000, reason: 'auth' }] : [];
      return acts.concat(this.fail(now, code ?? 'AUTH_REQUIRED', message ?? 'The hub requires a token.'));
    }
    if (code === ORIGIN_NOT_ALLOWED) {
      // No transport can work from this page until the hub's configuration
      // changes: final, like FORBIDDEN, and said at once.
      if (this.opened || this.state === 'failed' || this.state === 'stopped' || this.state === 'idle') return [];
      /** @type {Action[]} */
      const acts = this.state === 'connecting' ? [{ type: 'close', code: 1000, reason: 'origin not allowed' }] : [];
      return acts.concat(this.fail(now, ORIGIN_NOT_ALLOWED, message ?? 'The hub refuses pages from this origin: add it to the hub\'s --allowed-origins.'));
    }
    if (!current || this.state !== 'waiting') return [];
    if (status === 403) {
      this.errorCode = code ?? 'FORBIDDEN';
      this.errorMessage = message ?? 'The hub refused this page (origin or namespace not allowed).';
      return [this.statusAction()];
    }
    if (status === 429 || code === 'RATE_LIMITED') {
      // Refused at the door (a connection cap, the handshake rate): the hub
      // is there and WebSocket works. Wait at least as long as it asks.
      const after = Number(info.retryAfterMs);
      this.doorRetryMs = Number.isFinite(after) && after > 0 ? after : 0;
      const floor = Math.floor(this.doorRetryMs + this.opts.random() * this.doorRetryMs / 4);
      if (this.retryAt !== null) this.retryAt = Math.max(this.retryAt, now + floor);
      const limit = info.reason ? ` (${info.reason})` : '';
      this.errorCode = 'RATE_LIMITED';
      this.errorMessage = `${message ?? 'the hub refused the connection for now'}${limit}`;
      this.doorRefusal = true;
      return [this.statusAction()];
    }
    /** @type {Action[]} */
    const acts = [];
    if (this.doorRefusal) {
      // The door let this one through: whatever failed, it was not that.
      this.doorRefusal = false;
      this.errorCode = null;
      this.errorMessage = null;
      acts.push(this.statusAction());
    }
    if (status >= 200 && status < 500 && this.lastFailedTransport === 'ws' && this.transport === 'ws') {
      // HTTP works but the WebSocket would not open: count towards SSE.
      this.wsBlocked += 1;
      if (this.wsBlocked >= this.opts.sseAfterFailures) {
        this.transport = 'sse';
        return [this.statusAction()];
      }
    }
    return acts;
  }

  /**
   * The driver could not even create the transport (`new WebSocket()`
   * threw: a mixed-content `ws:` URL from an `https:` page, a CSP, a bad
   * URL): a failed attempt like any other, retried with the backoff, with
   * `reason` saying why.
   * @param {string} reason @param {number} now @returns {Action[]}
   */
  openFailed(reason, now) {
    if (this.state !== 'connecting' || this.opened) return [];
    return this.linkLost(now, reason, false);
  }

  /**
   * The token provider (`getToken`) failed: it threw, or returned something
   * that is not a token. While connected nothing changes (the link's token
   * still works). Otherwise the status says so ({@link TOKEN_UNAVAILABLE},
   * `waiting` with `retryAt` set to when the driver asks again); no
   * connection is attempted without a token meanwhile. `retryAt` null: the
   * driver gives up, `failed`.
   * @param {string} message @param {number|null} retryAt @param {number} now @returns {Action[]}
   */
  tokenUnavailable(message, retryAt, now) {
    if (this.state === 'connected' || this.state === 'connecting' || this.state === 'stopped') return [];
    if (retryAt === null) return this.fail(now, TOKEN_UNAVAILABLE, message);
    this.state = 'waiting';
    this.awaitingToken = true;
    this.retryAt = retryAt;
    this.errorCode = TOKEN_UNAVAILABLE;
    this.errorMessage = message;
    if (this.disconnectedSince === null) this.disconnectedSince = now;
    return [this.statusAction()];
  }

  /** A timer fired. @param {number} now @returns {Action[]} */
  tick(now) {
    if (this.state === 'waiting' && !this.awaitingToken && this.retryAt !== null && now >= this.retryAt) return this.connect(now);
    if (this.switching && this.state === 'connecting' && this.attemptStartedAt !== null
        && now >= this.attemptStartedAt + this.opts.probeTimeoutMs) {
      // A switch may claim the link is live only this long.
      return this.linkLost(now, 'switch timed out', true);
    }
    if (this.state === 'connecting' && !this.opened && this.attemptStartedAt !== null
        && now >= this.attemptStartedAt + this.opts.connectTimeoutMs) {
      return this.linkLost(now, 'connect timeout', true);
    }
    if (this.opened && (this.state === 'connecting' || this.state === 'connected')) {
      if (now >= this.livenessDeadline()) return this.linkLost(now, 'no heartbeat within two intervals', true);
      if (this.probeDeadline !== null && now >= this.probeDeadline) return this.linkLost(now, 'ping unanswered', true);
      if (this.replay && now >= this.replay.quietAt) return this.finishReplay();
      const due = this.wsTryDue();
      if (due !== null && now >= due) {
        this.wsTrying = true;
        return [{ type: 'try_ws', link: this.link, token: this.token }];
      }
    }
    return [];
  }

  /** When the next `try_ws` is due, or null (not on a live SSE link, or one is out). @returns {number|null} */
  wsTryDue() {
    if (this.state !== 'connected' || this.transport !== 'sse' || this.wsTrying) return null;
    return this.wsTryAt;
  }

  /**
   * The answer to a `try_ws`: whether a WebSocket to the hub opened and
   * answered a ping (`ok`). Yes: the SSE link is closed and the client
   * connects over WebSocket at once, resuming from its offset, without
   * reporting an outage (`switching`). The switch holds once that
   * WebSocket has stayed up for {@link switchHoldMs}; if it does not
   * open, is not subscribed within `probeTimeoutMs`, or dies before then,
   * the client goes straight back to SSE (again without an outage) and
   * the next try waits twice as long. No: SSE goes on and the next try
   * waits twice as long (up to `maxWsRetryMs`). Answers for another link
   * are ignored.
   * @param {number} link @param {boolean} ok @param {number} now @returns {Action[]}
   */
  onWsTry(link, ok, now) {
    if (link !== this.link || !this.wsTrying || this.state !== 'connected' || this.transport !== 'sse') return [];
    this.wsTrying = false;
    if (!ok) {
      this.slowDownTries();
      this.wsTryAt = now + this.jittered(this.wsRetryDelay);
      return [];
    }
    this.transport = 'ws';
    this.attempt = 0;
    this.switching = true;
    this.switchState = 'moving';
    return [{ type: 'close', code: 1000, reason: 'switching to WebSocket' }, ...this.connect(now)];
  }

  /** How long a switched-to WebSocket must hold for the switch to count. @returns {number} */
  switchHoldMs() {
    return Math.max(this.opts.minUptimeMs, this.wsRetryBase);
  }

  /** The next try waits twice as long (up to `maxWsRetryMs`). */
  slowDownTries() {
    this.wsRetryDelay = Math.min(this.wsRetryDelay * 2, Math.max(1000, this.opts.maxWsRetryMs));
  }

  /**
   * The link just lost was a switch to WebSocket that did not hold: back
   * to SSE at once, resuming from the offset, shown as a switch (not an
   * outage), with the tries slowed down.
   * @param {number} now @param {string} why @param {boolean} mustClose @returns {Action[]}
   */
  switchBack(now, why, mustClose) {
    /** @type {Action[]} */
    const acts = mustClose ? [{ type: 'close', code: 4000, reason: why }] : [];
    this.transport = 'sse';
    this.attempt = 0;
    this.slowDownTries();
    this.switching = true;
    this.reason = why;
    return acts.concat(this.connect(now));
  }

  /** `ms` ± 25 % (`random`). @param {number} ms @returns {number} */
  jittered(ms) {
    return Math.floor(ms * (0.75 + this.opts.random() / 2));
  }

  /**
   * Generic entry point in the style of the Rust client: `handle(event, now)`.
   * @param {{type:'start'}|{type:'stop'}|{type:'retry_now'}|{type:'wake', reason?: string}|{type:'open'}
   *   |{type:'frame', data: string}|{type:'close', code?: number, reason?: string}|{type:'tick'}
   *   |{type:'probe', status: number, code?: string|null, message?: string|null, link?: number|null,
   *     retryAfterMs?: number|null, reason?: string|null}
   *   |{type:'open_failed', reason: string}|{type:'token_unavailable', message: string, retryAt: number|null}
   *   |{type:'token', token: string|null}|{type:'hub_status', link: number|null, data: Record<string, any>|null}
   *   |{type:'ws_try', link: number, ok: boolean}} ev
   * @param {number} now
   * @returns {Action[]}
   */
  handle(ev, now) {
    switch (ev.type) {
      case 'start': return this.start(now);
      case 'stop': return this.stop(now);
      case 'retry_now': return this.retryNow(now);
      case 'wake': return this.wake(ev.reason ?? 'wake', now);
      case 'open': return this.onOpen(now);
      case 'frame': return this.onFrame(ev.data, now);
      case 'close': return this.onClose(ev.code ?? 1006, ev.reason ?? '', now);
      case 'tick': return this.tick(now);
      case 'probe': return this.onProbe(ev.status, ev.code ?? null, ev.message ?? null, now,
        { link: ev.link ?? null, retryAfterMs: ev.retryAfterMs ?? null, reason: ev.reason ?? null });
      case 'open_failed': return this.openFailed(ev.reason, now);
      case 'token_unavailable': return this.tokenUnavailable(ev.message, ev.retryAt, now);
      case 'token': return this.setToken(ev.token, now);
      case 'hub_status': return this.onHubStatus(ev.link, ev.data, now);
      case 'ws_try': return this.onWsTry(ev.link, ev.ok, now);
      default: return [];
    }
  }

  // ---- internals -------------------------------------------------------

  /** @returns {Action} */
  statusAction() {
    return { type: 'status', status: this.status() };
  }

  /** @param {number} now @returns {Action[]} */
  connect(now) {
    const orphans = this.resetLink();
    this.awaitingToken = false;
    this.linkToken = this.token;
    this.state = 'connecting';
    this.retryAt = null;
    this.attemptStartedAt = now;
    let lastEventId = null;
    if (this.transport === 'sse' && this.epoch !== null) lastEventId = `${this.epoch}:${this.offset}`;
    return [
      ...orphans,
      { type: 'open', transport: this.transport, namespace: this.namespace, filter: this.filter, token: this.token, lastEventId },
      this.statusAction(),
    ];
  }

  /**
   * Forgets the link. Requests sent on it and not answered are answered
   * here, at once, with {@link CONNECTION_LOST}: the hub may or may not have
   * applied them (the next snapshot or replay says which).
   * @returns {Action[]} those replies
   */
  resetLink() {
    /** @type {Action[]} */
    const orphans = [...this.outstanding].map((id) => ({
      type: 'reply', id, message: {
        type: 'error', id, code: CONNECTION_LOST, outcome: 'unknown',
        message: 'The connection closed before the hub answered: the request may or may not have taken effect.',
      },
    }));
    this.outstanding.clear();
    this.opened = false;
    this.openedAt = null;
    this.subscribed = false;
    this.subscribeId = null;
    this.probeDeadline = null;
    this.awaitingSnapshot = false;
    this.pendingRefresh = null;
    this.refreshRefused = false;
    // Heartbeat gaps are measured, and the interval learned, within one
    // connection: a reconnect may reach a restarted hub with another interval.
    this.lastHeartbeatAt = null;
    this.hbGaps = [];
    this.advertisedHbMs = null;
    this.wsTryAt = null;
    this.wsTrying = false;
    this.link += 1;
    return orphans;
  }

  /** @returns {Action[]} */
  subscribeActions() {
    this.subscribeId = this.nextId++;
    // The dashboard shows each operation's latest state: while it is behind,
    // the hub may replace queued progress with newer (never lifecycle events).
    /** @type {Record<string, any>} */
    const msg = { type: 'subscribe', id: this.subscribeId, namespace: this.namespace, conflate: true };
    if (this.filter && (this.filter.operations?.length || this.filter.kinds?.length)) msg.filter = this.filter;
    if (this.epoch !== null) msg.resume = { epoch: this.epoch, offset: this.offset };
    return [{ type: 'send', message: msg }];
  }

  /**
   * The link is gone: schedule the next attempt with backoff.
   * @param {number} now @param {string} why @param {boolean} [mustClose] whether the transport may still be open
   * @param {{delayMs?: number|null, code?: string, message?: string}} [refusal] the hub refused the
   *   subscription for now (see {@link RETRYABLE_CODES}): its code and message, and how long it asked to wait
   * @returns {Action[]}
   */
  linkLost(now, why, mustClose = true, refusal = {}) {
    /** @type {Action[]} */
    const acts = [];
    const switchFailed = this.switchState === 'moving'
      || (this.switchState === 'proving' && this.switchedAt !== null && now - this.switchedAt < this.switchHoldMs());
    // A switch that held this long is a success: the tries start afresh next time.
    if (this.switchState === 'proving' && !switchFailed) this.wsRetryDelay = this.wsRetryBase;
    this.switchState = null;
    this.switching = false;
    if (switchFailed && this.transport === 'ws' && !refusal.code) return this.switchBack(now, why, mustClose);
    if (mustClose) acts.push({ type: 'close', code: 4000, reason: why });
    const wasOpened = this.opened;
    let doorFloor = 0;
    if (refusal.code) {
      this.errorCode = refusal.code;
      this.errorMessage = refusal.message ?? null;
      this.doorRefusal = false;
    } else if (this.doorRefusal && !wasOpened) {
      // Refused at the door again, most likely for the same reason: the
      // status keeps saying so, and the wait honours the hub's last
      // Retry-After, until the probe of this attempt says otherwise.
      doorFloor = this.doorRetryMs;
    } else if (this.errorCode !== null && RETRYABLE_CODES.has(this.errorCode)) {
      // A temporary refusal explained the previous wait, not this one.
      this.errorCode = null;
      this.errorMessage = null;
      this.doorRefusal = false;
    }
    this.reason = why;
    this.lastFailedTransport = wasOpened ? null : this.transport;
    if (this.openedAt !== null && now - this.openedAt >= this.opts.minUptimeMs) this.attempt = 0;
    if (this.state === 'connected' || this.subscribed) this.reconnecting = true;
    acts.push(...this.resetLink());
    if (this.disconnectedSince === null) this.disconnectedSince = now;
    this.replay = null;
    let delay = refusal.delayMs ?? backoffDelay(this.attempt, this.opts.baseDelayMs, this.opts.maxDelayMs, this.opts.random);
    if (doorFloor > 0) delay = Math.max(delay, Math.floor(doorFloor + this.opts.random() * doorFloor / 4));
    this.attempt += 1;
    this.state = 'waiting';
    this.retryAt = now + delay;
    if (this.transport === 'sse' && !wasOpened) {
      // Alternate back to WebSocket now and then: the block may be gone.
      this.transport = 'ws';
      this.wsBlocked = Math.max(0, this.opts.sseAfterFailures - 1);
    }
    acts.push(this.statusAction());
    // Why did it not open? (auth, origin, a limit at the door, blocked WS, hub down)
    if (!wasOpened) acts.push({ type: 'probe', transport: this.lastFailedTransport ?? this.transport, link: this.link });
    return acts;
  }

  /** @param {number} now @param {string} code @param {string} message @returns {Action[]} */
  fail(now, code, message) {
    const acts = this.resetLink();
    this.switching = false;
    this.switchState = null;
    this.awaitingToken = false;
    this.state = 'failed';
    this.retryAt = null;
    this.errorCode = code;
    this.errorMessage = message;
    if (this.disconnectedSince === null) this.disconnectedSince = now;
    acts.push(this.statusAction());
    return acts;
  }

  /**
   * @param {Record<string, any>} msg @param {number} now @param {Action[]} acts
   */
  onMessage(msg, now, acts) {
    const type = msg.type;
    if (EVENT_TYPES.has(type)) {
      if (msg.namespace !== this.namespace || !this.subscribed || this.awaitingSnapshot) return;
      const off = Number(msg.offset);
      if (!(off > this.offset)) { this.duplicates += 1; return; }
      if (!this.isFiltered() && off !== this.offset + 1) this.gaps += 1;
      this.offset = off;
      acts.push({ type: 'event', event: /** @type {HubEvent} */ (msg) });
      if (this.replay) {
        this.replay.count += 1;
        if (off >= this.replay.target) acts.push(...this.finishReplay());
      }
      return;
    }
    switch (type) {
      case 'heartbeat': {
        if (this.lastHeartbeatAt !== null) {
          const gap = now - this.lastHeartbeatAt;
          // The largest recent gap is the estimate: a burst of heartbeats
          // after a stall (near-zero gaps) must not shrink it.
          if (gap >= MIN_HEARTBEAT_GAP_MS) {
            this.hbGaps.push(gap);
            if (this.hbGaps.length > HEARTBEAT_GAP_WINDOW) this.hbGaps.shift();
          }
        }
        this.lastHeartbeatAt = now;
        if (typeof msg.timestamp === 'number') {
          // Server clock minus ours. Each sample is late by its delivery time,
          // so the largest of the recent ones is the best estimate.
          this.skewSamples.push(msg.timestamp - now);
          if (this.skewSamples.length > 10) this.skewSamples.shift();
          this.clockSkewMs = Math.max(...this.skewSamples);
        }
        acts.push({ type: 'heartbeat', message: msg });
        return;
      }
      case 'subscribed': {
        if (msg.namespace !== this.namespace) return;
        if (this.subscribeId !== null && msg.id !== undefined && msg.id !== this.subscribeId) return;
        const target = Number(msg.offset) || 0;
        const reconnect = this.reconnecting;
        this.reconnecting = false;
        this.subscribed = true;
        this.state = 'connected';
        this.everConnected = true;
        this.switching = false;
        if (this.switchState === 'moving') {
          this.switchState = 'proving';
          this.switchedAt = now;
        }
        this.disconnectedSince = null;
        this.lastLiveAt = now;
        this.errorCode = null;
        this.errorMessage = null;
        if (msg.recovered === true && this.epoch === msg.epoch) {
          // A filtered replay may end below `target` (events of other
          // operations): then a short quiet period ends it.
          this.replay = { target, count: 0, reconnect, quietAt: now + (this.isFiltered() ? 300 : 5000) };
          acts.push(this.statusAction());
          if (this.offset >= target) acts.push(...this.finishReplay());
        } else {
          this.epoch = msg.epoch;
          this.awaitingSnapshot = true;
          this.replay = null;
          this.pendingReconnect = reconnect;
          acts.push(this.statusAction());
        }
        return;
      }
      case 'operation_list': {
        if (msg.namespace !== this.namespace || !this.subscribed || !this.awaitingSnapshot) return;
        this.awaitingSnapshot = false;
        this.epoch = msg.epoch ?? this.epoch;
        this.offset = Number(msg.offset) || 0;
        acts.push({ type: 'snapshot', namespace: msg.namespace, epoch: this.epoch ?? '', offset: this.offset, operations: msg.operations ?? [] });
        acts.push({ type: 'synced', mode: 'snapshot', recovered: 0, reconnect: !!this.pendingReconnect });
        this.pendingReconnect = false;
        acts.push(this.statusAction());
        return;
      }
      case 'system_status':
        this.onHubStatus(null, msg.data ?? null, now);
        acts.push({ type: 'system_status', message: msg });
        return;
      case 'error': {
        if (this.pendingRefresh !== null && msg.id === this.pendingRefresh.id) {
          // The refresh was refused. An auth refusal is followed by close
          // 4001 (see onClose), after which the link reconnects: with the
          // token it held when the new one was refused (AUTH_FAILED: the new
          // token is bad), with the new one when the link's own token expired
          // (TOKEN_EXPIRED: the hub never judged the new one). Any other
          // refusal leaves the link as it was, with its token.
          this.pendingRefresh = null;
          this.outstanding.delete(msg.id);
          if (msg.code !== 'TOKEN_EXPIRED') this.token = this.linkToken;
          if (AUTH_CODES.has(msg.code)) this.refreshRefused = true;
          acts.push({ type: 'reply', id: msg.id, message: msg }, { type: 'server_error', error: msg });
          return;
        }
        if (msg.code === 'FORBIDDEN' && (msg.id === undefined || msg.id === null)
            && msg.data?.namespace === this.namespace) {
          // The hub ended this subscription (a refreshed token may not read
          // the namespace; the connection stays, but nothing more comes):
          // the same state as a subscription refused at the start.
          acts.push({ type: 'server_error', error: msg }, { type: 'close', code: 1000, reason: 'subscription ended' });
          acts.push(...this.fail(now, 'FORBIDDEN', msg.message ?? 'The hub ended the subscription to this namespace.'));
          return;
        }
        if (AUTH_CODES.has(msg.code)) {
          this.errorCode = msg.code;
          this.errorMessage = msg.message ?? null;
        }
        if (msg.id !== undefined && msg.id === this.subscribeId && !this.subscribed && RETRYABLE_CODES.has(msg.code)
            && !(msg.code === 'RATE_LIMITED' && FINAL_LIMITS.has(msg.data?.reason))) {
          // Refused for now (e.g. RATE_LIMITED `snapshots` while other viewers'
          // snapshots are unread): wait as the hub says, then try again.
          acts.push(...this.refusedForNow(now, msg));
          return;
        }
        if (msg.id !== undefined && msg.id === this.subscribeId && !this.subscribed) {
          // The subscription itself was refused (FORBIDDEN namespace, bad filter…):
          // retrying the same request cannot help.
          acts.push({ type: 'server_error', error: msg }, { type: 'close', code: 1000, reason: 'subscribe refused' });
          const limit = typeof msg.data?.reason === 'string' ? ` (${msg.data.reason})` : '';
          acts.push(...this.fail(now, msg.code ?? 'BAD_MESSAGE', `${msg.message ?? 'The hub refused the subscription.'}${limit}`));
          return;
        }
        if (msg.id !== undefined && msg.id !== null) {
          this.outstanding.delete(msg.id);
          acts.push({ type: 'reply', id: msg.id, message: msg });
        }
        acts.push({ type: 'server_error', error: msg });
        return;
      }
      case 'ok': case 'pong': case 'ack':
        if (type === 'ok' && this.pendingRefresh !== null && msg.id === this.pendingRefresh.id) {
          this.linkToken = this.pendingRefresh.token;
          this.pendingRefresh = null;
        }
        if (msg.id !== undefined && msg.id !== null) {
          this.outstanding.delete(msg.id);
          acts.push({ type: 'reply', id: msg.id, message: msg });
        }
        return;
      default: acts.push({ type: 'message', message: msg });
    }
  }

  /**
   * The hub refused the subscription for a reason that waiting cures: close
   * (a new connection starts clean) and retry after `data.retry_after_ms`
   * plus up to a quarter more of jitter (so viewers refused together do not
   * come back together), else after the usual backoff. The status says why.
   * @param {number} now @param {Record<string, any>} msg @returns {Action[]}
   */
  refusedForNow(now, msg) {
    const after = Number(msg.data?.retry_after_ms);
    const delay = Number.isFinite(after) && after >= 0
      ? Math.floor(after + this.opts.random() * after / 4)
      : null;
    const limit = typeof msg.data?.reason === 'string' ? ` (${msg.data.reason})` : '';
    const acts = this.linkLost(now, `subscription refused for now: ${msg.code}${limit}`, true, {
      delayMs: delay, code: msg.code, message: `${msg.message ?? 'the hub refused the subscription for now'}${limit}`,
    });
    // After the status: a listener sees the error with the wait already set.
    acts.push({ type: 'server_error', error: msg });
    return acts;
  }

  isFiltered() {
    return !!(this.filter && (this.filter.operations?.length || this.filter.kinds?.length));
  }

  /** @returns {Action[]} */
  finishReplay() {
    const r = this.replay;
    if (!r) return [];
    this.replay = null;
    return [{ type: 'synced', mode: 'recovered', recovered: r.count, reconnect: r.reconnect }, this.statusAction()];
  }
}
