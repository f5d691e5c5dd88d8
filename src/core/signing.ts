import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

// Agent request signing, like Slack's but bound to the request line:
//
//   X-Countersign-Signature: v2=<hex HMAC-SHA256(secret, "v2:" + ts + ":" + METHOD + ":" + path + ":" + raw body)>
//
// DESIGN.md's v1 covered only timestamp and body, so a captured `POST …/A/cancel` with body
// `{}` also cancelled B, and a GET's signature (empty body) fitted any empty-body write.
// `path` is the request target as the server receives it: path and query, unchanged
// (a proxy in front must not rewrite it). The same scheme signs countersign's callbacks to
// agents, so one module serves both ends.

export const SIGNATURE_HEADER = 'x-countersign-signature';
export const TIMESTAMP_HEADER = 'x-countersign-timestamp';
export const AGENT_HEADER = 'x-countersign-agent';
export const MAX_SKEW_SECONDS = 300;

export interface SignedRequest {
  method: string;
  /** Path and query string, e.g. `/v1/proposals/p_…/wait?timeout=30`. */
  path: string;
  body: string | Buffer;
}

export function sign(secret: string, timestamp: number | string, req: SignedRequest): string {
  const mac = createHmac('sha256', secret);
  mac.update(`v2:${timestamp}:${req.method.toUpperCase()}:${req.path}:`);
  mac.update(req.body);
  return `v2=${mac.digest('hex')}`;
}

/** The path and query of a URL, as a server will see it in its request line. */
export function requestTarget(url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  return `${u.pathname}${u.search}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'bad_signature' };

/** Constant-time check of a signature and its timestamp window (both directions). */
export function verifySignature(
  secret: string,
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
  req: SignedRequest,
  nowMs: number,
): SignatureCheck {
  if (timestampHeader === undefined || signatureHeader === undefined) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: 'bad_timestamp' };
  if (Math.abs(nowMs / 1000 - Number(timestampHeader)) > MAX_SKEW_SECONDS) return { ok: false, reason: 'stale_timestamp' };
  const expected = Buffer.from(sign(secret, timestampHeader, req));
  const given = Buffer.from(signatureHeader);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}

/** Headers for a signed request from `agent` (or, for callbacks, countersign's to that agent). */
export function signedHeaders(agent: string, secret: string, req: SignedRequest, nowMs: number): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'content-type': 'application/json',
    [AGENT_HEADER]: agent,
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: sign(secret, timestamp, req),
  };
}

/** Constant-time equality of two secrets of any length (both hashed first, so lengths leak nothing). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
