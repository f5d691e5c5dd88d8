import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { AppDeps } from '../../src/app/deps.ts';
import { CountersignError } from '../../src/core/errors.ts';
import type { RequestAuthenticator } from './authenticate.ts';
import { mountAgentApi, type AgentApiOptions } from './agent-api.ts';
import { Router, sendError, sendJson, type RequestContext } from './router.ts';

// The one HTTP server. The agent API, health and metrics live here; chat platforms and
// the console mount their own handlers under a path prefix.

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface HttpServerOptions {
  deps: AppDeps;
  authenticate: RequestAuthenticator;
  registry: Registry;
  /** Readiness: resolves when the store answers. */
  ready: () => Promise<void>;
  /** Extra routers (execution, tokens, admin) added by other modules. */
  extend?: ((router: Router) => void)[];
  /** Poll mode's one-time token hand-over on GET /v1/proposals/:id (execution). */
  takeToken?: AgentApiOptions['takeToken'];
  returnToken?: AgentApiOptions['returnToken'];
  /** Handlers for path prefixes, e.g. `/slack/` or `/console`. */
  mounts?: Record<string, RawHandler>;
  /** Runs each request: the store's fail-fast scope, so a caller gets a 503 at once while Redis is down instead of waiting for it. */
  requestScope?: <T>(fn: () => T) => T;
}

export interface CountersignServer extends Server {
  /** Requests being answered now. */
  inFlight(): number;
  /**
   * Shutdown, first step: readiness is red from now on, the listener closes, idle kept-alive
   * connections close and a request arriving on a busy one answers 503 with `connection: close`.
   * Resolves once the requests in flight have answered, or at `until` (ms since the epoch) with
   * how many had not (their connections are closed then).
   */
  drain(until: number): Promise<number>;
}

/** What a request that arrives during the drain gets: a load balancer retries it on another replica. */
function refuse(res: ServerResponse, path: string): void {
  const body = { error: 'unavailable', message: 'countersign is shutting down; try again' };
  sendJson(res, 503, path === '/readyz' || path === '/healthz' ? { ok: false, ...body } : body, { connection: 'close', 'retry-after': '1' });
}

export function createHttpServer(options: HttpServerOptions): CountersignServer {
  const { deps } = options;
  const router = new Router();
  let stopping = false;
  router.on('GET', '/healthz', (ctx) => sendJson(ctx.res, 200, { ok: true }));
  router.on('GET', '/readyz', async (ctx) => {
    if (stopping) return refuse(ctx.res, '/readyz');
    try {
      await options.ready();
      sendJson(ctx.res, 200, { ok: true });
    } catch (e) {
      // The reason is for operators (logs), not for whoever can reach an unauthenticated probe.
      deps.logger.warn({ error: (e as Error).message }, 'readiness check failed');
      sendJson(ctx.res, 503, { ok: false, error: 'unavailable', message: 'the store does not answer' });
    }
  });
  router.on('GET', '/metrics', async (ctx) => {
    const text = await options.registry.metrics();
    ctx.res.writeHead(200, { 'content-type': options.registry.contentType });
    ctx.res.end(text);
  });
  mountAgentApi(router, { deps, authenticate: options.authenticate, takeToken: options.takeToken, returnToken: options.returnToken });
  for (const extend of options.extend ?? []) extend(router);
  const mounts = Object.entries(options.mounts ?? {});
  const consoleOn = mounts.some(([prefix]) => prefix.replace(/\/$/, '') === '/console');
  // A person who opens the server's address lands in the console; a client that asks for JSON only gets a JSON map instead.
  const home = (ctx: RequestContext) => {
    const accept = ctx.req.headers.accept ?? '';
    if (!consoleOn || (/application\/json/.test(accept) && !/text\/html/.test(accept))) {
      sendJson(ctx.res, 200, { service: 'countersign', ...(consoleOn ? { console: '/console' } : {}), proposals: '/v1/proposals', health: '/healthz', ready: '/readyz' });
      return;
    }
    ctx.res.writeHead(302, { location: '/console', 'cache-control': 'no-store', 'content-type': 'text/plain; charset=utf-8' });
    ctx.res.end('countersign: the console is at /console\n');
  };
  router.on('GET', '/', home).on('HEAD', '/', home);

  const scope = options.requestScope ?? ((fn) => fn());
  const inFlight = new Set<ServerResponse>();
  let drained: (() => void) | null = null;
  const server = createServer((req, res) => {
    if (stopping) return refuse(res, new URL(req.url ?? '/', 'http://localhost').pathname);
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      if (!stopping) return;
      if (inFlight.size === 0) drained?.();
      // Its connection is idle once the answer is out: nothing more will come on it.
      setImmediate(() => server.closeIdleConnections());
    });
    void scope(() => handle(req, res));
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (await router.dispatch(req, res, url)) return;
      const mount = mounts.find(([prefix]) => {
        const base = prefix.replace(/\/$/, '');
        return url.pathname === base || url.pathname.startsWith(`${base}/`);
      });
      if (mount !== undefined) return await mount[1](req, res);
      sendJson(res, 404, { error: 'not_found', message: `no route ${req.method ?? ''} ${url.pathname}` });
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof CountersignError) {
        sendError(res, e);
        if (e.status >= 500) deps.logger.error({ code: e.code, message: e.message, path: url.pathname }, 'request failed');
        return;
      }
      deps.logger.error({ err: e, path: url.pathname, method: req.method }, 'unhandled error');
      sendJson(res, 500, { error: 'internal', message: 'internal error' });
    }
  }
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return Object.assign(server, {
    inFlight: () => inFlight.size,
    async drain(until: number): Promise<number> {
      if (!stopping) {
        stopping = true;
        // Closes the listener and the idle kept-alive connections (Node closes those in close()).
        server.close();
      }
      if (inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((r) => {
          drained = r;
          if (until !== Infinity) timer = setTimeout(r, Math.max(0, until - Date.now()));
        });
        clearTimeout(timer);
      }
      const cut = inFlight.size;
      // What is still open either waits for an answer that will not come now (cut), or has a
      // request behind the last answer (pipelined), which gets its 503 and closes by itself.
      if (cut > 0) server.closeAllConnections();
      else server.closeIdleConnections();
      return cut;
    },
  });
}
