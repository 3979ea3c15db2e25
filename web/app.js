// @ts-check
/**
 * The dashboard page: wires the hub client to the store and the views.
 * Data arrives as events; rendering happens on animation frames only, and
 * only for the operations that changed since the previous frame.
 */

import { HubClient } from './client.js';
import { OperationStore } from './store.js';
import { OperationsView } from './render.js';
import { Timeline } from './timeline.js';
import { ConnectionUI, SystemPanel, pageTitle, staleText, toastText } from './status.js';
import { compileFilter, isFinished, shortLabel } from './format.js';
import { loadToken, saveToken, decodeClaims, checkToken, mayCancel, explainAuth } from './auth.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const NS_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const RECENT_KEY = 'progress-hub.namespaces';
const AUTH_CODES = new Set(['AUTH_REQUIRED', 'AUTH_FAILED', 'TOKEN_EXPIRED', 'FORBIDDEN']);

const params = new URLSearchParams(location.search);
/** @type {string[]} */
let recent = [];
try { recent = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]').filter((/** @type {any} */ n) => typeof n === 'string' && NS_RE.test(n)); } catch { recent = []; }
let namespace = params.get('ns') && NS_RE.test(params.get('ns') ?? '') ? /** @type {string} */ (params.get('ns')) : 'default';
let token = loadToken(sessionStorage);

const store = new OperationStore();
const connUI = new ConnectionUI({
  root: $('conn'), dot: $('conn-dot'), text: $('conn-text'), banner: $('banner'), bannerText: $('banner-text'), toast: $('toast'),
});
const system = new SystemPanel($('system'));
const timeline = new Timeline({ root: $('timeline-plot'), tooltip: $('timeline-tip'), note: $('timeline-note') });
const view = new OperationsView({
  active: $('op-list'), finished: $('op-finished'), empty: $('ops-empty'), count: $('op-count'),
  finishedHeading: $('finished-title'), onCancel: askCancel,
});
const client = new HubClient({ namespace, token });

// ---- perf figures (read by the browser tests) -------------------------------
const perf = {
  frames: 0, rowsUpdated: 0, renderMs: /** @type {number[]} */ ([]), frameGapMs: /** @type {number[]} */ ([]),
  lagMs: /** @type {number[]} */ ([]), longTasks: 0, longTaskMs: 0,
  reset() { this.frames = 0; this.rowsUpdated = 0; this.renderMs = []; this.frameGapMs = []; this.lagMs = []; this.longTasks = 0; this.longTaskMs = 0; },
};
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { perf.longTasks += 1; perf.longTaskMs += e.duration; }
  }).observe({ type: 'longtask', buffered: false });
} catch { /* not supported */ }
/** @param {number[]} a @param {number} v */
const push = (a, v) => { a.push(v); if (a.length > 5000) a.shift(); };
Object.assign(window, { __hubPerf: perf, __hub: { client, store, view } });

// ---- rendering on animation frames ----------------------------------------
let frameRequested = false;
let lastFrameAt = 0;
let timelineDirty = true;
function scheduleFrame() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(frame);
}
/** @param {number} ts */
function frame(ts) {
  frameRequested = false;
  if (!store.hasChanges()) return;
  const t0 = performance.now();
  const changes = store.take();
  view.update(changes, store, Date.now());
  if (changes.finishedChanged) timelineDirty = true;
  if (pendingCancel !== null && changes.dirty.has(pendingCancel)) pendingCancelChanged();
  if (unansweredCancels.size) unansweredCancelsChanged(changes.dirty);
  const t1 = performance.now();
  perf.frames += 1;
  perf.rowsUpdated += changes.dirty.size;
  push(perf.renderMs, t1 - t0);
  if (lastFrameAt) push(perf.frameGapMs, ts - lastFrameAt);
  lastFrameAt = ts;
  if (changes.newestTimestamp) push(perf.lagMs, Date.now() + client.status().clockSkewMs - changes.newestTimestamp);
  if (store.hasChanges()) scheduleFrame();
}

