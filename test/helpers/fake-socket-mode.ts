import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

// A local stand-in for Slack's Socket Mode endpoint: the `url` the fake Web API's
// apps.connections.open hands out (fake-slack.ts, socketMode()) is a ws://127.0.0.1 address
// of this server. Each connection is greeted with `hello`, as Slack does; the test sends
// Slack's envelopes (interactive, slash_commands, disconnect) down the newest connection and
// reads the acks that come back ({ envelope_id, payload }). The WebSocket framing (RFC 6455:
// text, close, ping/pong, unfragmented) is done here on node:http's upgrade, so the fake needs
// no package: the `ws` package is only in the tree through botbuilder, without types.

export interface Ack {
  envelope_id: string;
  payload?: Record<string, unknown>;
}

export interface Envelope {
  type: 'interactive' | 'slash_commands' | 'events_api';
  payload: Record<string, unknown>;
  envelope_id?: string;
  accepts_response_payload?: boolean;
}

export interface FakeSocketMode {
  /** A fresh ws:// URL, as apps.connections.open returns (one ticket per call). */
  url(): string;
  /** Connections opened so far (a reconnect adds one). */
  opened(): number;
  /** Connections open now. */
  open(): number;
  /** Every ack received, in order. */
  acks: Ack[];
  /** Sends the envelope on the newest open connection; resolves with its ack (rejects after `timeoutMs`). */
  send(envelope: Envelope, timeoutMs?: number): Promise<Ack>;
  /** Slack's `disconnect` message on the newest connection (the client must reconnect). */
  disconnect(reason?: 'refresh_requested' | 'warning' | 'link_disabled'): void;
  /** Resolves once `n` connections have been opened and one is open. */
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TEXT = 0x1;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

function frame(opcode: number, data: Buffer): Buffer {
  const len = data.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, data]);
}

class Connection {
  private buffered = Buffer.alloc(0);
  private closing = false;
  closed = false;

  constructor(
    private readonly socket: Duplex,
    private readonly onText: (text: string) => void,
    private readonly onClose: () => void,
  ) {
    socket.on('data', (d: Buffer) => this.read(d));
    socket.on('close', () => this.end());
    socket.on('error', () => this.end());
  }

  sendText(text: string): void {
    if (!this.closed) this.socket.write(frame(TEXT, Buffer.from(text, 'utf8')));
  }

  /** Starts the close handshake; the socket is destroyed when the client answers it. */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    this.socket.write(frame(CLOSE, code));
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose();
  }

  private read(data: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, data]);
    for (;;) {
      const b = this.buffered;
      if (b.length < 2) return;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      let len = b[1]! & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const maskLength = masked ? 4 : 0;
      if (b.length < offset + maskLength + len) return;
      const mask = b.subarray(offset, offset + maskLength);
      const body = Buffer.from(b.subarray(offset + maskLength, offset + maskLength + len));
      if (masked) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i % 4]!;
      this.buffered = b.subarray(offset + maskLength + len);
      if (opcode === TEXT) this.onText(body.toString('utf8'));
      else if (opcode === PING) this.socket.write(frame(PONG, body));
      else if (opcode === CLOSE) {
        if (!this.closing) this.socket.write(frame(CLOSE, body.subarray(0, 2)));
        this.end();
        return;
      }
    }
  }
}

export async function startFakeSocketMode(): Promise<FakeSocketMode> {
  const connections: Connection[] = [];
  const acks: Ack[] = [];
  const waiting = new Map<string, (ack: Ack) => void>();
  const changed = new Set<() => void>();
  let tickets = 0;
  const notify = () => [...changed].forEach((f) => f());

  const server: Server = createServer((_req, res) => {
    res.writeHead(426);
    res.end();
  });
  server.on('upgrade', (req, socket: Duplex) => {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || !(req.url ?? '').startsWith('/link/')) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const conn = new Connection(
      socket,
      (text) => {
        const ack = JSON.parse(text) as Ack;
        acks.push(ack);
        waiting.get(ack.envelope_id)?.(ack);
      },
      notify,
    );
    connections.push(conn);
    conn.sendText(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake-socket-mode', approximate_connection_time: 18060 }, connection_info: { app_id: 'A0TEST' } }));
    notify();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const newest = () => [...connections].reverse().find((c) => !c.closed);

  return {
    url: () => `ws://127.0.0.1:${port}/link/?ticket=${++tickets}&app_id=A0TEST`,
    opened: () => connections.length,
    open: () => connections.filter((c) => !c.closed).length,
    acks,
    send(envelope, timeoutMs = 5000) {
      const conn = newest();
      if (conn === undefined) return Promise.reject(new Error('no open Socket Mode connection'));
      const id = envelope.envelope_id ?? randomUUID();
      return new Promise<Ack>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`no ack for envelope ${id} (${envelope.type})`));
        }, timeoutMs);
        waiting.set(id, (ack) => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(ack);
        });
        conn.sendText(JSON.stringify({ accepts_response_payload: false, ...envelope, envelope_id: id }));
      });
    },
    disconnect(reason = 'refresh_requested') {
      newest()?.sendText(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'fake-socket-mode' } }));
    },
    waitForConnections(n, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (connections.length >= n && newest() !== undefined) {
            changed.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          changed.delete(check);
          reject(new Error(`timed out waiting for ${n} Socket Mode connections (${connections.length} opened)`));
        }, timeoutMs);
        changed.add(check);
        check();
      });
    },
    async close() {
      for (const c of connections) c.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
