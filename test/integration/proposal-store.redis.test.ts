import { describe, expect, it } from 'vitest';
import { eventDigest } from '../../src/core/audit.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { redisScripts } from '../../adapters/redis/scripts.ts';
import { bump, event, proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// What is about Redis itself: the scripts refusing bad input before writing, what the stream
// and hashes hold, key TTLs, races across connections (keys of the wrong type:
// audit-write-preconditions.redis.test.ts). What any
// ProposalStore must do is test/contracts/proposal-store.contract.ts (run by proposal-store.contract.redis.test.ts).
const { redis, prefix, newPrefix, connect } = testRedis();

describe('the create script', () => {
  const scripts = redisScripts(redis);

  it('refuses a malformed event before the script writes anything', async () => {
    const keys = redisKeys(prefix);
    const id = newId('p', Date.now());
    const event = { type: 'proposal_received' as const, at: iso(Date.now()), proposal_id: id, agent: 'a', actor: 'agent:a', data: {}, digest: 'not-a-digest' };
    const headBefore = await redis.hget(keys.auditHead, 'seq');
    await expect(
      scripts.createProposal(
        { proposal: keys.proposal(id), idempotency: keys.idempotency('a', ''), pending: keys.pending, statusCounts: keys.statusCounts, audit: keys.audit, auditHead: keys.auditHead, revokedAgent: keys.revokedAgent('a'), restoredAgent: keys.restoredAgent('a'), cardOutbox: keys.cardOutbox,
          agentPending: keys.limitPending('a', null), agentRulePending: keys.limitPending('a', 'r'), agentRate: keys.limitRate('a', null), agentRuleRate: keys.limitRate('a', 'r'), aggregate: keys.aggregate('g'), aggregateVersion: keys.aggregateVersion('g'), escalations: keys.escalations },
        { id, doc: '{}', version: 1, status: 'pending', agent: 'a', pendingScore: '+inf', idempotencyTtlSeconds: 0, proposedAt: Date.now(), now: Date.now(), limits: { perMinute: 0, pending: 0, rulePerMinute: 0, rulePending: 0 }, aggregate: null, nudgeScore: '', events: [event] },
      ),
    ).rejects.toThrow(/digest must be 64 hex digits/);
    expect(await redis.exists(keys.proposal(id))).toBe(0);
    expect(await redis.zscore(keys.pending, id)).toBeNull();
    expect(await redis.hget(keys.auditHead, 'seq')).toBe(headBefore);
  });

  it('puts a new pending proposal in the card outbox in the same step, and nothing else there; a wrong-typed outbox refuses before any write', async () => {
    const own = newPrefix();
    const keys = redisKeys(own);
    const store = createRedisProposalStore(redis, { prefix: own });
    const pending = proposal();
    await store.create(pending, [event(pending, 'proposal_received')]);
    const denied = { ...proposal(), status: 'rejected' as const, expires_at: null };
    await store.create(denied, [event(denied, 'proposal_received')]);
    const entries = (await redis.xrange(keys.cardOutbox, '-', '+')) as [string, string[]][];
    expect(entries.map(([, f]) => f)).toEqual([['p', pending.id]]);

    await redis.del(keys.cardOutbox);
    await redis.set(keys.cardOutbox, 'not a stream');
    const next = proposal();
    const seqBefore = await redis.hget(keys.auditHead, 'seq');
    await expect(store.create(next, [event(next, 'proposal_received')])).rejects.toThrow(/card outbox holds a string, not a stream/);
    expect(await redis.exists(keys.proposal(next.id))).toBe(0);
    expect(await redis.zscore(keys.pending, next.id)).toBeNull();
    expect(await redis.hget(keys.auditHead, 'seq')).toBe(seqBefore);
    // A proposal that needs no card does not touch the outbox: the same broken key does not refuse it.
    const allowed = { ...proposal(), status: 'approved' as const, expires_at: null };
    await expect(store.create(allowed, [event(allowed, 'proposal_received')])).resolves.toEqual({ created: true });
  });

  it("refuses before any write when an agent's limit set or an aggregate group key holds the wrong type; commit too", async () => {
    const own = newPrefix();
    const keys = redisKeys(own);
    const store = createRedisProposalStore(redis, { prefix: own });
    const limits = { per_minute: 10, pending: 10, rule_per_minute: 0, rule_pending: 0, rule: 'payments' };
    const p = proposal();
    await redis.set(keys.limitRate(p.agent, null), 'not a zset');
    const seqBefore = await redis.hget(keys.auditHead, 'seq');
    await expect(store.create(p, [event(p, 'proposal_received')], undefined, undefined, { limits })).rejects.toThrow(/proposals this minute holds a string, not a zset/);
    expect(await redis.exists(keys.proposal(p.id))).toBe(0);
    expect(await redis.zscore(keys.pending, p.id)).toBeNull();
    expect(await redis.hget(keys.auditHead, 'seq')).toBe(seqBefore);
    await redis.del(keys.limitRate(p.agent, null));

    await redis.hset(keys.aggregateVersion('g'), 'x', '1');
    await expect(store.create(p, [], undefined, undefined, { aggregate: { group: 'g', version: '0', amount: 1, window_ms: 1000 } })).rejects.toThrow(/version holds a hash, not a string/);
    expect(await redis.exists(keys.proposal(p.id))).toBe(0);
    await redis.del(keys.aggregateVersion('g'));

    expect(await store.create(p, [], undefined, undefined, { limits })).toEqual({ created: true });
    expect(await redis.zscore(keys.limitPending(p.agent, null), p.id)).toBe(String(p.expires_at));
    await redis.del(keys.limitPending(p.agent, null));
    await redis.set(keys.limitPending(p.agent, null), 'x');
    await expect(store.commit(bump(p, { status: 'cancelled' }), 1, [])).rejects.toThrow(/pending set holds a string, not a zset/);
    expect((await store.get(p.id))?.status).toBe('pending');
  });

  it('appends each event with its digest and seq, and no hash (chain step 3: computed in Node)', async () => {
    const own = newPrefix();
    const keys = redisKeys(own);
    const store = createRedisProposalStore(redis, { prefix: own });
    const p = proposal();
    const received = event(p, 'proposal_received', { intent: 'Refund / "twice" — €' });
    await store.create(p, [received, event(p, 'policy_decided')]);
    const entries = (await redis.xrange(keys.audit, '-', '+')) as [string, string[]][];
    expect(entries.map(([, f]) => f.filter((_, i) => i % 2 === 0))).toEqual([
      ['seq', 'at', 'type', 'proposal_id', 'agent', 'actor', 'data', 'digest', 'chain'],
      ['seq', 'at', 'type', 'proposal_id', 'agent', 'actor', 'data', 'digest', 'chain'],
    ]);
    const first = entries[0]![1];
    const field = (name: string) => first[first.indexOf(name) + 1];
    expect([field('seq'), field('chain'), field('digest')]).toEqual(['1', '3', eventDigest(received)]);
    // The head counts seq; its hash, which the older in-script chain kept, is not written, nor
    // is the search index (the indexer writes it after the commit).
    expect(await redis.hgetall(keys.auditHead)).toEqual({ seq: '2' });
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