client.on('snapshot', (s) => {
  $('ops-empty').textContent = `No operations in namespace “${s.namespace}” yet.`;
  store.replace(s.operations);
  scheduleFrame();
});
client.on('event', (ev) => { store.apply(ev.state, ev.timestamp); scheduleFrame(); });
/** How long the hub keeps finished operations (from system_status), null until known. @type {number|null} */
let retentionMs = null;
client.on('system_status', (m) => {
  system.update(m);
  const r = m?.data?.finished_retention_ms;
  if (typeof r === 'number' && Number.isFinite(r) && r >= 0) retentionMs = r;
});
client.on('heartbeat', () => { view.skewMs = client.status().clockSkewMs; });
client.on('synced', (s) => { if (s.reconnect) connUI.toast(toastText(s)); });
client.on('status', (s) => {
  connUI.update(s, Date.now(), client.healthy());
  refreshTitle();
  refreshStale();
  onTokenStatus(s);
  refreshAuth();
});
client.on('server_error', (e) => {
  if (e.code === 'SLOW_CLIENT' || e.code === 'SERVER_SHUTDOWN' || e.code === 'IDLE_TIMEOUT') return; // the reconnect says it
  if (AUTH_CODES.has(e.code)) return; // the auth panel says it
  const s = client.status();
  if (s.state === 'waiting' && s.errorCode === e.code) return; // a refusal for now: the banner says it and when it retries
  if (e.severity === 'error' || e.severity === 'critical') connUI.toast(`${e.code}: ${e.message}`, 'error');
});

/** The tab's title says the namespace and, when not live, that first. */
function refreshTitle() {
  const t = pageTitle(client.status(), namespace, client.healthy());
  if (document.title !== t) document.title = t;
}

// ---- stale data --------------------------------------------------------------
function refreshStale() {
  const s = client.status();
  // Also while the missed events are still coming in after a reconnect.
  const stale = !s.switching && (s.state !== 'connected' || s.syncing) && s.lastLiveAt !== null;
  document.body.classList.toggle('stale', stale);
  // Stale data is shown as of its last live moment: elapsed times stop there.
  view.setStale(stale ? staleText(s.lastLiveAt, Date.now()) : '', stale ? s.lastLiveAt : null);
}

// ---- clocks: countdown, ages, elapsed times, timeline -------------------------
let ticks = 0;
let knownKinds = '';
setInterval(() => {
  const now = Date.now();
  connUI.update(client.status(), now, client.healthy());
  refreshTitle();
  ticks += 1;
  if (timelineDirty || ticks % 20 === 0) {
    timelineDirty = false;
    timeline.render(store.recentlyFinished(150), now + client.status().clockSkewMs);
  }
  if (ticks % 4 !== 0) return;
  // Finished operations leave the page when they leave the hub.
  if (retentionMs !== null && store.expire(now + client.status().clockSkewMs, retentionMs)) scheduleFrame();
  refreshStale();
  view.tick(now);
  const kinds = store.kinds();
  if (kinds.join('\n') !== knownKinds) {
    knownKinds = kinds.join('\n');
    fillKinds(kinds);
  }
}, 250);

// ---- filter ------------------------------------------------------------------
const globInput = /** @type {HTMLInputElement} */ ($('filter-glob'));
const kindSel = /** @type {HTMLSelectElement} */ ($('filter-kind'));
const stateSel = /** @type {HTMLSelectElement} */ ($('filter-state'));
/**
 * The Kind list: the kinds seen, plus the chosen one even while none of its
 * operations is shown (e.g. from the address bar, before the snapshot), so
 * the list, the filter and the URL always agree.
 * @param {string[]} kinds
 */
function fillKinds(kinds) {
  const current = kindSel.value;
  const all = current && !kinds.includes(current) ? [...kinds, current].sort() : kinds;
  // Long kinds are shortened in the list (full text as the title): a select is as wide as its longest option.
  kindSel.replaceChildren(new Option('all kinds', ''), ...all.map((k) => {
    const o = new Option(shortLabel(k), k);
    if (o.text !== k) o.title = k;
    return o;
  }));
  kindSel.value = current;
}
globInput.value = params.get('op') ?? '';
const urlKind = params.get('kind') ?? '';
fillKinds(urlKind ? [urlKind] : []);
kindSel.value = urlKind;
stateSel.value = params.get('state') ?? '';
let filterTimer = 0;
function applyFilter() {
  kindSel.title = kindSel.value; // the chosen kind in full, however short its label
  view.setFilter(compileFilter({ glob: globInput.value, kind: kindSel.value, state: stateSel.value }), store);
  syncUrl();
}
globInput.addEventListener('input', () => { clearTimeout(filterTimer); filterTimer = window.setTimeout(applyFilter, 120); });
kindSel.addEventListener('change', applyFilter);
stateSel.addEventListener('change', applyFilter);
$('filter-form').addEventListener('submit', (e) => { e.preventDefault(); applyFilter(); });

