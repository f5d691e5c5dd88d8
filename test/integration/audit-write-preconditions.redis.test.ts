import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisAuditIndex } from '../../adapters/redis/audit-index-store.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { verifyAudit } from '../../src/app/search-audit.ts';
import { UnavailableError } from '../../src/core/errors.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { bump, event, proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// Issue 13, item 1: Redis does not roll a script back, so every script that appends audit
// events checks each key it writes (its type, and the fields it counts with) before its first
// write. A key of the wrong type stops the write with UnavailableError (503) and leaves every
// key as it was. The search index is not theirs to write (the indexer writes it after the
// commit, and leaves out a list of the wrong type), so it never stops a write.

const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;

/** Every key of the prefix, dumped: equal snapshots mean nothing was written. */
async function snapshot(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of found) out.set(key, ((await redis.dumpBuffer(key)) ?? Buffer.alloc(0)).toString('hex'));
  } while (cursor !== '0');
  return out;
}

async function subject() {
  const prefix = newPrefix();
  const store = createRedisProposalStore(redis, { prefix });
  const audit = createRedisAuditLog(redis, { prefix });
  // Something in every key first, so each has a type to break.
  const first = proposal({ idempotency_key: 'k-first' });
  await store.create(first, [event(first, 'proposal_received', { intent: 'Refund invoice 4711' }), event(first, 'policy_decided')]);
  return { prefix, keys: redisKeys(prefix), store, audit, first };
}

type Subject = Awaited<ReturnType<typeof subject>>;
type Break = (s: Subject, p: Proposal) => Promise<unknown>;

const asString = (key: (s: Subject, p: Proposal) => string): Break => async (s, p) => {
  const k = key(s, p);
  await redis.del(k);
  await redis.set(k, 'wrong type');
};

async function expectRefused(s: Subject, write: () => Promise<unknown>): Promise<void> {
  const before = await snapshot(s.prefix);
  const failure = await write().then(
    () => null,
    (e: unknown) => e,
  );
  expect(failure).toBeInstanceOf(UnavailableError);
  const message = (failure as Error).message;
  expect(message).toMatch(/nothing was written/);
  // Names what kind of key, never the key (it holds the installation's prefix and ids).
  expect(message).not.toContain(s.prefix);
  expect(await snapshot(s.prefix)).toEqual(before);
}

describe('a create whose keys are not what it expects writes nothing', () => {
  const cases: [string, Break][] = [
    ['the audit stream is a string', asString((s) => s.keys.audit)],
    ['the audit head is a string', asString((s) => s.keys.auditHead)],
    ["the audit head's seq is not a number", (s) => redis.hset(s.keys.auditHead, 'seq', 'twelve')],
    ['the pending set is a string', asString((s) => s.keys.pending)],
    ['the status counts are a string', asString((s) => s.keys.statusCounts)],
    ["the status count it adds to is not a number", (s) => redis.hset(s.keys.statusCounts, 'pending', '1.5')],
    ['the idempotency key is a list', async (s, p) => redis.rpush(s.keys.idempotency(p.agent, p.idempotency_key!), 'x')],
    ["the agent's revocation time is a hash", async (s, p) => redis.hset(s.keys.revokedAgent(p.agent), 'at', '1')],
    ["the agent's restore time is a list", async (s, p) => redis.rpush(s.keys.restoredAgent(p.agent), '1')],
  ];
  it.each(cases)('%s', async (_name, breakIt) => {
    const s = await subject();
    const p = proposal({ idempotency_key: 'k-next' });
    await breakIt(s, p);
    await expectRefused(s, () => s.store.create(p, [event(p, 'proposal_received'), event(p, 'policy_decided')]));
  });
});

describe('a commit whose keys are not what it expects writes nothing', () => {
  const cases: [string, Break][] = [
    ['the audit stream is a string', asString((s) => s.keys.audit)],
    ['the audit head is a string', asString((s) => s.keys.auditHead)],
    ["the audit head's seq is not a number", (s) => redis.hset(s.keys.auditHead, 'seq', '')],
    ['the pending set is a string', asString((s) => s.keys.pending)],
    ['the status counts are a string', asString((s) => s.keys.statusCounts)],
    ['the count it takes from is not a number', (s) => redis.hset(s.keys.statusCounts, 'pending', 'many')],
    ['the count it adds to is not a number', (s) => redis.hset(s.keys.statusCounts, 'cancelled', '9999999999999999999999')],
  ];
  it.each(cases)('%s', async (_name, breakIt) => {
    const s = await subject();
    await breakIt(s, s.first);
    await expectRefused(s, () => s.store.commit(bump(s.first, { status: 'cancelled', expires_at: null }), 1, [event(s.first, 'cancelled')]));
  });

  it('the proposal is not a hash', async () => {
    const s = await subject();
    await redis.del(s.keys.proposal(s.first.id));
    await redis.rpush(s.keys.proposal(s.first.id), 'x');
    await expectRefused(s, () => s.store.commit(bump(s.first, { status: 'cancelled', expires_at: null }), 1, [event(s.first, 'cancelled')]));
  });
});

describe('a plain append whose keys are not what it expects writes nothing', () => {
  it.each([
    ['the audit stream is a string', asString((s) => s.keys.audit)],
    ['the audit head is a list', async (s: Subject) => (await redis.del(s.keys.auditHead), redis.rpush(s.keys.auditHead, 'x'))],
  ] as [string, Break][])('%s', async (_name, breakIt) => {
    const s = await subject();
    await breakIt(s, s.first);
    await expectRefused(s, () => s.audit.append([event(s.first, 'auth_failed'), event(s.first, 'card_posted')]));
  });
});

describe('the search index is best-effort', () => {
  it('an index key of the wrong type stops nothing: the commit does not touch it, and the indexer leaves it out', async () => {
    const s = await subject();
    const p = proposal();
    await redis.set(s.keys.auditIndex.agent(p.agent), 'wrong type');
    await redis.set(s.keys.auditIndex.word('refund'), 'wrong type');
    await s.store.create(p, [event(p, 'proposal_received', { intent: 'Refund it' })]);
    await s.store.commit(bump(p, { status: 'cancelled', expires_at: null }), 1, [event(p, 'cancelled')]);
    expect((await s.store.get(p.id))?.status).toBe('cancelled');
    expect(await verifyAudit(s.audit)).toMatchObject({ ok: true, count: 4 });
    expect(await redis.exists(s.keys.auditIndex.proposal(p.id))).toBe(0);

    expect(await createRedisAuditSeals(redis, { prefix: s.prefix }).acquireLease('indexer', 60_000)).toBe(true);
    expect(await createRedisAuditIndex(redis, { prefix: s.prefix }).indexNext('indexer', 100)).toEqual({ indexed: 4 });
    expect(await redis.get(s.keys.auditIndex.agent(p.agent))).toBe('wrong type');
    expect(await redis.get(s.keys.auditIndex.word('refund'))).toBe('wrong type');
    expect(await redis.lrange(s.keys.auditIndex.proposal(p.id), 0, -1)).toHaveLength(2);
    expect((await s.audit.search({ words: ['refund'], limit: 10 })).events.map((e) => e.proposal_id)).toEqual([p.id, s.first.id]);
  });
});
