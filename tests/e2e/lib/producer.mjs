// A producer speaking protocol v1 over WebSocket (the `ws` package; node 20
// has no global WebSocket). Keeps per-operation seq, resolves on acks.
import WebSocket from 'ws';

export class Producer {
  /** @param {string} addr host:port @param {{token?: string, namespace?: string}} [opts] */
  static async connect(addr, opts = {}) {
    const p = new Producer(addr, opts);
    await p.open();
    return p;
  }

  constructor(addr, { token, namespace = 'default' } = {}) {
    this.addr = addr;
    this.token = token;
    this.namespace = namespace;
    this.seq = new Map();
    this.nextId = 1;
    this.waiting = new Map();
    this.cancels = [];
    this.cancelWaiters = [];
    this.errors = [];
    this.sent = 0;
    this.acked = 0;
    this.ackedSeq = new Map();
  }

  open() {
    const url = `ws://${this.addr}/ws${this.token ? `?token=${encodeURIComponent(this.token)}` : ''}`;
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => {
      for (const line of String(data).split('\n')) {
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.type === 'cancel_requested') {
          this.cancels.push(msg);
          this.cancelWaiters.splice(0).forEach((w) => w(msg));
        }
        if (msg.type === 'ack') {
          // Acks are cumulative per operation: acking seq N acks all below it.
          const prev = this.ackedSeq.get(msg.operation_id) ?? 0;
          if (msg.seq > prev) { this.acked += msg.seq - prev; this.ackedSeq.set(msg.operation_id, msg.seq); }
        }
        if (msg.type === 'error') this.errors.push(msg);
        if (msg.id !== undefined && this.waiting.has(msg.id)) {
          const w = this.waiting.get(msg.id);
          this.waiting.delete(msg.id);
          w(msg);
        }
      }
    });
    this.closed = null;
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: String(reason) }; });
    return new Promise((res, rej) => { this.ws.once('open', res); this.ws.once('error', rej); });
  }

  /** Send without waiting for the ack (for load). */
  sendNoWait(type, operationId, fields = {}) {
    const seq = (this.seq.get(operationId) ?? 0) + 1;
    this.seq.set(operationId, seq);
    this.sent += 1;
    this.ws.send(JSON.stringify({ type, operation_id: operationId, namespace: this.namespace, seq, ...fields }));
  }

  /** Messages sent but not acked yet. */
  outstanding() { return this.sent - this.acked - this.errors.length; }

  /** Send and wait for the reply (ack or error). */
  send(type, operationId, fields = {}) {
    const seq = (this.seq.get(operationId) ?? 0) + 1;
    this.seq.set(operationId, seq);
    const id = this.nextId++;
    this.sent += 1;
    const reply = new Promise((res) => this.waiting.set(id, res));
    this.ws.send(JSON.stringify({ type, id, operation_id: operationId, namespace: this.namespace, seq, ...fields }));
    return reply.then((r) => {
      if (r.type === 'error') throw new Error(`${type} ${operationId}: ${r.code} ${r.message}`);
      return r;
    });
  }

  start(id, name, extra = {}) { return this.send('operation_started', id, { name, ...extra }); }
  progress(id, fields) { return this.send('progress_update', id, fields); }
  complete(id, fields = {}) { return this.send('operation_completed', id, fields); }
  fail(id, error) { return this.send('operation_failed', id, { error }); }
  canceled(id, reason) { return this.send('operation_canceled', id, reason ? { reason } : {}); }

  /** Resolves with the next `cancel_requested` (or one already received). */
  nextCancel(timeoutMs = 10000) {
    if (this.cancels.length) return Promise.resolve(this.cancels.shift());
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no cancel_requested arrived')), timeoutMs);
      this.cancelWaiters.push((m) => { clearTimeout(t); this.cancels.shift(); res(m); });
    });
  }

  close() { try { this.ws.close(); } catch { /* ignore */ } }
}
