import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainHash, ChainVerifier, GENESIS_HASH } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import type { Proposal, Status } from '../../src/core/proposal.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { redisScripts } from '../../adapters/redis/scripts.ts';
import { testRedis } from '../helpers/redis.ts';

const { redis, prefix, newPrefix, connect } = testRedis();

function proposal(overrides: Partial<Proposal> = {}): Proposal {
  const now = Date.now();
  return {
    id: newId('p', now),
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Refund invoice 4711 / "charged twice" — ünïcode €',
    action: {
      tool: 'payments',
      operation: 'refund',
      target: 'stripe:cus_123',
      parameters: { amount: 420.5, currency: 'EUR', lines: [{ sku: 'a/b', qty: 2 }], note: null, ok: true },
    },
    context: {
      data_sensitivity: 'confidential',
      destination: 'external',
      environment: 'production',
      reversible: false,
      value: { amount: 420.5, currency: 'EUR' },
    },
    decision: {
      effect: 'approve',
      risk: 'high',
      rule: 'payments',
      reasons: ['matched rule payments'],
      route: 'finance',
      approvers: 'finance',
      approvals_required: 1,
      ttl_ms: 900_000,
    },
    status: 'pending',
    created_at: now,
    expires_at: now + 900_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...overrides,
  };
}

function event(p: Proposal, type: AuditEventInput['type'], data: Record<string, unknown> = {}): AuditEventInput {
  return { type, at: iso(Date.now()), proposal_id: p.id, agent: p.agent, actor: `agent:${p.agent}`, data };
}

