import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { requestTarget, sign, verifySignature } from '../../src/core/signing.ts';

const NOW = 1_795_000_000_000;
const ts = String(NOW / 1000);
const req = (body: string, method = 'POST', path = '/v1/proposals') => ({ method, path, body });

describe('agent request signing (v2)', () => {
  it('is HMAC-SHA256 over "v2:" + timestamp + ":" + METHOD + ":" + path + ":" + body, hex, with a v2= prefix', () => {
    const expected = createHmac('sha256', 's3cret').update(`v2:${ts}:POST:/v1/proposals:{"a":1}`).digest('hex');
    expect(sign('s3cret', ts, req('{"a":1}'))).toBe(`v2=${expected}`);
    expect(sign('s3cret', ts, req('{"a":1}', 'post'))).toBe(`v2=${expected}`);
  });

  it('accepts a fresh, correct signature', () => {
    expect(verifySignature('k', ts, sign('k', ts, req('body')), req('body'), NOW)).toEqual({ ok: true });
  });

  it.each([
    ['a changed body', req('body!')],
    ['another path', req('body', 'POST', '/v1/proposals/p_1/cancel')],
    ['another query', req('body', 'POST', '/v1/proposals?x=1')],
    ['another method', req('body', 'GET')],
  ])('refuses %s', (_name, sent) => {
    expect(verifySignature('k', ts, sign('k', ts, req('body')), sent, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it.each([
    ['another secret', 'other', ts, (s: string) => s, 'bad_signature'],
    ['a truncated signature', 'k', ts, (s: string) => s.slice(0, -1), 'bad_signature'],
    ['a timestamp 301 s old', 'k', String(NOW / 1000 - 301), (s: string) => s, 'stale_timestamp'],
    ['a timestamp 301 s ahead', 'k', String(NOW / 1000 + 301), (s: string) => s, 'stale_timestamp'],
    ['a non-numeric timestamp', 'k', '12abc', (s: string) => s, 'bad_timestamp'],
  ])('refuses %s', (_name, secret, timestamp, mangle, reason) => {
    const signature = mangle(sign(secret, timestamp, req('body')));
    expect(verifySignature('k', timestamp, signature, req('body'), NOW)).toEqual({ ok: false, reason });
  });

  it('refuses missing headers', () => {
    expect(verifySignature('k', undefined, 'v2=00', req('b'), NOW)).toEqual({ ok: false, reason: 'missing_headers' });
  });

  it('takes the request target from a URL, prefix and query included', () => {
    expect(requestTarget('https://gw.example/countersign/v1/audit?q=a%20b')).toBe('/countersign/v1/audit?q=a%20b');
  });
});
