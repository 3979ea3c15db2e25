// @ts-check
/**
 * Tokens on the page: kept in sessionStorage (never in the URL), read — not
 * verified, the hub does that — to know which buttons to offer, and the
 * human explanation of the hub's auth error codes.
 */

import { globToRegExp } from './format.js';

const KEY = 'progress-hub.token';

/** @param {Storage|undefined} storage */
export function loadToken(storage) {
  try { return storage?.getItem(KEY) || null; } catch { return null; }
}

/** @param {Storage|undefined} storage @param {string|null} token */
export function saveToken(storage, token) {
  try {
    if (token) storage?.setItem(KEY, token);
    else storage?.removeItem(KEY);
  } catch { /* storage disabled: the token lives for this page only */ }
}

/**
 * The claims of a JWT, unverified; null when it is not a JWT.
 * @param {string} token @returns {Record<string, any>|null}
 */
export function decodeClaims(token) {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)),
      (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    const claims = JSON.parse(json);
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/**
 * Problems visible without asking the hub (shape, expiry). Null when none.
 * @param {string} token @param {number} nowMs
 */
export function checkToken(token, nowMs) {
  if (!token.trim()) return 'Paste a token first.';
  const claims = decodeClaims(token);
  if (!claims) return 'This is not a JWT (expected three dot-separated parts with a JSON payload).';
  if (typeof claims.exp === 'number' && claims.exp * 1000 < nowMs - 5000) {
    return `This token expired at ${new Date(claims.exp * 1000).toLocaleString()}.`;
  }
  return null;
}

/**
 * Whether a token may cancel in `namespace`: role operator or admin and a
 * namespace glob that matches. Without a token the hub is open (or will say
 * no): the button is offered and a refusal is explained.
 * @param {string|null} token @param {string} namespace
 */
export function mayCancel(token, namespace) {
  if (!token) return true;
  const claims = decodeClaims(token);
  if (!claims) return false;
  const roles = Array.isArray(claims.roles) ? claims.roles : ['viewer'];
  if (!roles.includes('operator') && !roles.includes('admin')) return false;
  const globs = Array.isArray(claims.namespaces) ? claims.namespaces : ['default'];
  return globs.some((g) => typeof g === 'string' && globToRegExp(g).test(namespace));
}

/**
 * A clear sentence for an auth or permission error code.
 * @param {string|null} code @param {string|null} detail the hub's own message
 */
export function explainAuth(code, detail) {
  const extra = detail ? ` (hub: ${detail})` : '';
  switch (code) {
    case 'AUTH_REQUIRED': return 'This hub requires an access token. Paste one to see live progress.';
    case 'AUTH_FAILED': return `The hub rejected this token: it is not valid for this hub (wrong signature, algorithm or claims)${extra}. Paste a different token.`;
    case 'TOKEN_EXPIRED': return `This token has expired${extra}. Get a fresh token and paste it here.`;
    case 'FORBIDDEN': return `This token may not read this namespace${extra}. Pick another namespace or use another token.`;
    default: return `Could not connect${code ? ` (${code})` : ''}${extra}.`;
  }
}