/** Namespace and filter in the address bar (never the token). */
function syncUrl() {
  const u = new URL(location.href);
  u.search = '';
  if (namespace !== 'default') u.searchParams.set('ns', namespace);
  if (globInput.value) u.searchParams.set('op', globInput.value);
  if (kindSel.value) u.searchParams.set('kind', kindSel.value);
  if (stateSel.value) u.searchParams.set('state', stateSel.value);
  history.replaceState(null, '', u);
}

// ---- namespace picker ---------------------------------------------------------
const nsInput = /** @type {HTMLInputElement} */ ($('ns-input'));
nsInput.value = namespace;
function fillRecent() {
  $('ns-list').replaceChildren(...recent.map((n) => new Option(n)));
}
fillRecent();
$('ns-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const ns = nsInput.value.trim();
  if (!NS_RE.test(ns)) { nsInput.setCustomValidity('1–128 characters of A–Z a–z 0–9 . _ : -'); nsInput.reportValidity(); return; }
  nsInput.setCustomValidity('');
  if (ns === namespace) {
    // The same namespace again: a retry, when its subscription was refused.
    if (bannerAction(client.status()) !== 'token' && client.status().state === 'failed') client.retryNow();
    return;
  }
  namespace = ns;
  recent = [ns, ...recent.filter((n) => n !== ns)].slice(0, 10);
  try { localStorage.setItem(RECENT_KEY, JSON.stringify(recent)); } catch { /* ignore */ }
  fillRecent();
  store.clear();
  $('ops-empty').textContent = 'Waiting for the hub…';
  scheduleFrame();
  timelineDirty = true;
  refreshPermission();
  client.subscribe(ns);
  syncUrl();
  refreshTitle();
});

// ---- auth ----------------------------------------------------------------------
const authPanel = $('auth-panel');
const authMsg = $('auth-message');
const tokenInput = /** @type {HTMLInputElement} */ ($('token-input'));
const tokenButton = $('token-button');
const retryButton = $('retry-now');
let authOpenedByUser = false;
/**
 * A token entered on this page that the hub has not accepted yet: it is
 * saved (and survives a reload) only once the hub took it — by answering
 * `ok` to its `refresh`, or by a connection made with it.
 * @type {{token: string, via: 'refresh'|'connect'}|null}
 */
let unconfirmed = null;
function refreshPermission() {
  const ok = mayCancel(token, namespace);
  view.setPermission(() => ok);
}
/** The token input's placeholder names the token in use. */
function showCurrentToken() {
  const claims = token ? decodeClaims(token) : null;
  tokenInput.placeholder = claims ? `current: ${claims.sub ?? 'token'} (${(claims.roles ?? ['viewer']).join(', ')})` : 'no token';
}
/** @param {boolean} open */
function setAuthPanel(open) {
  authPanel.hidden = !open;
  tokenButton.setAttribute('aria-expanded', String(open));
}
/**
 * Whether the link failed for a reason another token can fix (FORBIDDEN:
 * another token, or another namespace). @param {import('./client.js').Status} s
 */
function needsNewToken(s) {
  return s.state === 'failed' && !!s.errorCode && AUTH_CODES.has(s.errorCode);
}
/**
 * What the banner's button offers: another token when the token was refused
 * or expired (retrying it cannot help), another namespace when this token may
 * not read this one, else a retry.
 * @param {import('./client.js').Status} s @returns {'token'|'namespace'|'retry'}
 */
