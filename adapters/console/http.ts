import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Html } from './html.ts';

// HTTP plumbing of the console: security headers, cookies, bodies, origins.

// No inline script or style anywhere: the page loads one script and one stylesheet from
// /console/static, and nothing else may run, frame it, or be posted elsewhere.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

// `same-origin`, not `no-referrer`: under no-referrer browsers send `Origin: null` with
// form posts, which would defeat the origin check; other sites still get no referrer.
export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export const MAX_FORM_BYTES = 16 * 1024;

export function sendHtml(res: ServerResponse, status: number, body: Html, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body.text);
}

export function sendConsoleJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, 'cache-control': 'no-store', ...headers });
  res.end();
}

export function parseCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export interface CookieOptions {
  path: string;
  maxAge: number;
  secure: boolean;
}

export function cookie(name: string, value: string, o: CookieOptions): string {
  return `${name}=${value}; Path=${o.path}; Max-Age=${o.maxAge}; HttpOnly; SameSite=Strict${o.secure ? '; Secure' : ''}`;
}

export class BodyTooLarge extends Error {}

export function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? '0') > MAX_FORM_BYTES) {
      req.resume();
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

/**
 * Same-origin check for state-changing requests, next to the CSRF token: a browser names
 * the page's origin in `Origin`; without it (old browsers), `Sec-Fetch-Site` must not say
 * the request came from another site.
 */
export function sameOrigin(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== 'null') return allowed.has(origin.toLowerCase());
  if (origin === 'null') return false;
  const site = req.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** Origins people may use: PUBLIC_URL's, the address the server listens on, and its loopback aliases. */
export function allowedOrigins(urls: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const text of urls) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      continue;
    }
    out.add(u.origin.toLowerCase());
    if (['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
      for (const host of ['127.0.0.1', 'localhost', '[::1]']) out.add(`${u.protocol}//${host}${u.port === '' ? '' : `:${u.port}`}`);
    }
  }
  return out;
}

export function wantsJson(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('application/json');
}
