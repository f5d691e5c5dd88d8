import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH } from '../../src/core/audit.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { redisScripts } from '../../adapters/redis/scripts.ts';
import { bump, event, proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// What is about Redis itself: the Lua SHA-256 and chain step, the scripts refusing bad input
// before writing, what the hashes hold, key TTLs, races across connections. What any
// ProposalStore must do is test/contracts/proposal-store.contract.ts (run by proposal-store.contract.redis.test.ts).
const { redis, prefix, connect } = testRedis();

describe('Lua SHA-256', () => {
  const scripts = redisScripts(redis);
  const inputs: [string, string][] = [
    ...[0, 55, 56, 63, 64, 119, 120, 1000].map((n): [string, string] => [`${n} bytes`, 'abcdefghij'.repeat(100).slice(0, n)]),
    ['non-ASCII (UTF-8 bytes)', 'ünïcödé € 𝄞 日本語 — '.repeat(5)],
    ['bytes 0x00 and 0xff', 'a\u0000b\u00ffc'],
  ];
  it.each(inputs)('matches node:crypto for %s', async (_label, text) => {
    expect(await scripts.sha256(text)).toBe(createHash('sha256').update(text).digest('hex'));
  });

  // The chain step reads its two hashes straight from hex into words and pads by hand: compare
  // it with core/audit.ts on random hashes (all-zero genesis, high bits set) and every seq length.
  it('computes the same audit chain step as core/audit.ts', async () => {
    const hashes = [GENESIS_HASH, 'f'.repeat(64), ...Array.from({ length: 6 }, () => randomBytes(32).toString('hex'))];
    const seqs = [1, 9, 10, 12345, 2 ** 31 + 7, Number.MAX_SAFE_INTEGER];
    for (const [i, prev] of hashes.entries()) {
      const digest = hashes[(i + 3) % hashes.length]!;
      for (const seq of seqs) expect(await scripts.chainHash(prev, seq, digest)).toBe(chainHash(prev, seq, digest));
    }
  });

  it('refuses a malformed event before the script writes anything', async () => {
    const keys = redisKeys(prefix);
    const id = newId('p', Date.now());
    const event = { type: 'proposal_received' as const, at: iso(Date.now()), proposal_id: id, agent: 'a', actor: 'agent:a', data: {}, digest: 'not-a-digest' };
    const headBefore = await redis.hget(keys.auditHead, 'seq');
    await expect(
      scripts.createProposal(
        { proposal: keys.proposal(id), idempotency: keys.idempotency('a', ''), pending: keys.pending, statusCounts: keys.statusCounts, audit: keys.audit, auditHead: keys.auditHead, revokedAgent: keys.revokedAgent('a'), restoredAgent: keys.restoredAgent('a') },
        { id, doc: '{}', version: 1, status: 'pending', agent: 'a', pendingScore: '+inf', idempotencyTtlSeconds: 0, proposedAt: Date.now(), events: [event] },
      ),
    ).rejects.toThrow(/digest must be 64 hex digits/);
    expect(await redis.exists(keys.proposal(id))).toBe(0);
    expect(await redis.zscore(keys.pending, id)).toBeNull();
    expect(await redis.hget(keys.auditHead, 'seq')).toBe(headBefore);
  });

  it('refuses a chain step on a malformed hash instead of chaining garbage', async () => {
    await expect(scripts.chainHash('abc', 1, GENESIS_HASH)).rejects.toThrow(/chain_hash needs two 64-digit hex hashes/);
    // Right length, but what Lua's tonumber(s, 16) would read and node:crypto would not.
    await expect(scripts.chainHash(`0x${'f'.repeat(62)}`, 1, GENESIS_HASH)).rejects.toThrow(/chain_hash needs/);
    await expect(scripts.chainHash(GENESIS_HASH, 1, ` ${'1'.repeat(63)}`)).rejects.toThrow(/chain_hash needs/);
  });
});

describe('RedisProposalStore', () => {
  const store = createRedisProposalStore(redis, { prefix });
  const keys = redisKeys(prefix);

  // What the proposal store keeps in Redis beside the doc, for the Lua scripts and the audit
  // search; what it must do as a ProposalStore is test/contracts/proposal-store.contract.ts.
  it('keeps version, status and agent in the proposal hash beside the doc', async () => {
    const p = proposal({ idempotency_key: 'refund-4711' });
    expect(await store.create(p, [event(p, 'proposal_received')])).toEqual({ created: true });
    const fields = await redis.hgetall(keys.proposal(p.id));
    expect(fields).toMatchObject({ version: '1', status: 'pending', agent: 'billing-agent' });
  });

  it("keeps an agent's idempotency key for 30 days", async () => {
    const first = proposal({ idempotency_key: 'same-key' });
    expect(await store.create(first, [event(first, 'proposal_received')])).toEqual({ created: true });
    const ttl = await redis.ttl(keys.idempotency(first.agent, 'same-key'));
    expect(ttl).toBeGreaterThan(29 * 24 * 3600);
  });

  it('lets only one of two racing creates with one idempotency key win', async () => {
    const a = proposal({ idempotency_key: 'race' });
    const b = proposal({ idempotency_key: 'race' });
    const other = createRedisProposalStore(connect(), { prefix });
    const results = await Promise.all([store.create(a, []), other.create(b, [])]);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.find((r) => !r.created)).toMatchObject({ existing: { idempotency_key: 'race' } });
  });

  it('lets exactly one of 50 concurrent commits from the same version win', async () => {
    const p = proposal();
    await store.create(p, []);
    const stores = Array.from({ length: 5 }, () => createRedisProposalStore(connect(), { prefix }));
    const auditBefore = await redis.xlen(keys.audit);
    const attempts = Array.from({ length: 50 }, (_, i) => {
      const next = bump(p, { status: 'approved', resolution: { status: 'approved', by: `person-${i}`, reason: null, at: Date.now() } });
      return stores[i % stores.length]!.commit(next, 1, [event(p, 'decided', { by: `person-${i}` })]).then((r) => ({ r, next }));
    });
    const results = await Promise.all(attempts);
    const winners = results.filter((x) => x.r === 'ok');
    expect(winners).toHaveLength(1);
    expect(results.filter((x) => x.r === 'conflict')).toHaveLength(49);
    expect(await store.get(p.id)).toEqual(winners[0]!.next);
    expect(await redis.xlen(keys.audit)).toBe(auditBefore + 1);
  });
});
