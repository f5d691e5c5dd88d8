import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { AppDeps } from '../../src/app/deps.ts';
import { CountersignError } from '../../src/core/errors.ts';
import type { RequestAuthenticator } from './authenticate.ts';
import { mountAgentApi, type AgentApiOptions } from './agent-api.ts';
import { Router, sendError, sendJson } from './router.ts';

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

export function createHttpServer(options: HttpServerOptions): Server {
  const { deps } = options;
  const router = new Router();
  router.on('GET', '/healthz', (ctx) => sendJson(ctx.res, 200, { ok: true }));
  router.on('GET', '/readyz', async (ctx) => {
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

  const scope = options.requestScope ?? ((fn) => fn());
  const server = createServer((req, res) => void scope(() => handle(req, res)));
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
  return server;
}
