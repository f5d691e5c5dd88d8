import { createHmac, timingSafeEqual } from 'node:crypto';

// Agent request signing, like Slack's: `v1=<hex HMAC-SHA256(secret, "v1:" + ts + ":" + raw body)>`.
// The same scheme signs countersign's callbacks to agents, so one module serves both ends.

export const SIGNATURE_HEADER = 'x-countersign-signature';
export const TIMESTAMP_HEADER = 'x-countersign-timestamp';
export const AGENT_HEADER = 'x-countersign-agent';
export const MAX_SKEW_SECONDS = 300;

export function sign(secret: string, timestamp: number | string, body: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`v1:${timestamp}:`);
  mac.update(body);
  return `v1=${mac.digest('hex')}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'bad_signature' };

/** Constant-time check of a signature and its timestamp window (both directions). */
export function verifySignature(
  secret: string,
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
  body: string | Buffer,
  nowMs: number,
): SignatureCheck {
  if (timestampHeader === undefined || signatureHeader === undefined) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: 'bad_timestamp' };
  if (Math.abs(nowMs / 1000 - Number(timestampHeader)) > MAX_SKEW_SECONDS) return { ok: false, reason: 'stale_timestamp' };
  const expected = Buffer.from(sign(secret, timestampHeader, body));
  const given = Buffer.from(signatureHeader);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}

/** Headers for a signed request from `agent` (or, for callbacks, on behalf of countersign). */
export function signedHeaders(agent: string, secret: string, body: string, nowMs: number): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'content-type': 'application/json',
    [AGENT_HEADER]: agent,
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: sign(secret, timestamp, body),
  };
}