function bannerAction(s) {
  if (!needsNewToken(s)) return 'retry';
  return s.errorCode === 'FORBIDDEN' ? 'namespace' : 'token';
}
const ACTION_LABELS = { token: 'Enter a new token', namespace: 'Pick another namespace', retry: 'Retry now' };
function refreshAuth() {
  const s = client.status();
  const action = bannerAction(s);
  const label = ACTION_LABELS[action];
  if (retryButton.textContent !== label) retryButton.textContent = label;
  if (action !== 'retry') {
    // The panel explains it (for FORBIDDEN: pick another namespace or use
    // another token); only a refused token takes the focus to the token input.
    setAuthPanel(true);
    authMsg.textContent = explainAuth(s.errorCode, s.errorMessage);
    if (action === 'token' && document.activeElement !== tokenInput) tokenInput.focus();
  } else if (s.state === 'connected' && !authOpenedByUser && unconfirmed === null) {
    setAuthPanel(false);
  }
}
/** The hub accepted the token entered last: keep it, close the panel, name it. */
function tokenAccepted() {
  if (!unconfirmed) return;
  saveToken(sessionStorage, unconfirmed.token);
  unconfirmed = null;
  authOpenedByUser = false;
  authMsg.textContent = '';
  showCurrentToken();
  setAuthPanel(false);
}
/** @param {import('./client.js').Status} s */
function onTokenStatus(s) {
  if (s.state === 'connected' && unconfirmed?.via === 'connect' && client.machine.token === unconfirmed.token) tokenAccepted();
  if (needsNewToken(s) && s.errorCode !== 'FORBIDDEN') {
    // Refused: never keep it for the next reload.
    if (unconfirmed && client.machine.token === unconfirmed.token) unconfirmed = null;
    if (token && loadToken(sessionStorage) === token) saveToken(sessionStorage, null);
  }
}
tokenButton.addEventListener('click', () => {
  authOpenedByUser = authPanel.hidden;
  setAuthPanel(authPanel.hidden);
  if (!authPanel.hidden) {
    authMsg.textContent = '';
    showCurrentToken();
    tokenInput.focus();
  }
});
$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = tokenInput.value.trim();
  const problem = checkToken(t, Date.now());
  if (problem) { authMsg.textContent = problem; return; }
  token = t;
  const live = client.status().state === 'connected' && client.status().transport === 'ws';
  const attempt = { token: t, via: /** @type {'refresh'|'connect'} */ (live ? 'refresh' : 'connect') };
  unconfirmed = attempt;
  tokenInput.value = '';
  authMsg.textContent = 'Connecting with this token…';
  authOpenedByUser = false;
  refreshPermission();
  client.setToken(t).then((reply) => {
    if (unconfirmed !== attempt || reply === null) return; // superseded, or a new connection decides
    if (reply.type === 'ok') { tokenAccepted(); return; }
    if ((reply.code === 'TOKEN_EXPIRED' || reply.code === 'CONNECTION_LOST') && client.machine.token === attempt.token) {
      // The link's own token expired before the hub looked at this one (or
      // the link dropped first): it goes with the new connection, whose
      // status decides.
      attempt.via = 'connect';
      return;
    }
    unconfirmed = null;
    // The hub refused the new token (and closes the link, 4001): the page
    // reconnects with the token it was using, which stays saved. The panel
    // stays open to say so until the user closes it.
    token = client.machine.token;
    showCurrentToken();
    refreshPermission();
    authOpenedByUser = true;
    const still = reply.code === 'TIMEOUT' || reply.code === 'CONNECTION_LOST' ? ''
      : token ? ` The token in use (${decodeClaims(token)?.sub ?? 'previous'}) stays in use.` : ' The page goes on without a token.';
    authMsg.textContent = `${explainAuth(reply.code ?? null, reply.message ?? null)}${still}`;
    setAuthPanel(true);
  });
});
$('token-forget').addEventListener('click', () => {
  token = null;
  unconfirmed = null;
  saveToken(sessionStorage, null);
  authMsg.textContent = 'Token forgotten.';
  showCurrentToken();
  refreshPermission();
  client.setToken(null);
});

