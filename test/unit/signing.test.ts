import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verifySignature } from '../../src/core/signing.ts';

const NOW = 1_795_000_000_000;
const ts = String(NOW / 1000);

describe('agent request signing', () => {
  it('is HMAC-SHA256 over "v1:" + timestamp + ":" + body, hex, with a v1= prefix', () => {
    const expected = createHmac('sha256', 's3cret').update(`v1:${ts}:{"a":1}`).digest('hex');
    expect(sign('s3cret', ts, '{"a":1}')).toBe(`v1=${expected}`);
  });

  it('accepts a fresh, correct signature', () => {
    expect(verifySignature('k', ts, sign('k', ts, 'body'), 'body', NOW)).toEqual({ ok: true });
  });

  it.each([
    ['a changed body', 'k', ts, (s: string) => s, 'body!', 'bad_signature'],
    ['another secret', 'other', ts, (s: string) => s, 'body', 'bad_signature'],
    ['a truncated signature', 'k', ts, (s: string) => s.slice(0, -1), 'body', 'bad_signature'],
    ['a timestamp 301 s old', 'k', String(NOW / 1000 - 301), (s: string) => s, 'body', 'stale_timestamp'],
    ['a timestamp 301 s ahead', 'k', String(NOW / 1000 + 301), (s: string) => s, 'body', 'stale_timestamp'],
    ['a non-numeric timestamp', 'k', '12abc', (s: string) => s, 'body', 'bad_timestamp'],
  ])('refuses %s', (_name, secret, timestamp, mangle, body, reason) => {
    const signature = mangle(sign(secret, timestamp, 'body'));
    expect(verifySignature('k', timestamp, signature, body, NOW)).toEqual({ ok: false, reason });
  });

  it('refuses missing headers', () => {
    expect(verifySignature('k', undefined, 'v1=00', 'b', NOW)).toEqual({ ok: false, reason: 'missing_headers' });
  });
});
