import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { AUDIT_INDEX_CAP, MAX_TOKENS_PER_EVENT, auditIndexKeys, entryIndexLists, indexKeys, searchTokens } from '../../adapters/redis/audit-index.ts';
import { createRedisAuditIndex } from '../../adapters/redis/audit-index-store.ts';
import { compareIds, createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { runLua } from '../../adapters/redis/lua-commands.ts';
import { GENESIS_HASH } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import type { AuditQuery, StoredAuditEvent } from '../../src/core/ports.ts';
import { checkpointAt, cutAt } from '../contracts/audit-seals.contract.ts';
import { T0, ev, scanAll, searchAll as all } from '../contracts/fixtures.ts';
import { rewriteRawEntry } from '../helpers/audit-entries.ts';
import { testRedis } from '../helpers/redis.ts';

// The audit search index on Redis: written by the indexer after the commit (audit-index.lua),
// in batches fenced by the sealer's lease and the index position, and read by search, which
// returns exactly what a scan of the whole stream would: from the entries the indexer has not
// reached yet (scanned), the index, and below what it covers (scanned). What any AuditLog's
// search must return is test/contracts/audit-log.contract.ts; what any AuditIndexStore must
// do is test/contracts/audit-index.contract.ts.

const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;
const OWNER = 'indexer';

type StreamEntry = [id: string, fields: string[]];

async function setup() {
  const prefix = newPrefix();
  const keys = redisKeys(prefix);
  const seals = createRedisAuditSeals(redis, { prefix });
  expect(await seals.acquireLease(OWNER, 600_000)).toBe(true);
  const index = createRedisAuditIndex(redis, { prefix });
  const log = createRedisAuditLog(redis, { prefix });
  /** Steps the indexer until it has caught up; returns how many entries it indexed. */
  const indexAll = async (batch = 1000) => {
    let n = 0;
    for (;;) {
      const step = await index.indexNext(OWNER, batch);
      if (typeof step !== 'object') throw new Error(`indexer step: ${step}`);
      if (step.indexed === 0) return n;
      n += step.indexed;
    }
  };
  const ids = async () => ((await redis.xrange(keys.audit, '-', '+')) as StreamEntry[]).map(([id]) => id);
  return { prefix, keys, ix: keys.auditIndex, seals, index, log, indexAll, ids };
}

/** Every index list of the prefix with what it holds. */
async function lists(prefix: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const found = (await redis.keys(`{${prefix}}:audit:ix:*`)).sort();
  for (const key of found) out.set(key, await redis.lrange(key, 0, -1));
  return out;
}

describe('searchTokens / indexKeys', () => {
  it('splits lower-cased text into words of a-z 0-9, at least two long, each once', () => {
    expect(searchTokens('approval_refused\nperson:mallory\np_b {"invoice":4711,"x":"4711"}')).toEqual(['approval', 'refused', 'mallory', 'invoice', '4711']);
  });

  it('leaves out the words in nearly every event', () => {
    expect(searchTokens('{"action":{"tool":"payments"},"context":{"reversible":false}} agent:billing')).toEqual(['payments', 'billing']);
  });

  it('cuts long words and sends events with more words than are indexed to the overflow list too', () => {
    expect(searchTokens('a'.repeat(100))).toEqual(['a'.repeat(64)]);
    const ix = auditIndexKeys('{p}:audit');
    const many = Array.from({ length: MAX_TOKENS_PER_EVENT + 10 }, (_, i) => `w${i}`).join(' ');
    const found = indexKeys(ix, { agent: 'a1', actor: 'system', proposal_id: null }, many);
    expect(found.slice(0, 3)).toEqual([ix.agent('a1'), ix.actor('system'), ix.overflow]);
    expect(found).toHaveLength(3 + MAX_TOKENS_PER_EVENT);
    expect(indexKeys(ix, { agent: null, actor: 'system', proposal_id: 'p_1' }, 'just two')).toEqual([ix.actor('system'), ix.proposal('p_1'), ix.word('just'), ix.word('two')]);
  });
});

describe('audit indexer on Redis', () => {
  it('writes the index after the commit: nothing at the append, every list with its ids after a step, newest first', async () => {
    const s = await setup();
    await s.log.append([
      ev({ type: 'proposal_received', proposal_id: 'p_x', agent: 'billing-agent', actor: 'agent:billing-agent', data: { intent: 'Refund invoice 4711' } }),
      ev({ type: 'decided', proposal_id: 'p_x', agent: 'billing-agent', actor: 'system', data: { status: 'approved' } }),
    ]);
    expect(await lists(s.prefix)).toEqual(new Map());
    expect(await redis.hmget(s.keys.auditHead, 'ix_from', 'ix_to')).toEqual([null, null]);

    expect(await s.indexAll()).toBe(2);
    const [first, second] = await s.ids();
    const ix = s.ix;
    for (const key of [ix.word('refund'), ix.word('4711'), ix.word('received'), ix.actor('agent:billing-agent')]) expect(await redis.lrange(key, 0, -1), key).toEqual([first]);
    for (const key of [ix.word('decided'), ix.word('approved'), ix.actor('system')]) expect(await redis.lrange(key, 0, -1), key).toEqual([second]);
    // Newest first, as search reads them.
    for (const key of [ix.agent('billing-agent'), ix.proposal('p_x')]) expect(await redis.lrange(key, 0, -1), key).toEqual([second, first]);
    expect(await redis.hmget(s.keys.auditHead, 'ix_from', 'ix_to')).toEqual([first, second]);
    expect(await redis.exists(ix.overflow)).toBe(0);
  });

  it('pushes each id once per list, in stream order across batches; a batch written again (a lost reply, a retry) writes nothing', async () => {
    const s = await setup();
    await s.log.append(Array.from({ length: 7 }, (_, i) => ev({ type: 'card_posted', agent: 'a1', data: { n: i } })));
    const script = async (after: string, batch: StreamEntry[]) => {
      const groups = new Map<string, string[]>();
      for (const [id, fields] of batch) for (const key of entryIndexLists(s.ix, fields)) groups.set(key, [...(groups.get(key) ?? []), id]);
      const args = [OWNER, after, batch[0]![0], batch.at(-1)![0], ...[...groups.values()].flatMap((ids) => [String(ids.length), ...ids])];
      return Number(await runLua(redis, 'countersignAuditIndex', [groups.size + 2, s.keys.auditSealer, s.keys.auditHead, ...groups.keys(), ...args]));
    };
    const entries = (await redis.xrange(s.keys.audit, '-', '+')) as StreamEntry[];
    expect(await script('', entries.slice(0, 3))).toBe(1);
    // The same batch again: the position is no longer the one it was read after.
    expect(await script('', entries.slice(0, 3))).toBe(-1);
    expect(await script(entries[2]![0], entries.slice(3, 5))).toBe(1);
    expect(await script(entries[2]![0], entries.slice(3, 5))).toBe(-1);
    expect(await s.indexAll(1)).toBe(2);
    const newestFirst = entries.map(([id]) => id).reverse();
    expect(await redis.lrange(s.ix.agent('a1'), 0, -1)).toEqual(newestFirst);
    expect(await redis.lrange(s.ix.word('posted'), 0, -1)).toEqual(newestFirst);
    // A batch must start after its position.
    await expect(script(entries[3]![0], entries.slice(3, 5))).rejects.toThrow(/start after its position/);
  });

  it('skips an index list of the wrong type and writes the others; a head of the wrong type is refused before anything is written', async () => {
    const s = await setup();
    await s.log.append([ev({ type: 'card_posted', agent: 'a1', actor: 'system', data: { note: 'refund' } })]);
    // Someone made one list a string: the index must never stop on it (search scans around a missing id).
    await redis.set(s.ix.word('refund'), 'not a list');
    expect(await s.indexAll()).toBe(1);
    const [id] = await s.ids();
    expect(await redis.get(s.ix.word('refund'))).toBe('not a list');
    expect(await redis.lrange(s.ix.agent('a1'), 0, -1)).toEqual([id]);
    expect((await s.log.search({ words: ['refund'], limit: 10 })).events.map((e) => e.id)).toEqual([id]);

    const t = await setup();
    await t.log.append([ev({ type: 'card_posted', agent: 'a2' })]);
    await redis.del(t.keys.auditHead);
    await redis.set(t.keys.auditHead, 'not a hash');
    await expect(t.index.indexNext(OWNER, 100)).rejects.toThrow(/WRONGTYPE|hash/);
    expect(await lists(t.prefix)).toEqual(new Map());
  });

  it("writes nothing while the sealer's lease is another's", async () => {
    const s = await setup();
    await s.log.append([ev({ type: 'card_posted', agent: 'a1' })]);
    await s.seals.releaseLease(OWNER);
    expect(await s.seals.acquireLease('someone-else', 60_000)).toBe(true);
    expect(await s.index.indexNext(OWNER, 100)).toBe('fenced');
    expect(await lists(s.prefix)).toEqual(new Map());
    expect(await s.index.position()).toBeNull();
    expect(await s.index.indexNext('someone-else', 100)).toEqual({ indexed: 1 });
  });

  it('indexes an edited entry as it reads now, and one whose data is not JSON, and goes on after them', async () => {
    const s = await setup();
    await s.log.append([1, 2, 3].map((n) => ev({ type: 'card_posted', agent: 'a1', data: { word: `original${n}` } })));
    await rewriteRawEntry(redis, s.prefix, 1, (f) => void f.set('data', '{"word":"rewritten"}'));
    await rewriteRawEntry(redis, s.prefix, 2, (f) => void f.set('data', '{not json at all'));
    expect(await s.indexAll()).toBe(3);
    const [one, two, three] = await s.ids();
    expect(await redis.lrange(s.ix.word('rewritten'), 0, -1)).toEqual([one]);
    expect(await redis.exists(s.ix.word('original1'))).toBe(0);
    expect(await redis.lrange(s.ix.word('json'), 0, -1)).toEqual([two]);
    expect(await redis.lrange(s.ix.word('original3'), 0, -1)).toEqual([three]);
    expect((await all(s.log, { words: ['rewritten'] })).map((e) => e.seq)).toEqual([1]);
  });

  it('never pushes an entry that retention trimmed before the indexer got to it, even from a batch read before the trim', async () => {
    const s = await setup();
    await s.log.append(Array.from({ length: 8 }, (_, i) => ev({ type: 'card_posted', agent: 'a1', data: { word: `w${i + 1}` } })));
    const ids = await s.ids();
    expect((await s.index.indexNext(OWNER, 2)) as object).toEqual({ indexed: 2 });
    // A batch of entries 3-4, read now and written after the trim below.
    const stale = (await redis.xrange(s.keys.audit, `(${ids[1]}`, '+', 'COUNT', 2)) as StreamEntry[];
    const state = { seq: 6, hash: 'c'.repeat(64), id: ids[5]!, at: '2030-01-02T00:00:00.000Z', legacyHash: GENESIS_HASH };
    expect(await s.seals.seal(OWNER, 600_000, 0, state, checkpointAt(state))).toBe('ok');
    expect(await s.seals.writeCut(OWNER, cutAt(checkpointAt(state)))).toBe('ok');
    expect(await s.seals.trimToCut(OWNER, 100)).toBe(6);
    expect(await s.index.position()).toBe(ids[5]);
    const groups = new Map<string, string[]>();
    for (const [id, fields] of stale) for (const key of entryIndexLists(s.ix, fields)) groups.set(key, [...(groups.get(key) ?? []), id]);
    const args = [OWNER, ids[1]!, stale[0]![0], stale[1]![0], ...[...groups.values()].flatMap((g) => [String(g.length), ...g])];
    expect(Number(await runLua(redis, 'countersignAuditIndex', [groups.size + 2, s.keys.auditSealer, s.keys.auditHead, ...groups.keys(), ...args]))).toBe(-1);

    expect(await s.indexAll()).toBe(2);
    const held = [...(await lists(s.prefix)).values()].flat();
    expect(new Set(held)).toEqual(new Set([ids[6], ids[7]]));
    expect((await all(s.log, { agent: 'a1' })).map((e) => e.seq)).toEqual([8, 7]);
    expect((await all(s.log, { words: ['w3'] })).map((e) => e.seq)).toEqual([]);
  });
});

describe('audit search through the index', () => {
  /** 600 events of every shape, in appends of 100 (seq n at T0 + n-1 seconds). */
  function events(): AuditEventInput[] {
    return Array.from({ length: 600 }, (_, i) =>
      ev({
        type: i % 3 === 0 ? 'approval_recorded' : 'card_posted',
        at: new Date(T0 + i * 1000).toISOString(),
        proposal_id: `p_${i % 7}`,
        agent: `agent-${i % 5}`,
        actor: `person:p${i % 11}`,
        data: { intent: `Refund invoice ${i % 13} ${i % 2 === 0 ? 'even' : 'odd'}` },
      }),
    );
  }

  const text = (e: StoredAuditEvent) => JSON.stringify(e.data).toLowerCase() + e.type;
  const cases: [Partial<AuditQuery>, (e: StoredAuditEvent) => boolean][] = [
    [{ words: ['even'] }, (e) => text(e).includes('even')],
    [{ words: ['EVEN', 'refund', '12'] }, (e) => / 12 even/.test(text(e))],
    [{ words: ['recorded'] }, (e) => e.type === 'approval_recorded'],
    [{ agent: 'agent-3' }, (e) => e.agent === 'agent-3'],
    [{ actor: 'person:p4', words: ['odd'] }, (e) => e.actor === 'person:p4' && text(e).includes('odd')],
    [{ proposalId: 'p_2', agent: 'agent-1' }, (e) => e.proposal_id === 'p_2' && e.agent === 'agent-1'],
    [{ agent: 'agent-2', since: T0 + 100_000, until: T0 + 400_000 }, (e) => e.agent === 'agent-2' && Date.parse(e.at) >= T0 + 100_000 && Date.parse(e.at) <= T0 + 400_000],
    [{ agent: 'agent-4', since: T0 + 450_000 }, (e) => e.agent === 'agent-4' && Date.parse(e.at) >= T0 + 450_000],
    [{ words: ['nowhere'] }, () => false],
  ];

  async function expectLikeAScan(log: ReturnType<typeof createRedisAuditLog>, what: string, limits = [500, 7]): Promise<void> {
    const everything = await scanAll(log);
    expect(everything).toHaveLength(600);
    for (const [q, keep] of cases) {
      const expected = everything.filter(keep).map((e) => e.seq).reverse();
      for (const limit of limits) {
        expect((await all(log, { ...q, limit })).map((e) => e.seq), `${what}: ${JSON.stringify({ ...q, limit })}`).toEqual(expected);
      }
    }
  }

  it('finds the same events as a scan, page by page: none indexed, partly indexed (the rest in the tail), all indexed', async () => {
    const s = await setup();
    const list = events();
    for (let i = 0; i < list.length; i += 100) await s.log.append(list.slice(i, i + 100));
    await expectLikeAScan(s.log, 'nothing indexed');
    expect((await s.index.indexNext(OWNER, 350)) as object).toEqual({ indexed: 350 });
    await expectLikeAScan(s.log, '350 indexed, 250 in the tail', [500, 7, 1]);
    await s.indexAll();
    expect(await s.index.position()).toBe((await s.ids()).at(-1));
    await expectLikeAScan(s.log, 'all indexed');
  });

  it('pages on without gaps or repeats while the indexer moves past the cursor between pages', async () => {
    const s = await setup();
    const list = events();
    for (let i = 0; i < list.length; i += 100) await s.log.append(list.slice(i, i + 100));
    expect((await s.index.indexNext(OWNER, 200)) as object).toEqual({ indexed: 200 });
    const expected = (await scanAll(s.log)).filter((e) => e.agent === 'agent-3').map((e) => e.seq).reverse();
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 200; page++) {
      const r = await s.log.search({ words: [], agent: 'agent-3', limit: 9, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...r.events.map((e) => e.seq));
      if (r.next === null) break;
      cursor = r.next;
      // The indexer catches up a little between pages, past the cursor and beyond.
      await s.index.indexNext(OWNER, 37);
    }
    expect(seen).toEqual(expected);
  });

  it('goes on with a scan below a trimmed index', async () => {
    const s = await setup();
    const n = AUDIT_INDEX_CAP + 700;
    for (let i = 0; i < n; i += 500) {
      await s.log.append(Array.from({ length: Math.min(500, n - i) }, (_, j) => ev({ type: 'card_posted', agent: 'busy-agent', data: { n: i + j } })));
    }
    await s.indexAll(300);
    const kept = await redis.llen(s.ix.agent('busy-agent'));
    expect(kept).toBeGreaterThanOrEqual(AUDIT_INDEX_CAP);
    expect(kept).toBeLessThan(n);
    const found = await all(s.log, { agent: 'busy-agent', words: ['posted'] });
    expect(found.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => n - i));
  });

  it('scans the entries before ix_from, the first an earlier release indexed in its commit scripts, and indexes from there', async () => {
    const s = await setup();
    // An old entry, as a writer without the index left it, then one an earlier release indexed at its commit (ix_from).
    await redis.xadd(s.keys.audit, '*', 'seq', '1', 'at', new Date(T0).toISOString(), 'type', 'card_posted', 'proposal_id', 'p_old', 'agent', 'old-agent', 'actor', 'system', 'data', '{"word":"zebra"}', 'digest', 'd', 'prev_hash', 'x', 'hash', 'y');
    await redis.hset(s.keys.auditHead, 'seq', '1');
    await s.log.append([ev({ type: 'card_posted', proposal_id: 'p_new', agent: 'old-agent', data: { word: 'zebra' } })]);
    const [old, indexedFrom] = await s.ids();
    await redis.hset(s.keys.auditHead, 'ix_from', indexedFrom!);
    expect(await s.indexAll()).toBe(1);
    expect(await redis.lrange(s.ix.word('zebra'), 0, -1)).toEqual([indexedFrom]);
    expect(compareIds(old!, indexedFrom!)).toBeLessThan(0);
    expect((await all(s.log, { words: ['zebra'] })).map((e) => e.proposal_id)).toEqual(['p_new', 'p_old']);
    expect((await all(s.log, { agent: 'old-agent' })).map((e) => e.proposal_id)).toEqual(['p_new', 'p_old']);
    expect((await all(s.log, { proposalId: 'p_old' })).map((e) => e.proposal_id)).toEqual(['p_old']);
    // Below the index, words are matched whole as well.
    expect(await all(s.log, { words: ['zeb'] })).toEqual([]);
    expect(await all(s.log, { words: ['zebra', 'car'] })).toEqual([]);
  });

  it('returns an entry once when a list already holds it beyond ix_to (an earlier release indexing at its commit, or the indexer moving on mid-search)', async () => {
    const s = await setup();
    await s.log.append([1, 2, 3].map((n) => ev({ type: 'card_posted', agent: 'a1', data: { n } })));
    expect((await s.index.indexNext(OWNER, 2)) as object).toEqual({ indexed: 2 });
    const [, , third] = await s.ids();
    await redis.lpush(s.ix.agent('a1'), third!);
    for (const limit of [10, 1]) expect((await all(s.log, { agent: 'a1', limit })).map((e) => e.seq)).toEqual([3, 2, 1]);
    // The indexer pushes it again: still once.
    expect(await s.indexAll()).toBe(1);
    expect((await all(s.log, { agent: 'a1' })).map((e) => e.seq)).toEqual([3, 2, 1]);
  });

  it('finds a word of an event with more words than are indexed', async () => {
    const s = await setup();
    const words = Array.from({ length: MAX_TOKENS_PER_EVENT + 50 }, (_, i) => `word${i}`).join(' ');
    await s.log.append([ev({ type: 'card_posted', data: { words } }), ev({ type: 'card_posted', data: { other: 'word5' } })]);
    await s.indexAll();
    expect(await redis.llen(s.ix.overflow)).toBe(1);
    const last = `word${MAX_TOKENS_PER_EVENT + 40}`;
    expect((await all(s.log, { words: [last] })).map((e) => e.seq)).toEqual([1]);
    expect((await all(s.log, { words: ['word5'] })).map((e) => e.seq)).toEqual([2, 1]);
  });

  it('finds words that are not indexed by scanning', async () => {
    const s = await setup();
    await s.log.append([ev({ type: 'proposal_received', agent: 'a1', actor: 'agent:a1', data: { intent: 'Tag it', context: { reversible: true } } }), ev({ type: 'card_posted', agent: 'a1', data: {} })]);
    await s.indexAll();
    expect((await all(s.log, { words: ['intent'] })).map((e) => e.seq)).toEqual([1]);
    expect((await all(s.log, { words: ['reversible', 'tag'] })).map((e) => e.seq)).toEqual([1]);
    expect((await all(s.log, { words: ['agent'], agent: 'a1' })).map((e) => e.seq)).toEqual([1]);
  });
});

describe('compareIds', () => {
  it('orders stream ids numerically', () => {
    expect(compareIds('9-1', '10-0')).toBeLessThan(0);
    expect(compareIds('10-2', '10-10')).toBeLessThan(0);
    expect(compareIds('10-10', '10-10')).toBe(0);
    expect(compareIds('11-0', '10-99')).toBeGreaterThan(0);
  });
});
