import { describe, expect, it } from 'vitest';
import { ChainVerifier, chainHash, GENESIS_HASH, legacyChainHash, seal, sha256Hex } from '../../src/core/audit.ts';
import type { AuditEvent } from '../../src/core/audit.ts';

// The chain step is a stored format: `countersign audit verify` must recompute, byte for
// byte, what older scripts wrote (step 2) and what the sealer signs (step 3). This vector was computed outside the project (Python's
// hashlib: sha256(bytes(32) + bytes.fromhex(sha256(b"countersign")) + b"1")), so a change to
// the formula on either side shows up here and not as a "broken" audit log in production.
describe('audit chain step', () => {
  it('is SHA-256 over the raw previous hash, the raw digest and seq in decimal', () => {
    const digest = sha256Hex('countersign');
    expect(digest).toBe('eedfd749e2646de3fb66b471ce392177a35f36295d66514234627f7b5a28097b');
    expect(chainHash(GENESIS_HASH, 1, digest)).toBe('f8b265f532841bb308ceb628874c9cafc475271c315df42c1fcff0ad68933d2b');
  });

  it('binds the position: the same digest at another seq or after another hash chains differently', () => {
    const digest = sha256Hex('countersign');
    const at1 = chainHash(GENESIS_HASH, 1, digest);
    expect(chainHash(GENESIS_HASH, 2, digest)).not.toBe(at1);
    expect(chainHash(at1, 1, digest)).not.toBe(at1);
  });
});

describe('ChainVerifier over a log of every step', () => {
  let n = 0;
  const sealed = () => seal({ type: 'auth_failed', at: '2030-01-01T00:00:00.000Z', proposal_id: null, agent: null, actor: 'system', data: { n: ++n } });
  // Entries as each writer stores them; steps 1 and 2 chain from `prev` (what their script read from the head).
  const step3 = (seq: number): AuditEvent => ({ ...sealed(), seq, prev_hash: null, hash: null, chain: 3 });
  const older = (seq: number, prev: string, chain: 1 | 2): AuditEvent => {
    const e = sealed();
    return { ...e, seq, prev_hash: prev, hash: (chain === 2 ? chainHash : legacyChainHash)(prev, seq, e.digest), chain };
  };

  it('chains step 3 from the hash before it, whatever step that was', () => {
    const v = new ChainVerifier();
    const a = older(1, GENESIS_HASH, 1);
    const b = older(2, a.hash!, 2);
    const c = step3(3);
    const d = step3(4);
    for (const e of [a, b, c, d]) expect(v.check(e)).toBeNull();
    expect(v.head).toBe(chainHash(chainHash(b.hash!, 3, c.digest), 4, d.digest));
    // The head record's hash is not what step 3 writers keep.
    expect(v.legacyHead).toBeNull();
  });

  it('accepts a step 1/2 entry written after step 3 ones by an older replica (it chains from the last hash such a writer stored), and goes on from it', () => {
    const v = new ChainVerifier();
    const a = older(1, GENESIS_HASH, 2);
    const late = older(4, a.hash!, 2);
    const next = step3(5);
    for (const e of [a, step3(2), step3(3), late, next]) expect(v.check(e)).toBeNull();
    expect(v.legacyHead).toBeNull();
    expect(v.head).toBe(chainHash(late.hash!, 5, next.digest));
  });

  it('refuses a step 1/2 entry chained from anything else, and computed hashes that do not fit', () => {
    const v = new ChainVerifier();
    expect(v.check(step3(1))).toBeNull();
    expect(v.check(older(2, 'a'.repeat(64), 2))).toBe('prev_hash does not match the previous entry');
    const w = new ChainVerifier();
    const first = step3(1);
    expect(w.check(first)).toBeNull();
    expect(w.check({ ...step3(2), prev_hash: GENESIS_HASH })).toBe('prev_hash does not match the previous entry');
    expect(w.check({ ...step3(2), hash: 'b'.repeat(64) })).toBe('hash does not match');
    const good = step3(2);
    expect(w.check({ ...good, prev_hash: chainHash(GENESIS_HASH, 1, first.digest), hash: chainHash(chainHash(GENESIS_HASH, 1, first.digest), 2, good.digest) })).toBeNull();
  });

  it('names a gap in seq and an edited entry of step 3', () => {
    const v = new ChainVerifier();
    expect(v.check(step3(1))).toBeNull();
    expect(v.check(step3(3))).toMatch(/seq 3 where 2 was expected/);
    expect(v.check({ ...step3(2), data: { edited: true } })).toMatch(/digest/);
  });
});
