// An "application" server for tests of the embeddable client: another port,
// so another origin than the hub. It serves an empty page and the client's
// modules from web/ (the working tree's, not the hub's embedded copy).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';

const WEB = new URL('../../../web/', import.meta.url);

/**
 * Starts the app server on 127.0.0.1:0; `close()` stops it. `token`: what
 * `GET /token` answers (the app's token endpoint for a `getToken`
 * provider), a string, or null for a 500 with an error page.
 * @param {{token?: () => string|null}} [opts]
 */
export async function appServer(opts = {}) {
  const app = { tokenCalls: 0 };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://app').pathname;
    if (path === '/token' && opts.token) {
      app.tokenCalls += 1;
      const t = opts.token();
      res.writeHead(t === null ? 500 : 200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end(t ?? 'Internal Server Error');
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>An app that embeds progress</title><p>app</p>');
      return;
    }
    const name = path.slice(1);
    if (!/^[a-z-]+\.js$/.test(name)) { res.writeHead(404); res.end(); return; }
    try {
      const body = await readFile(new URL(name, WEB));
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(body);
    } catch {
      res.writeHead(404); res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return Object.assign(app, { server, origin: `http://127.0.0.1:${port}`, close: () => server.close() });
}
