import { describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH, sha256Hex } from '../../src/core/audit.ts';

// The chain step is a stored format: `countersign audit verify` must recompute, byte for
// byte, what the Lua script wrote. This vector was computed outside the project (Python's
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
