import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterAll } from 'vitest';

// A local HTTP server standing in for an executor or an agent's callback endpoint. Every
// request is recorded; a test scripts the answer per request and waits on arrivals (events,
// not sleeps).

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  raw: string;
  body: any;
  /** Answer a held request (see `respond`). */
  reply(status: number, body?: string): void;
}

export type Responder = (req: RecordedRequest, res: ServerResponse) => void | 'hold';

export interface FakeHttpServer {
  url: string;
  requests: RecordedRequest[];
  /** How to answer; 'hold' leaves the request open until `reply` (or forever). */
  respond: Responder;
  /** Resolves once `count` requests (matching `filter`) have arrived. */
  waitFor(count: number, filter?: (r: RecordedRequest) => boolean): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

export async function startFakeHttpServer(): Promise<FakeHttpServer> {
  const waiters: (() => void)[] = [];
  const open = new Set<ServerResponse>();
  const fake: FakeHttpServer = {
    url: '',
    requests: [],
    respond: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    },
    waitFor(count, filter = () => true) {
      return new Promise((resolve) => {
        const check = () => {
          const matching = fake.requests.filter(filter);
          if (matching.length < count) return false;
          resolve(matching);
          return true;
        };
        if (check()) return;
        const waiter = () => {
          if (check()) waiters.splice(waiters.indexOf(waiter), 1);
        };
        waiters.push(waiter);
      });
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = raw === '' ? null : JSON.parse(raw);
      } catch {
        body = raw;
      }
      open.add(res);
      res.on('close', () => open.delete(res));
      const recorded: RecordedRequest = {
        path: req.url ?? '/',
        headers: req.headers,
        raw,
        body,
        reply(status, text = '{"ok":true}') {
          if (res.writableEnded || res.destroyed) return;
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(text);
        },
      };
      fake.requests.push(recorded);
      fake.respond(recorded, res);
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  fake.url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  afterAll(() => fake.close());
  return fake;
}
