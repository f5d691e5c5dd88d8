import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { AUDIT_INDEX_CAP, MAX_TOKENS_PER_EVENT, auditIndexKeys, indexKeys, searchTokens } from '../../adapters/redis/audit-index.ts';
import { compareIds, createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { T0, ev, searchAll as all } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// The audit search index kept by the append script: what goes in, and that a search through
// it returns exactly what a scan of the whole stream would (also past a trimmed index, for
// entries written before indexing began, and for events with more words than are indexed).
// What any AuditLog's search must return (words at word boundaries, filters, paging, the same
// as a scan) is test/contracts/audit-log.contract.ts.

const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;

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
    const lists = indexKeys(ix, { agent: 'a1', actor: 'system', proposal_id: null }, many);
    expect(lists.slice(0, 3)).toEqual([ix.agent('a1'), ix.actor('system'), ix.overflow]);
    expect(lists).toHaveLength(3 + MAX_TOKENS_PER_EVENT);
    expect(indexKeys(ix, { agent: null, actor: 'system', proposal_id: 'p_1' }, 'just two')).toEqual([ix.actor('system'), ix.proposal('p_1'), ix.word('just'), ix.word('two')]);
  });
});

describe('audit index', () => {
  it('is written by the append script beside the stream, with the entry ids', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const keys = redisKeys(prefix);
    const ix = auditIndexKeys(keys.audit);
    await log.append([ev({ type: 'proposal_received', proposal_id: 'p_x', agent: 'billing-agent', actor: 'agent:billing-agent', data: { intent: 'Refund invoice 4711' } })]);
    const id = ((await redis.xrange(keys.audit, '-', '+')) as [string, string[]][])[0]![0];
    for (const key of [ix.agent('billing-agent'), ix.actor('agent:billing-agent'), ix.proposal('p_x'), ix.word('refund'), ix.word('4711'), ix.word('proposal'), ix.word('received')]) {
      expect(await redis.lrange(key, 0, -1), key).toEqual([id]);
    }
    expect(await redis.hget(keys.auditHead, 'ix_from')).toBe(id);
    expect(await redis.exists(ix.overflow)).toBe(0);
  });

  it('goes on with a scan below a trimmed index', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const n = AUDIT_INDEX_CAP + 700;
    for (let i = 0; i < n; i += 500) {
      await log.append(Array.from({ length: Math.min(500, n - i) }, (_, j) => ev({ type: 'card_posted', agent: 'busy-agent', data: { n: i + j } })));
    }
    const ix = auditIndexKeys(redisKeys(prefix).audit);
    const kept = await redis.llen(ix.agent('busy-agent'));
    expect(kept).toBeGreaterThanOrEqual(AUDIT_INDEX_CAP);
    expect(kept).toBeLessThan(n);
    const found = await all(log, { agent: 'busy-agent', words: ['posted'] });
    expect(found.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => n - i));
  });

  it('scans entries written before indexing began', async () => {
    const prefix = newPrefix();
    const keys = redisKeys(prefix);
    // An old entry, as a writer without the index left it (no ix_from, no index streams).
    await redis.xadd(keys.audit, '*', 'seq', '1', 'at', new Date(T0).toISOString(), 'type', 'card_posted', 'proposal_id', 'p_old', 'agent', 'old-agent', 'actor', 'system', 'data', '{"word":"zebra"}', 'digest', 'd', 'prev_hash', 'x', 'hash', 'y');
    const log = createRedisAuditLog(redis, { prefix });
    await log.append([ev({ type: 'card_posted', proposal_id: 'p_new', agent: 'old-agent', data: { word: 'zebra' } })]);
    expect((await all(log, { words: ['zebra'] })).map((e) => e.proposal_id)).toEqual(['p_new', 'p_old']);
    expect((await all(log, { agent: 'old-agent' })).map((e) => e.proposal_id)).toEqual(['p_new', 'p_old']);
    expect((await all(log, { proposalId: 'p_old' })).map((e) => e.proposal_id)).toEqual(['p_old']);
    // Below the index, words are matched whole as well.
    expect(await all(log, { words: ['zeb'] })).toEqual([]);
    expect(await all(log, { words: ['zebra', 'car'] })).toEqual([]);
  });

  it('finds a word of an event with more words than are indexed', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const words = Array.from({ length: MAX_TOKENS_PER_EVENT + 50 }, (_, i) => `word${i}`).join(' ');
    await log.append([ev({ type: 'card_posted', data: { words } }), ev({ type: 'card_posted', data: { other: 'word5' } })]);
    const last = `word${MAX_TOKENS_PER_EVENT + 40}`;
    expect((await all(log, { words: [last] })).map((e) => e.seq)).toEqual([1]);
    expect((await all(log, { words: ['word5'] })).map((e) => e.seq)).toEqual([2, 1]);
  });

  it('finds words that are not indexed by scanning', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    await log.append([ev({ type: 'proposal_received', agent: 'a1', actor: 'agent:a1', data: { intent: 'Tag it', context: { reversible: true } } }), ev({ type: 'card_posted', agent: 'a1', data: {} })]);
    expect((await all(log, { words: ['intent'] })).map((e) => e.seq)).toEqual([1]);
    expect((await all(log, { words: ['reversible', 'tag'] })).map((e) => e.seq)).toEqual([1]);
    expect((await all(log, { words: ['agent'], agent: 'a1' })).map((e) => e.seq)).toEqual([1]);
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
