import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, CountersignError, PayloadTooLargeError, RateLimitedError, ValidationError } from '../../src/core/errors.ts';

// A deliberately small router: a method, a path pattern with `:params`, a handler.

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Reads the raw body once (bounded); handlers that sign-check need the exact bytes. */
  body(): Promise<Buffer>;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

export const MAX_BODY_BYTES = 64 * 1024;

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) {
      // Answered with `connection: close` (sendError): the upload is not drained.
      reject(new PayloadTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(new PayloadTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** Seconds a client should wait before trying again, by error code (each is a 503). */
const RETRY_AFTER: Partial<Record<CountersignError['code'], string>> = { unavailable: '2', store_full: '30' };

export function sendError(res: ServerResponse, error: CountersignError): void {
  const body: Record<string, unknown> = { error: error.code, message: error.message };
  if (error instanceof ValidationError) body['issues'] = error.issues;
  if (error instanceof AuthError) body['code'] = error.publicCode;
  const headers: Record<string, string> = {};
  // After a 413 the rest of the upload is not read: the connection cannot be reused.
  if (error instanceof PayloadTooLargeError) headers['connection'] = 'close';
  const retryAfter = error instanceof RateLimitedError ? String(error.retryAfterSeconds) : RETRY_AFTER[error.code];
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  if (error instanceof RateLimitedError) Object.assign(body, { limit: error.limit, retry_after_seconds: error.retryAfterSeconds });
  sendJson(res, error.status, body, headers);
}

export class Router {
  private readonly routes: Route[] = [];

  on(method: string, path: string, handler: Handler): this {
    const keys: string[] = [];
    const source = path.replace(/:([a-z_]+)/g, (_m, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  /** Returns false when no route matches the path (so the caller can 404), or the method is wrong (405 sent). */
  async dispatch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(url.pathname);
      if (m === null) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const params: Record<string, string> = {};
      try {
        route.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1]!)));
      } catch {
        throw new ValidationError('the path has a malformed %-escape', [{ path: '(path)', code: 'invalid_escape', message: 'malformed %-escape' }]);
      }
      let cached: Promise<Buffer> | undefined;
      await route.handler({ req, res, params, query: url.searchParams, body: () => (cached ??= readBody(req)) });
      return true;
    }
    if (pathMatched) {
      sendJson(res, 405, { error: 'method_not_allowed', message: `${req.method ?? ''} is not allowed on ${url.pathname}` });
      return true;
    }
    return false;
  }
}
