// A real hub child process for a test: started on 127.0.0.1:0, ready when it
// prints `listening on HOST:PORT` (no sleeps), stopped by its own PID only.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const here = new URL('.', import.meta.url).pathname;

/** The hub binary: $PROGRESS_HUB_BIN, else $CARGO_TARGET_DIR/debug/progress-hub. */
export function hubBinary() {
  if (process.env.PROGRESS_HUB_BIN) return process.env.PROGRESS_HUB_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(process.env.HOME ?? '', '.cache/progress-hub/target');
  return resolve(here, '../../..', target, 'debug/progress-hub');
}

/** A fresh temporary directory, removed by `cleanup`. */
export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

export class Hub {
  /**
   * @param {string[]} args extra `serve` flags (e.g. ['--memory'])
   * @param {{listen?: string}} [opts] listen address (default 127.0.0.1:0)
   */
  static async start(args, opts = {}) {
    const hub = new Hub(args, opts.listen ?? '127.0.0.1:0');
    await hub.spawn();
    return hub;
  }

  constructor(args, listen) {
    this.args = args;
    this.listen = listen;
    this.child = null;
    this.addr = null;
    this.log = '';
  }

  async spawn() {
    const child = spawn(hubBinary(), ['serve', '--listen', this.listen, ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    });
    this.child = child;
    let out = '';
    const ready = new Promise((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub did not print "listening on" within 20 s:\n${this.log}`)), 20000);
      child.stdout.on('data', (chunk) => {
        out += chunk;
        this.log += chunk;
        const m = /listening on (\S+:\d+)/.exec(out);
        if (m) { clearTimeout(timer); resolveReady(m[1]); }
      });
      child.stderr.on('data', (chunk) => { this.log += chunk; });
      child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`hub exited (${code ?? sig}) before listening:\n${this.log}`)); });
    });
    this.addr = await ready;
    this.url = `http://${this.addr}`;
    return this.addr;
  }

  /** Send a signal to this hub's own PID. */
  signal(sig) {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** SIGKILL and wait for the exit. */
  async kill() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Start again with the same flags on the same address (for restarts). */
  async restart() {
    await this.kill();
    this.listen = this.addr;
    return this.spawn();
  }

  async stop() {
    if (!this.child) return;
    if (this.child.signalCode === null && this.child.exitCode === null) {
      this.child.kill('SIGCONT');
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  }

  /** GET a JSON path of the HTTP API. */
  async get(path, token) {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const r = await fetch(`${this.url}${path}`, { headers });
    return { status: r.status, body: await r.json().catch(() => null) };
  }
}

export function cleanup(dir) {
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
}