// ---- cancel with confirmation ----------------------------------------------------
const dialog = /** @type {HTMLDialogElement} */ ($('confirm'));
/** @type {string|null} */
let pendingCancel = null;
/** @type {HTMLElement|null} */
let returnFocus = null;
/** @param {string} id */
function askCancel(id) {
  const op = store.ops.get(id);
  if (!op) return;
  pendingCancel = id;
  returnFocus = /** @type {HTMLElement|null} */ (document.activeElement);
  $('confirm-text').textContent = `“${op.name || id}” (${id}) will be asked to stop. Its producer decides when it actually ends.`;
  dialog.showModal();
  $('confirm-no').focus();
}
/** Close the dialog; the focus goes back where it was, or to the row when that is gone or hidden. */
function closeDialog() {
  const id = pendingCancel;
  if (dialog.open) dialog.close();
  pendingCancel = null;
  const back = returnFocus;
  returnFocus = null;
  if (back && back.isConnected && back.getClientRects().length > 0) back.focus();
  else if (id !== null) view.focusRow(id);
}
/** The operation the dialog is about changed: once it has ended (or is gone) there is nothing to cancel. */
function pendingCancelChanged() {
  const id = pendingCancel;
  if (id === null || !dialog.open) return;
  const op = store.ops.get(id);
  if (op && !isFinished(op.state)) return;
  closeDialog();
  connUI.toast(op ? `“${op.name || id}” ${op.state} on its own — nothing to cancel.` : `“${id}” is gone — nothing to cancel.`);
}
$('confirm-no').addEventListener('click', closeDialog);
dialog.addEventListener('cancel', (e) => { e.preventDefault(); closeDialog(); });
$('confirm-yes').addEventListener('click', async () => {
  const id = pendingCancel;
  if (!id) { closeDialog(); return; }
  const op = store.ops.get(id);
  if (!op || isFinished(op.state)) { pendingCancelChanged(); return; }
  returnFocus = null;
  closeDialog();
  // Its Cancel button is hidden now: the focus goes to the row's "cancel requested".
  view.markCancelSent(id);
  view.focusRow(id);
  const reply = await client.cancel(id, namespace);
  // No answer in time, or the link dropped before the answer: unknown, not failed.
  if (reply.type === 'error' && (reply.code === 'TIMEOUT' || reply.code === 'CONNECTION_LOST')) { cancelUnanswered(id); return; }
  if (reply.type === 'error') {
    const focusHere = view.hasFocus(id);
    view.unmarkCancelSent(id);
    if (focusHere) view.focusRow(id, true);
    if (reply.code === 'AUTH_REQUIRED' || reply.code === 'FORBIDDEN') {
      view.setPermission(() => false);
      connUI.toast(`Cancel refused: ${explainCancel(reply.code)}`, 'error');
    } else {
      connUI.toast(`Cancel failed: ${reply.message ?? reply.code}`, 'error');
    }
  } else {
    connUI.toast(CANCEL_SENT);
  }
});
const CANCEL_SENT = 'Cancel requested — waiting for the producer to stop.';
const CANCEL_UNANSWERED = 'No answer to the cancel yet; the row shows whether the hub took it.';
/**
 * Cancels sent that got no answer in time (e.g. the link died under them):
 * their outcome is unknown, not failed — the hub may well have applied them
 * (a reconnect's snapshot then says so). @type {Set<string>}
 */
const unansweredCancels = new Set();
/** @param {string} id */
function cancelUnanswered(id) {
  const op = store.ops.get(id);
  // The hub's own state already says it took the cancel (or the operation ended: the row says how).
  if (op && op.cancel_requested && !isFinished(op.state)) { connUI.toast(CANCEL_SENT); return; }
  if (op?.state === 'canceled') return;
  // Not known to be taken: the row shows the hub's state, not a claim of ours.
  const focusHere = view.hasFocus(id);
  view.unmarkCancelSent(id);
  if (focusHere) view.focusRow(id, true);
  if (op && !isFinished(op.state)) unansweredCancels.add(id);
  connUI.toast(CANCEL_UNANSWERED, 'info');
}
/** Operations with an unanswered cancel changed: once the hub's state shows the cancel, say so. @param {Set<string>} dirty */
function unansweredCancelsChanged(dirty) {
  for (const id of unansweredCancels) {
    if (!dirty.has(id)) continue;
    const op = store.ops.get(id);
    if (op && !op.cancel_requested && !isFinished(op.state)) continue;
    unansweredCancels.delete(id);
    // The outcome is known now: the hub took it (a cancel the row shows as
    // ended needs no word; neither does one still not taken — the row says).
    if (op?.cancel_requested && !isFinished(op.state)) connUI.toast(CANCEL_SENT);
  }
}
/** @param {string} code */
function explainCancel(code) {
  return code === 'AUTH_REQUIRED' ? 'cancelling needs a token with the operator role.'
    : 'this token may not cancel in this namespace (needs the operator role).';
}

// ---- start ---------------------------------------------------------------------------
retryButton.addEventListener('click', () => {
  const action = bannerAction(client.status());
  if (action === 'namespace') {
    // This token may not read this namespace: choose another (Enter subscribes).
    nsInput.focus();
    nsInput.select();
    return;
  }
  if (action === 'token') {
    // The same token would be refused again: ask for another instead.
    setAuthPanel(true);
    authMsg.textContent = explainAuth(client.status().errorCode, client.status().errorMessage);
    tokenInput.focus();
    return;
  }
  client.retryNow();
});
refreshPermission();
showCurrentToken();
applyFilter();
connUI.update(client.status(), Date.now(), client.healthy());
refreshTitle();
client.start();
