import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { indexKeys } from '../../adapters/redis/audit-index.ts';
import { createRedisAuditIndex } from '../../adapters/redis/audit-index-store.ts';
import { compareIds, createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { runLua } from '../../adapters/redis/lua-commands.ts';
import { createAuditSigner } from '../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { createAuditRetention } from '../../src/app/audit-retention.ts';
import { createAuditSealer } from '../../src/app/seal-audit.ts';
import { GENESIS_HASH, canonicalJson, chainHash, eventDigest, type AuditEventInput } from '../../src/core/audit.ts';
import type { AuditSigner } from '../../src/core/audit-checkpoint.ts';
import { auditSearchText } from '../../src/core/audit-words.ts';
import { checkpointAt, cutAt } from '../contracts/audit-seals.contract.ts';
import { createMemoryAuditSealMetrics, createMemoryWitness } from '../helpers/memory/audit-sealer-recorders.ts';
import { T0, createManualClock } from '../helpers/memory/clock.ts';
import { createMemoryLogger } from '../helpers/memory/logger.ts';
import { testRedis } from '../helpers/redis.ts';

// Retention on real Redis (audit-retention.lua): entries written by the real writer (with their
// search index lists, written by the indexer) are removed up to the cut, and so are their ids in every index list; a
// list left empty is gone; what comes after the cut stays, searchable; checkpoints below the
// cut go; a second run changes nothing. Stream ids are compared as numbers throughout.

const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;
const RETENTION = 60_000;
let signer: AuditSigner;
beforeAll(async () => {
  signer = await createAuditSigner(await generateSigningKey());
});

/** Entry n: agent early-agent up to 10, late-agent after; every one says "alpha", and "onlyN". */
function events(from: number, count: number): AuditEventInput[] {
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    return {
      type: 'proposal_received' as const,
      at: new Date(T0 + n).toISOString(),
      proposal_id: `p_ret_${n}`,
      agent: n <= 10 ? 'early-agent' : 'late-agent',
      actor: n <= 10 ? 'agent:early-agent' : 'agent:late-agent',
      data: { intent: `alpha only${n}` },
    };
  });
}

