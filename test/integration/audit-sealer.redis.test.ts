import { createPublicKey, verify } from 'node:crypto';
import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createAuditSigner } from '../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { createAuditSealer, type AuditSealer } from '../../src/app/seal-audit.ts';
import { ChainVerifier, GENESIS_HASH, canonicalJson, chainHash, eventDigest, legacyChainHash, type AuditEvent } from '../../src/core/audit.ts';
import { checkpointBytes, type AuditSigner, type Checkpoint } from '../../src/core/audit-checkpoint.ts';
import { systemClock } from '../../src/core/clock.ts';
import { auditEvents } from '../contracts/audit-seals.contract.ts';
import { appendRawEntries, rawEntries, rewriteRawEntry } from '../helpers/audit-entries.ts';
import { createMemoryAuditSealMetrics, createMemoryWitness } from '../helpers/memory/audit-sealer-recorders.ts';
import { createMemoryLogger } from '../helpers/memory/logger.ts';
import { testRedis } from '../helpers/redis.ts';

// The sealer on real Redis (the adapter, audit-seal.lua): logs of every chain step, checkpoints
// checked the way an outsider would (the published public key, the chain recomputed from the
// stream), tampering before and after a checkpoint, and two sealers on one prefix.

const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;
let signer: AuditSigner;
beforeAll(async () => {
  signer = await createAuditSigner(await generateSigningKey());
});

function sealerOn(prefix: string, owner = 'owner-a', tuning = {}) {
  const seals = createRedisAuditSeals(redis, { prefix });
  const logger = createMemoryLogger();
  const metrics = createMemoryAuditSealMetrics();
  const witness = createMemoryWitness();
  const sealer = createAuditSealer(
    { seals, signer, clock: systemClock, logger, metrics, witness, log: prefix, owner },
    { everyEntries: 4, everyMs: 60_000, heartbeatMs: 600_000, leaseMs: 30_000, ...tuning },
  );
  return { seals, logger, metrics, witness, sealer };
}

async function sealAll(sealer: AuditSealer): Promise<string> {
  for (;;) {
    const r = await sealer.step();
    if (r !== 'more') return r;
  }
}

/** What an outsider checks: the signature with the published key, and the hash against the chain recomputed from the stream. */
function outsideCheck(c: Checkpoint, jwks: { keys: Record<string, unknown>[] }, chainAt: Map<number, string>): string | null {
  const jwk = jwks.keys.find((k) => k['kid'] === c.kid);
  if (jwk === undefined) return 'unknown kid';
  const { sig, ...body } = c;
  if (!verify(null, checkpointBytes(body), createPublicKey({ key: jwk as never, format: 'jwk' }), Buffer.from(sig, 'base64url'))) return 'bad signature';
  if ((c.seq === 0 ? GENESIS_HASH : chainAt.get(c.seq)) !== c.hash) return `hash at seq ${c.seq} does not match the log`;
  return null;
}

/** The chain recomputed from the stream's content (digest from the content, every step as chainHash/legacy as named). */
async function chainFromStream(prefix: string): Promise<Map<number, string>> {
  const at = new Map<number, string>();
  let prev = GENESIS_HASH;
  for (const { fields } of await rawEntries(redis, prefix)) {
    const f = (k: string) => fields.get(k) ?? '';
    const digest = eventDigest({ type: f('type') as never, at: f('at'), proposal_id: f('proposal_id') || null, agent: f('agent') || null, actor: f('actor'), data: JSON.parse(f('data')) });
    const seq = Number(f('seq'));
    prev = (f('chain') === '' ? legacyChainHash : chainHash)(prev, seq, digest);
    at.set(seq, prev);
  }
  return at;
}

