import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { httpUrl } from '../../src/core/policy/schema.ts';
import type { ExecutorKindPolicy } from '../../src/core/policy/extensions.ts';
import { EXECUTION_TOKEN_HEADER, ExecutorUnreachableError, type CallbackSender, type Executor, type ExecutorConnection } from '../../src/core/execution-ports.ts';

// The webhook executor: POST to the URL the policy configures for the tool, with
// `Authorization: Bearer <token>`. node:http rather than fetch because the line between
// "not sent" (safe to retry) and "sent" (outcome unknown, never retried) must be exact:
// the connection is opened first, and the request is written only by `send`, after the
// caller has claimed the execution. Redirects are never followed: only the admin-configured
// URL is ever called.

/** `executors: { payments: { url: https://…, timeout: 10s } }` (kind: webhook is the default). */
export const webhookPolicy: ExecutorKindPolicy = { kind: 'webhook', keys: { url: httpUrl } };

/** Enough of the answer for a 500-character excerpt after redaction. */
const MAX_RESPONSE_BYTES = 8192;

function errorCode(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message ?? 'error';
}

function openConnection(req: ClientRequest, timeoutMs: number): ExecutorConnection {
  let earlyError: Error | null = null;
  // Always listening: an 'error' with no listener would crash the process.
  req.on('error', (e) => (earlyError ??= e));
  return {
    send(token, request) {
      const body = JSON.stringify(request);
      return new Promise((resolve) => {
        const started = performance.now();
        const elapsed = () => Math.round(performance.now() - started);
        let settled = false;
        const done = (r: Parameters<typeof resolve>[0]) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(r);
        };
        const timer = setTimeout(() => {
          done({ kind: 'timeout', duration_ms: elapsed() });
          req.destroy();
        }, timeoutMs);
        if (earlyError !== null) {
          done({ kind: 'lost', error: errorCode(earlyError), duration_ms: 0 });
          return;
        }
        req.on('error', (e) => done({ kind: 'lost', error: errorCode(e), duration_ms: elapsed() }));
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const finish = () => done({ kind: 'response', status_code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), duration_ms: elapsed() });
          res.on('data', (chunk: Buffer) => {
            if (size >= MAX_RESPONSE_BYTES) return;
            chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - size));
            size += chunk.length;
            if (size >= MAX_RESPONSE_BYTES) {
              finish();
              res.destroy();
            }
          });
          res.on('end', finish);
          res.on('error', finish);
        });
        req.setHeader('content-type', 'application/json');
        req.setHeader('content-length', String(Buffer.byteLength(body)));
        // Its own header for every kind; a webhook also gets it as the bearer token (DESIGN.md).
        req.setHeader(EXECUTION_TOKEN_HEADER, token);
        req.setHeader('authorization', `Bearer ${token}`);
        req.setHeader('user-agent', 'countersign');
        req.end(body);
      });
    },
    close() {
      req.destroy();
    },
  };
}

export function createWebhookExecutor(): Executor {
  return {
    kind: webhookPolicy.kind,
    connect(spec) {
      const timeoutMs = spec.timeout_ms;
      return new Promise((resolve, reject) => {
        const target = new URL(String(spec.settings['url']));
        const secure = target.protocol === 'https:';
        // agent: false: a fresh connection, so "connected" really means this request's socket.
        const req = (secure ? https : http).request(target, { method: 'POST', agent: false });
        const timer = setTimeout(() => req.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
        const beforeConnect = (e: Error) => {
          clearTimeout(timer);
          reject(new ExecutorUnreachableError(`cannot reach the executor for this tool (${errorCode(e)})`));
        };
        req.once('error', beforeConnect);
        req.once('socket', (socket) => {
          const ready = () => {
            clearTimeout(timer);
            req.off('error', beforeConnect);
            resolve(openConnection(req, timeoutMs));
          };
          if (secure) (socket as TLSSocket).once('secureConnect', ready);
          else socket.once('connect', ready);
        });
      });
    },
  };
}

export function createHttpCallbackSender(): CallbackSender {
  return {
    async post(url, headers, body, timeoutMs) {
      const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel().catch(() => undefined);
      return res.status;
    },
  };
}