function bump(p: Proposal, changes: Partial<Proposal>): Proposal {
  return { ...p, ...changes, version: p.version + 1 };
}

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
        { proposal: keys.proposal(id), idempotency: keys.idempotency('a', ''), pending: keys.pending, statusCounts: keys.statusCounts, audit: keys.audit, auditHead: keys.auditHead },
        { id, doc: '{}', version: 1, status: 'pending', agent: 'a', pendingScore: '+inf', idempotencyTtlSeconds: 0, events: [event] },
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

  it('returns an equal proposal after create, and null for an unknown id', async () => {
    const p = proposal({ idempotency_key: 'refund-4711' });
    expect(await store.create(p, [event(p, 'proposal_received')])).toEqual({ created: true });
    expect(await store.get(p.id)).toEqual(p);
    expect(await store.get('p_doesnotexist0000000000000000')).toBeNull();
    const fields = await redis.hgetall(keys.proposal(p.id));
    expect(fields).toMatchObject({ version: '1', status: 'pending', agent: 'billing-agent' });
  });

  it('returns the first proposal for the same agent and idempotency key, and stores nothing', async () => {
    const first = proposal({ idempotency_key: 'same-key' });
    const again = proposal({ idempotency_key: 'same-key', intent: 'a retry' });
    const before = await redis.xlen(keys.audit);
    expect(await store.create(first, [event(first, 'proposal_received')])).toEqual({ created: true });
    expect(await store.create(again, [event(again, 'proposal_received')])).toEqual({ created: false, existing: first });
    expect(await store.get(again.id)).toBeNull();
    expect(await redis.xlen(keys.audit)).toBe(before + 1);
    const ttl = await redis.ttl(keys.idempotency(first.agent, 'same-key'));
    expect(ttl).toBeGreaterThan(29 * 24 * 3600);

    const otherAgent = proposal({ idempotency_key: 'same-key', agent: 'support-agent' });
    expect(await store.create(otherAgent, [])).toEqual({ created: true });
    expect(await store.get(otherAgent.id)).toEqual(otherAgent);
  });

  it('lets only one of two racing creates with one idempotency key win', async () => {
    const a = proposal({ idempotency_key: 'race' });
    const b = proposal({ idempotency_key: 'race' });
    const other = createRedisProposalStore(connect(), { prefix });
    const results = await Promise.all([store.create(a, []), other.create(b, [])]);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.find((r) => !r.created)).toMatchObject({ existing: { idempotency_key: 'race' } });
  });

  it('refuses a commit against a stale version and changes nothing', async () => {
    const p = proposal();
    await store.create(p, [event(p, 'proposal_received')]);
    const v2 = bump(p, { approvals: [{ person: 'alice', platform: 'slack', vote: 'approve', reason: null, at: Date.now() }] });
    expect(await store.commit(v2, 1, [event(p, 'approval_recorded')])).toBe('ok');

    const auditBefore = await redis.xlen(keys.audit);
    const countsBefore = await store.countByStatus();
    const stale = bump(p, { status: 'denied' });
    expect(await store.commit(stale, 1, [event(p, 'decided', { status: 'denied' })])).toBe('conflict');
    expect(await store.get(p.id)).toEqual(v2);
    expect(await redis.xlen(keys.audit)).toBe(auditBefore);
    expect(await store.countByStatus()).toEqual(countsBefore);
    expect(await redis.zscore(keys.pending, p.id)).not.toBeNull();

    const missing = proposal();
    expect(await store.commit(bump(missing, {}), 1, [])).toBe('conflict');
    expect(await store.get(missing.id)).toBeNull();
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

  it('keeps the pending set and the status counts in step with the status', async () => {
    const own = createRedisProposalStore(redis, { prefix: newPrefix() });
    const now = Date.now();
    const late = proposal({ expires_at: now + 60_000 });
    const soon = proposal({ expires_at: now + 1_000 });
    const allowed = proposal({ status: 'approved', expires_at: null });
    for (const p of [late, soon, allowed]) expect(await own.create(p, [])).toEqual({ created: true });

    const zero = (over: Partial<Record<Status, number>>) => ({
      pending: 0, approved: 0, denied: 0, expired: 0, cancelled: 0, rejected: 0, executing: 0, succeeded: 0, failed: 0, ...over,
    });
    expect(await own.countByStatus()).toEqual(zero({ pending: 2, approved: 1 }));
    expect((await own.listPending(10)).map((p) => p.id)).toEqual([soon.id, late.id]);
    expect(await own.listPending(1)).toEqual([soon]);
    expect(await own.pendingDueBy(now + 1_000, 10)).toEqual([soon.id]);
    expect(await own.pendingDueBy(now + 60_000, 1)).toEqual([soon.id]);
    expect(await own.pendingDueBy(now, 10)).toEqual([]);

    // Still pending after a vote: stays listed, counts unchanged.
    const voted = bump(soon, { approvals: [{ person: 'bob', platform: 'teams', vote: 'approve', reason: null, at: now }] });
    expect(await own.commit(voted, 1, [])).toBe('ok');
    expect(await own.countByStatus()).toEqual(zero({ pending: 2, approved: 1 }));

    const expired = bump(voted, { status: 'expired', resolution: { status: 'expired', by: null, reason: 'late', at: now } });
    expect(await own.commit(expired, 2, [])).toBe('ok');
    expect(await own.countByStatus()).toEqual(zero({ pending: 1, approved: 1, expired: 1 }));
    expect((await own.listPending(10)).map((p) => p.id)).toEqual([late.id]);

    const executing = bump(allowed, { status: 'executing' });
    expect(await own.commit(executing, 1, [])).toBe('ok');
    expect(await own.commit(bump(executing, { status: 'succeeded' }), 2, [])).toBe('ok');
    expect(await own.countByStatus()).toEqual(zero({ pending: 1, expired: 1, succeeded: 1 }));
    expect(await own.pendingDueBy(Number.MAX_SAFE_INTEGER, 10)).toEqual([late.id]);
  });

  it('refuses a commit the state machine forbids: a decided proposal never changes its decision', async () => {
    const own = createRedisProposalStore(redis, { prefix: newPrefix() });
    const p = proposal({ status: 'denied', expires_at: null });
    await own.create(p, []);
    await expect(own.commit(bump(p, { status: 'approved' }), 1, [])).rejects.toThrow(/may not go from denied to approved/);
    await expect(own.commit(bump(p, { status: 'pending' }), 1, [])).rejects.toThrow(/may not go from denied to pending/);
    expect((await own.get(p.id))?.status).toBe('denied');
    expect((await own.countByStatus()).denied).toBe(1);
  });

  it('records the events of create and commit in one verifiable chain', async () => {
    const p2 = newPrefix();
    const own = createRedisProposalStore(redis, { prefix: p2 });
    const p = proposal();
    await own.create(p, [event(p, 'proposal_received', { url: 'https://x/y', text: 'ß' }), event(p, 'policy_decided')]);
    await own.commit(bump(p, { status: 'cancelled' }), 1, [event(p, 'cancelled', { reason: null })]);
    const verifier = new ChainVerifier();
    const seen: string[] = [];
    for await (const e of createRedisAuditLog(redis, { prefix: p2 }).scan()) {
      expect(verifier.check(e)).toBeNull();
      seen.push(e.type);
    }
    expect(seen).toEqual(['proposal_received', 'policy_decided', 'cancelled']);
    expect(await redis.hget(redisKeys(p2).auditHead, 'hash')).toBe(verifier.head);
  });
});