describe('the audit sealer on Redis', () => {
  it('seals a log written by all three chain steps with the chain ChainVerifier computes, and goes on over step 3', async () => {
    const prefix = newPrefix();
    const events = auditEvents(10);
    await appendRawEntries(redis, prefix, events.slice(0, 3), 1);
    await appendRawEntries(redis, prefix, events.slice(3, 6), 2);
    await appendRawEntries(redis, prefix, events.slice(6), 3);
    const { seals, sealer, witness } = sealerOn(prefix);
    expect(await sealAll(sealer)).toBe('idle');

    // Steps 1 and 2 as `audit verify` checks them; the sealer's hashes agree at every checkpoint.
    const verifier = new ChainVerifier();
    const hashAt = new Map<number, string>();
    for (const { fields } of (await rawEntries(redis, prefix)).slice(0, 6)) {
      const f = (k: string) => fields.get(k) ?? '';
      const e: AuditEvent = {
        seq: Number(f('seq')), type: f('type') as never, at: f('at'), proposal_id: f('proposal_id'), agent: f('agent'), actor: f('actor'),
        data: JSON.parse(f('data')), digest: f('digest'), prev_hash: f('prev_hash'), hash: f('hash'), chain: f('chain') === '2' ? 2 : 1,
      };
      expect(verifier.check(e)).toBeNull();
      hashAt.set(e.seq, e.hash!);
    }
    // Step 3 continues from the last stored hash with chainHash.
    let prev = hashAt.get(6)!;
    for (const e of await seals.entriesAfter('0-0', 100)) {
      if (e.seq <= 6) continue;
      prev = chainHash(prev, e.seq, e.digest);
      hashAt.set(e.seq, prev);
    }
    const written = await seals.checkpoints(0, 100);
    expect(written.map((c) => c.seq)).toEqual([4, 8]);
    for (const c of written) expect(c.hash).toBe(hashAt.get(c.seq));
    expect(await seals.sealed()).toMatchObject({ seq: 10, hash: hashAt.get(10) });
    expect(witness.sent).toEqual(written);

    // As stored: one stream entry per checkpoint with exactly the signed fields and the signature.
    const [stored] = (await redis.xrange(redisKeys(prefix).tag + ':audit:checkpoints', '-', '+', 'COUNT', 1)) as [string, string[]][];
    expect(stored![1].filter((_, i) => i % 2 === 0)).toEqual(['v', 'log', 'kind', 'seq', 'hash', 'at', 'kid', 'sig']);
  });

  it('during an upgrade, a step-2 entry chained from the last stored hash is sealed as verify chains it, by a new leader too', async () => {
    const prefix = newPrefix();
    await appendRawEntries(redis, prefix, auditEvents(2), 2);
    await appendRawEntries(redis, prefix, auditEvents(2, 3), 3);
    await sealAll(sealerOn(prefix, 'owner-a', { everyEntries: 2 }).sealer);
    // An older replica appends from the head's hash (its last step-2 entry), then a newer one; another leader seals them.
    await appendRawEntries(redis, prefix, auditEvents(1, 5), 2);
    await appendRawEntries(redis, prefix, auditEvents(1, 6), 3);
    await redis.del(redisKeys(prefix).tag + ':audit:sealer');
    const b = sealerOn(prefix, 'owner-b', { everyEntries: 2 });
    await sealAll(b.sealer);
    expect(b.metrics.errors).toEqual([]);
    const verifier = new ChainVerifier();
    const hashAt = new Map<number, string>();
    for (const e of await b.seals.entriesAfter('0-0', 100)) {
      expect(verifier.check({ ...e.event, digest: e.digest, seq: e.seq, prev_hash: e.prevHash, hash: e.hash, chain: e.chain as 1 | 2 | 3 })).toBeNull();
      hashAt.set(e.seq, verifier.head);
    }
    const written = await b.seals.checkpoints(0, 10);
    expect(written.map((c) => c.seq)).toEqual([2, 4, 6]);
    for (const c of written) expect(c.hash).toBe(hashAt.get(c.seq));
  });

  it('checkpoints verify with the published public keys; an edited entry or checkpoint does not', async () => {
    const prefix = newPrefix();
    await appendRawEntries(redis, prefix, auditEvents(8), 3);
    const { seals, sealer } = sealerOn(prefix);
    await sealAll(sealer);
    const jwks = signer.publicJwks();
    expect(jwks.keys.every((k) => !('d' in k))).toBe(true);
    const written = await seals.checkpoints(0, 100);
    expect(written.map((c) => c.seq)).toEqual([4, 8]);
    let chain = await chainFromStream(prefix);
    for (const c of written) expect(outsideCheck(c, jwks, chain)).toBeNull();

    // A checkpoint edited (any field) no longer verifies.
    expect(outsideCheck({ ...written[1]!, seq: 7 }, jwks, chain)).toBe('bad signature');
    expect(outsideCheck({ ...written[1]!, hash: chain.get(7)! }, jwks, chain)).toBe('bad signature');
    expect(outsideCheck({ ...written[1]!, at: new Date().toISOString() }, jwks, chain)).toBe('bad signature');
    expect(outsideCheck({ ...written[1]!, log: 'another-installation' }, jwks, chain)).toBe('bad signature');

    // An entry edited (approved → denied): the chain at every later checkpoint no longer matches.
    await rewriteRawEntry(redis, prefix, 2, (f) => f.set('data', canonicalJson({ n: 2, text: 'denied' })));
    chain = await chainFromStream(prefix);
    expect(written.map((c) => outsideCheck(c, jwks, chain))).toEqual(['hash at seq 4 does not match the log', 'hash at seq 8 does not match the log']);
  });

  it('a consistent rewrite of sealed entries (digest and hashes recomputed, head too) is caught at the checkpoints', async () => {
    const prefix = newPrefix();
    await appendRawEntries(redis, prefix, auditEvents(4), 2);
    const { seals, sealer } = sealerOn(prefix);
    await sealAll(sealer);
    const [signed] = await seals.checkpoints(0, 10);
    expect(signed).toMatchObject({ seq: 4 });

    // The attacker rewrites entry 2 and every digest and hash after it, and the head, so the
    // unkeyed chain is whole again (`audit verify` before checkpoints said "ok" to this).
    const entries = await rawEntries(redis, prefix);
    await redis.del(redisKeys(prefix).audit);
    let prev = GENESIS_HASH;
    for (const { id, fields } of entries) {
      if (fields.get('seq') === '2') fields.set('data', canonicalJson({ n: 2, text: 'denied' }));
      const f = (k: string) => fields.get(k) ?? '';
      const digest = eventDigest({ type: f('type') as never, at: f('at'), proposal_id: f('proposal_id'), agent: f('agent'), actor: f('actor'), data: JSON.parse(f('data')) });
      const hash = chainHash(prev, Number(f('seq')), digest);
      fields.set('digest', digest).set('prev_hash', prev).set('hash', hash);
      prev = hash;
      await redis.xadd(redisKeys(prefix).audit, id, ...[...fields].flat());
    }
    await redis.hset(redisKeys(prefix).auditHead, 'hash', prev);
    await appendRawEntries(redis, prefix, auditEvents(4, 5), 3);
    await sealAll(sealer);
    const written = await seals.checkpoints(0, 10);
    expect(written.map((c) => c.seq)).toEqual([4, 8]);

    const chain = await chainFromStream(prefix);
    const verifier = new ChainVerifier();
    // The unkeyed chain is whole again...
    for (const { fields } of (await rawEntries(redis, prefix)).slice(0, 4)) {
      const f = (k: string) => fields.get(k) ?? '';
      expect(verifier.check({ seq: Number(f('seq')), type: f('type') as never, at: f('at'), proposal_id: f('proposal_id'), agent: f('agent'), actor: f('actor'), data: JSON.parse(f('data')), digest: f('digest'), prev_hash: f('prev_hash'), hash: f('hash'), chain: 2 })).toBeNull();
    }
    // ...but the signed checkpoints name the original chain, the one before the rewrite and the next one.
    expect(written.map((c) => outsideCheck(c, signer.publicJwks(), chain))).toEqual(['hash at seq 4 does not match the log', 'hash at seq 8 does not match the log']);

    // Moving the sealed state onto the rewritten chain too: a sealer starting from the store
    // (a new leader) sees it contradict the newest checkpoint and signs nothing.
    await redis.hset(redisKeys(prefix).tag + ':audit:sealed', 'hash', chain.get(8)!);
    await appendRawEntries(redis, prefix, auditEvents(4, 9), 3);
    const next = sealerOn(prefix);
    expect(await sealAll(next.sealer)).toBe('broken');
    expect(next.metrics.errors).toEqual(['state']);
    expect(next.logger.at('error')[0]!.msg).toMatch(/disagrees with the newest checkpoint/);
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([4, 8]);
  });

  it('stops at a step-2 entry whose stored hash was edited: an error naming the seq, a metric, nothing signed past it', async () => {
    const prefix = newPrefix();
    await appendRawEntries(redis, prefix, auditEvents(6), 2);
    await rewriteRawEntry(redis, prefix, 3, (f) => f.set('hash', 'e'.repeat(64)));
    await appendRawEntries(redis, prefix, auditEvents(3, 7), 3);
    const { seals, sealer, logger, metrics } = sealerOn(prefix, 'owner-a', { everyEntries: 100 });
    expect(await sealAll(sealer)).toBe('broken');
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([2]);
    expect(await seals.sealed()).toMatchObject({ seq: 2 });
    expect(logger.at('error').map((l) => [l.msg, (l.obj as { seq: number }).seq])).toEqual([[expect.stringContaining('audit log is broken at seq 3'), 3]]);
    expect(metrics.errors).toEqual(['chain']);
    expect(await sealer.step()).toBe('broken');
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([2]);
  });

  it('two sealers on one prefix: only one writes; a sealer whose lease was taken cannot write', async () => {
    const prefix = newPrefix();
    await appendRawEntries(redis, prefix, auditEvents(4), 3);
    const a = sealerOn(prefix, 'owner-a');
    const b = sealerOn(prefix, 'owner-b');
    const [ra, rb] = await Promise.all([sealAll(a.sealer), sealAll(b.sealer)]);
    expect([ra, rb].sort()).toEqual(['follower', 'idle']);
    const [leader, other] = ra === 'idle' ? [a, b] : [b, a];
    expect((await leader.seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([4]);
    expect(other.witness.sent).toEqual([]);

    // Someone takes the lease away (it ran out during a pause and the other took it).
    const lease = redisKeys(prefix).tag + ':audit:sealer';
    const otherOwner = other === a ? 'owner-a' : 'owner-b';
    await redis.set(lease, otherOwner, 'PX', 30_000);
    await appendRawEntries(redis, prefix, auditEvents(4, 5), 3);
    const seals = createRedisAuditSeals(redis, { prefix });
    const state = (await seals.sealed())!;
    expect(await seals.seal(otherOwner === 'owner-a' ? 'owner-b' : 'owner-a', 30_000, state.seq, { ...state, seq: 8 }, null)).toBe('fenced');
    await sealAll(other.sealer);
    expect(await leader.sealer.step()).toBe('follower');
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([4, 8]);
    expect(other.witness.sent.map((c) => c.seq)).toEqual([8]);
    expect(leader.witness.sent.map((c) => c.seq)).toEqual([4]);
  });

  it('refuses to write when a key it writes has the wrong type, before writing anything', async () => {
    const prefix = newPrefix();
    await appendRawEntries(redis, prefix, auditEvents(1), 3);
    const seals = createRedisAuditSeals(redis, { prefix });
    expect(await seals.acquireLease('a', 30_000)).toBe(true);
    const [entry] = await seals.entriesAfter('0-0', 1);
    const next = { seq: 1, hash: '1'.repeat(64), id: entry!.id, at: new Date().toISOString(), legacyHash: GENESIS_HASH };
    const checkpoint: Checkpoint = { v: 1, log: prefix, kind: 'seal', seq: 1, hash: next.hash, at: next.at, kid: 'k', sig: 's' };
    await redis.set(redisKeys(prefix).tag + ':audit:checkpoints', 'not a stream');
    await expect(seals.seal('a', 30_000, 0, next, checkpoint)).rejects.toThrow(/WRONGTYPE|wrong type/i);
    expect(await redis.exists(redisKeys(prefix).tag + ':audit:sealed')).toBe(0);
    await redis.del(redisKeys(prefix).tag + ':audit:checkpoints');
    await redis.set(redisKeys(prefix).tag + ':audit:sealed', 'not a hash');
    await expect(seals.seal('a', 30_000, 0, next, checkpoint)).rejects.toThrow(/WRONGTYPE|wrong type/i);
    expect(await redis.exists(redisKeys(prefix).tag + ':audit:checkpoints')).toBe(0);
  });

  it('a lease left by a dead sealer runs out by itself and is taken over', async () => {
    const prefix = newPrefix();
    const seals = createRedisAuditSeals(redis, { prefix });
    expect(await seals.acquireLease('dead', 150)).toBe(true);
    expect(await seals.acquireLease('alive', 150)).toBe(false);
    const pttl = await redis.pttl(redisKeys(prefix).tag + ':audit:sealer');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(150);
    // Wait for Redis to let the key go (an event: polled, bounded by the test timeout).
    while (!(await seals.acquireLease('alive', 30_000))) await new Promise((r) => setTimeout(r, 20));
    expect(await seals.renewLease('dead', 30_000)).toBe(false);
  });
});
