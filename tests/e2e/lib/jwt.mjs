// HS256 JWTs for tests, minted with node's crypto (the hub's --jwt-secret).
import { createHmac } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * @param {string} secret
 * @param {{sub?: string, roles?: string[], namespaces?: string[], expInSeconds?: number}} [claims]
 */
export function mintToken(secret, { sub = 'tester', roles = ['admin'], namespaces = ['*'], expInSeconds = 3600 } = {}) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub, roles, namespaces, exp: Math.floor(Date.now() / 1000) + expInSeconds }));
  const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}