async function scanKeys(pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

/** Every index list and its ids (newest first). */
async function indexLists(prefix: string): Promise<Map<string, string[]>> {
  const lists = new Map<string, string[]>();
  for (const key of await scanKeys(`${redisKeys(prefix).audit}:ix:*`)) lists.set(key, await redis.lrange(key, 0, -1));
  return lists;
}

/** What a run could change: the stream, the index, the checkpoints and the cut. */
async function snapshot(prefix: string): Promise<unknown> {
  const k = redisKeys(prefix);
  return {
    stream: await redis.xrange(k.audit, '-', '+'),
    index: [...(await indexLists(prefix))],
    checkpoints: await redis.xrange(k.auditCheckpoints, '-', '+'),
    cut: await redis.hgetall(k.auditCut),
  };
}

describe('audit retention on Redis', () => {
  it('removes entries up to the cut with their index ids, keeps the rest searchable, trims checkpoints below it; a second run changes nothing', async () => {
    const prefix = newPrefix();
    const k = redisKeys(prefix);
    const audit = createRedisAuditLog(redis, { prefix });
    const seals = createRedisAuditSeals(redis, { prefix });
    const clock = createManualClock();
    const parts = { seals, signer, clock, log: prefix, owner: 'owner-a' };
    // The sealer sees the entries up to `visible` only: 10 of them sealed now, the rest later.
    let visible = 10;
    const sealer = createAuditSealer(
      {
        ...parts,
        seals: { ...seals, entriesAfter: async (after, count) => (await seals.entriesAfter(after, count)).filter((e) => e.seq <= visible) },
        logger: createMemoryLogger(),
        metrics: createMemoryAuditSealMetrics(),
        witness: createMemoryWitness(),
      },
      { everyEntries: 5, everyMs: 60_000, heartbeatMs: 86_400_000, leaseMs: 600_000 },
    );
    const witness = createMemoryWitness();
    const trimmed: number[] = [];
    const retention = createAuditRetention(
      { ...parts, logger: createMemoryLogger(), metrics: { auditTrimmed: (n) => void trimmed.push(n) }, witness, retentionMs: RETENTION },
      { batch: 4 },
    );

    // One append: the ids likely share their ms and differ in their seq part (…-9, …-10).
    await audit.append(events(1, 15));
    const ids = (await redis.xrange(k.audit, '-', '+')).map(([id]) => id);
    expect(ids).toHaveLength(15);
    while ((await sealer.step()) === 'more');
    clock.advance(100_000);
    visible = 15;
    while ((await sealer.step()) === 'more');
    // The search index, written by the indexer under the sealer's lease.
    expect(await createRedisAuditIndex(redis, { prefix }).indexNext('owner-a', 100)).toEqual({ indexed: 15 });
    expect((await seals.checkpoints(0, 10)).map((c) => [c.seq, c.at])).toEqual([
      [5, new Date(T0).toISOString()],
      [10, new Date(T0).toISOString()],
      [15, new Date(T0 + 100_000).toISOString()],
    ]);
    const before = await indexLists(prefix);
    expect(before.get(`${k.audit}:ix:w:alpha`)).toEqual([...ids].reverse());

    // The checkpoint at 10 is older than the retention; the one at 15 is not.
    expect(await retention.step()).toBe('idle');
    const cut = (await seals.cut())!;
    expect(cut).toMatchObject({ kind: 'cut', seq: 10, log: prefix });
    expect(await signer.verify(cut)).toBe(true);
    expect(witness.sent).toEqual([cut]);
    const cutId = ids[9]!;

    expect((await redis.xrange(k.audit, '-', '+')).map(([id]) => id)).toEqual(ids.slice(10));
    expect(trimmed.reduce((a, b) => a + b, 0)).toBe(10);
    // No index list holds an id at or below the cut; lists of trimmed entries alone are gone.
    const after = await indexLists(prefix);
    for (const [key, list] of after) {
      expect(list.length, key).toBeGreaterThan(0);
      for (const id of list) expect(compareIds(id, cutId), `${key} ${id}`).toBeGreaterThan(0);
    }
    for (const key of [`${k.audit}:ix:w:only3`, `${k.audit}:ix:w:only10`, `${k.audit}:ix:agent:early-agent`, `${k.audit}:ix:proposal:p_ret_1`]) {
      expect(before.has(key), key).toBe(true);
      expect(await redis.exists(key), key).toBe(0);
    }
    // Every list of an entry after the cut keeps exactly the ids it had after the cut.
    for (const [key, list] of before) {
      const kept = list.filter((id) => compareIds(id, cutId) > 0);
      expect(after.get(key) ?? [], key).toEqual(kept);
    }
    expect(after.get(`${k.audit}:ix:w:alpha`)).toEqual(ids.slice(10).reverse());

    // Search finds only what is left.
    const found = async (q: Partial<Parameters<typeof audit.search>[0]>) => (await audit.search({ words: [], limit: 100, ...q })).events.map((e) => e.seq);
    expect(await found({ words: ['alpha'] })).toEqual([15, 14, 13, 12, 11]);
    expect(await found({ words: ['only3'] })).toEqual([]);
    expect(await found({ agent: 'early-agent' })).toEqual([]);
    expect(await found({ agent: 'late-agent' })).toEqual([15, 14, 13, 12, 11]);
    expect(await found({})).toEqual([15, 14, 13, 12, 11]);

    // Checkpoints below the cut are gone; the one at its seq stays.
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([10, 15]);
    // The chain goes on from the cut: the checkpoint at 15 names the chain from its hash.
    let prev = cut.hash;
    for (const e of await seals.entriesAfter('0-0', 100)) prev = chainHash(prev, e.seq, e.digest);
    expect((await seals.latestCheckpoint())!.hash).toBe(prev);

    const still = await snapshot(prefix);
    expect(await retention.step()).toBe('idle');
    expect(await snapshot(prefix)).toEqual(still);
    expect(witness.sent).toHaveLength(1);
  });

  it('compares stream ids as numbers: 9-9 < 9-10 < 10-1 (in the index and at the cut)', async () => {
    const prefix = newPrefix();
    const k = redisKeys(prefix);
    const seals = createRedisAuditSeals(redis, { prefix });
    // Ids chosen so that text order and number order disagree.
    const ids = ['9-8', '9-9', '9-10', '10-1', '10-2'];
    const written = events(1, ids.length);
    for (const [i, e] of written.entries()) {
      const data = canonicalJson(e.data);
      await redis.xadd(k.audit, ids[i]!, 'seq', String(i + 1), 'at', e.at, 'type', e.type, 'proposal_id', e.proposal_id!, 'agent', e.agent!, 'actor', e.actor, 'data', data, 'digest', eventDigest(e), 'chain', '3');
      // The lists the indexer would push to (audit-index.lua), newest first.
      for (const key of indexKeys(k.auditIndex, e, auditSearchText(e.type, e.actor, e.proposal_id!, e.agent!, data))) await redis.lpush(key, ids[i]!);
    }
    expect(await seals.acquireLease('a', 60_000)).toBe(true);
    let sealedSeq = 0;
    const cutAtSeq = async (seq: number) => {
      const state = { seq, hash: seq.toString(16).padStart(64, '0'), id: ids[seq - 1]!, at: '2030-01-01T00:00:00.000Z', legacyHash: GENESIS_HASH };
      expect(await seals.seal('a', 60_000, sealedSeq, state, checkpointAt(state))).toBe('ok');
      sealedSeq = seq;
      expect(await seals.writeCut('a', cutAt(checkpointAt(state)))).toBe('ok');
      while ((await seals.trimToCut('a', 100)) !== 0);
    };
    const alpha = `${k.audit}:ix:w:alpha`;

    await cutAtSeq(2);
    expect(await redis.lrange(alpha, 0, -1)).toEqual(['10-2', '10-1', '9-10']);
    expect((await redis.xrange(k.audit, '-', '+')).map(([id]) => id)).toEqual(['9-10', '10-1', '10-2']);
    await cutAtSeq(3);
    expect(await redis.lrange(alpha, 0, -1)).toEqual(['10-2', '10-1']);
    expect(await redis.exists(`${k.audit}:ix:w:only3`)).toBe(0);
    expect(await redis.lrange(`${k.audit}:ix:w:only4`, 0, -1)).toEqual(['10-1']);
  });

  it('refuses to trim past the cut, and a wrong-typed cut, before writing anything', async () => {
    const prefix = newPrefix();
    const k = redisKeys(prefix);
    const seals = createRedisAuditSeals(redis, { prefix });
    await createRedisAuditLog(redis, { prefix }).append(events(1, 3));
    const ids = (await redis.xrange(k.audit, '-', '+')).map(([id]) => id);
    expect(await seals.acquireLease('a', 60_000)).toBe(true);
    const state = { seq: 1, hash: '1'.repeat(64), id: ids[0]!, at: '2030-01-01T00:00:00.000Z', legacyHash: GENESIS_HASH };
    expect(await seals.seal('a', 60_000, 0, state, checkpointAt(state))).toBe('ok');
    expect(await seals.writeCut('a', cutAt(checkpointAt(state)))).toBe('ok');
    // The script itself checks: ids reaching an entry past the cut remove nothing.
    await expect(runLua(redis, 'countersignAuditRetention', [4, k.auditSealer, k.auditCut, k.audit, k.auditCheckpoints, 'trim', 'a', ids[1]!])).rejects.toThrow(/past the cut/);
    expect(await redis.xlen(k.audit)).toBe(3);

    await redis.del(k.auditCut);
    await redis.set(k.auditCut, 'not a hash');
    await expect(seals.trimToCut('a', 10)).rejects.toThrow(/WRONGTYPE/);
    await expect(seals.trimCheckpointsToCut('a')).rejects.toThrow(/WRONGTYPE/);
    expect(await redis.xlen(k.audit)).toBe(3);
    expect(await redis.xlen(k.auditCheckpoints)).toBe(1);
  });
});
