import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuditSigner, developmentAuditKey, readDevelopmentAuditKey } from '../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { GENESIS_HASH } from '../../src/core/audit.ts';
import type { CheckpointBody } from '../../src/core/audit-checkpoint.ts';
import { ConfigError } from '../../src/core/errors.ts';

// AUDIT_SIGNING_KEY: the formats and rotation rules of TOKEN_SIGNING_KEY, Ed25519 only; errors
// name the variable and never the key; the development key lives in the data directory.

const body: Omit<CheckpointBody, 'kid'> = { v: 1, log: 'countersign', kind: 'seal', seq: 42, hash: 'a'.repeat(64), at: '2030-01-01T00:00:00.000Z' };

describe('the audit signer', () => {
  it('signs checkpoints with the first key (kid: its own, else the thumbprint); any edit fails to verify', async () => {
    const signer = await createAuditSigner(await generateSigningKey());
    const c = await signer.sign(body);
    expect(c).toMatchObject({ ...body, kid: signer.kid });
    expect(c.sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(await signer.verify(c)).toBe(true);
    for (const edit of [{ seq: 43 }, { hash: GENESIS_HASH }, { at: '2030-01-01T00:00:01.000Z' }, { log: 'other' }, { kind: 'heartbeat' as const }, { kid: 'other' }, { sig: c.sig.replace(/^./, c.sig[0] === 'A' ? 'B' : 'A') }]) {
      expect(await signer.verify({ ...c, ...edit })).toBe(false);
    }
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const fromPem = await createAuditSigner(pem);
    expect(fromPem.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await fromPem.verify(await fromPem.sign(body))).toBe(true);
    expect(await fromPem.verify(c)).toBe(false);
  });

  it('rotation: a JWK set signs with its first key and still verifies checkpoints of the others; only public parts are published', async () => {
    const old = JSON.parse(await generateSigningKey()) as Record<string, string>;
    const current = JSON.parse(await generateSigningKey()) as Record<string, string>;
    const before = await createAuditSigner(JSON.stringify(old));
    const signedBefore = await before.sign(body);
    const { d: _d, ...oldPublic } = old;
    const after = await createAuditSigner(JSON.stringify({ keys: [current, oldPublic] }));
    expect(after.kid).toBe(current['kid']);
    expect(await after.verify(signedBefore)).toBe(true);
    expect((await after.sign(body)).kid).toBe(current['kid']);
    const published = after.publicJwks().keys;
    expect(published.map((k) => k['kid'])).toEqual([current['kid'], old['kid']]);
    for (const k of published) expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(JSON.stringify(published)).not.toContain(current['d']!);
  });

  it.each([
    ['not a key', 'is neither|must be an Ed25519'],
    ['{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}', 'not an Ed25519'],
    [generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'must be a private key'],
  ])('refuses %s naming AUDIT_SIGNING_KEY, never the value', async (text, why) => {
    const err = await createAuditSigner(text).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^AUDIT_SIGNING_KEY: /);
    expect((err as Error).message).toMatch(new RegExp(why));
    expect((err as Error).message).not.toContain(text.slice(0, 40));
  });

  it('the development key: generated once into the data directory, owner-only, and read back after', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'countersign-audit-key-')), 'nested');
    expect(readDevelopmentAuditKey(dir)).toBeNull();
    const first = await developmentAuditKey(dir);
    expect(readDevelopmentAuditKey(dir)).toBe(first.text);
    expect(first.created).toBe(true);
    expect(first.path).toBe(join(dir, 'audit-signing-key'));
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    const again = await developmentAuditKey(dir);
    expect(again).toEqual({ ...first, created: false });
    expect(readFileSync(first.path, 'utf8').trim()).toBe(first.text);
    expect((await createAuditSigner(again.text)).kid).toBe((await createAuditSigner(first.text)).kid);
  });
});
