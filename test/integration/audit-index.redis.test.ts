import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../src/core/audit.ts';
import type { AuditQuery, StoredAuditEvent } from '../../src/core/ports.ts';
import { AUDIT_INDEX_CAP, MAX_TOKENS_PER_EVENT, auditIndexKeys, indexArg, searchTokens } from '../../adapters/redis/audit-index.ts';
import { compareIds, createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { testRedis } from '../helpers/redis.ts';

// The audit search index kept by the append script: what goes in, and that a search through
// it returns exactly what a scan of the whole stream would (also past a trimmed index, for
// entries written before indexing began, and for events with more words than are indexed).

const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;
const T0 = Date.parse('2030-01-01T00:00:00.000Z');

function ev(over: Partial<AuditEventInput> & { type: AuditEventInput['type'] }): AuditEventInput {
  return { at: new Date(T0).toISOString(), proposal_id: null, agent: null, actor: 'system', data: {}, ...over };
}

const query = (q: Partial<AuditQuery>): AuditQuery => ({ words: [], limit: 500, ...q });

/** Every page of a search, followed by cursor. */
async function all(log: ReturnType<typeof createRedisAuditLog>, q: Partial<AuditQuery>): Promise<StoredAuditEvent[]> {
  const out: StoredAuditEvent[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await log.search(query({ ...q, ...(cursor === undefined ? {} : { cursor }) }));
    out.push(...page.events);
    if (page.next === null) return out;
    cursor = page.next;
  }
  throw new Error('too many pages');
}

describe('searchTokens / indexArg', () => {
  it('splits lower-cased text into words of a-z 0-9, at least two long, each once', () => {
    expect(searchTokens('approval_refused\nperson:mallory\np_b {"invoice":4711,"x":"4711"}')).toEqual(['approval', 'refused', 'mallory', 'invoice', '4711']);
  });

  it('leaves out the words in nearly every event', () => {
    expect(searchTokens('{"action":{"tool":"payments"},"context":{"reversible":false}} agent:billing')).toEqual(['payments', 'billing']);
  });

  it('cuts long words and marks events with more words than are indexed', () => {
    expect(searchTokens('a'.repeat(100))).toEqual(['a'.repeat(64)]);
    const many = Array.from({ length: MAX_TOKENS_PER_EVENT + 10 }, (_, i) => `w${i}`).join(' ');
    const arg = indexArg(many).split(' ');
    expect(arg[0]).toBe('*');
    expect(arg).toHaveLength(MAX_TOKENS_PER_EVENT + 1);
    expect(indexArg('just two')).toBe('just two');
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

  it('finds the same events as a scan, page by page, for words and filters', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const events: AuditEventInput[] = [];
    for (let i = 0; i < 600; i++) {
      events.push(
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
    for (let i = 0; i < events.length; i += 100) await log.append(events.slice(i, i + 100));
    const everything = await all(log, {});
    expect(everything).toHaveLength(600);
    const expectFor = (keep: (e: StoredAuditEvent) => boolean) => everything.filter(keep).map((e) => e.seq);
    const text = (e: StoredAuditEvent) => JSON.stringify(e.data).toLowerCase() + e.type;
    const cases: [Partial<AuditQuery>, (e: StoredAuditEvent) => boolean][] = [
      [{ words: ['even'] }, (e) => text(e).includes('even')],
      [{ words: ['EVEN', 'refund', '12'] }, (e) => / 12 even/.test(text(e))],
      [{ words: ['recorded'] }, (e) => e.type === 'approval_recorded'],
      [{ agent: 'agent-3' }, (e) => e.agent === 'agent-3'],
      [{ actor: 'person:p4', words: ['odd'] }, (e) => e.actor === 'person:p4' && text(e).includes('odd')],
      [{ proposalId: 'p_2', agent: 'agent-1' }, (e) => e.proposal_id === 'p_2' && e.agent === 'agent-1'],
      [{ agent: 'agent-2', since: T0 + 100_000, until: T0 + 400_000 }, (e) => e.agent === 'agent-2' && Date.parse(e.at) >= T0 + 100_000 && Date.parse(e.at) <= T0 + 400_000],
      [{ words: ['nowhere'] }, () => false],
    ];
    for (const [q, keep] of cases) {
      for (const limit of [500, 7]) {
        expect((await all(log, { ...q, limit })).map((e) => e.seq), JSON.stringify({ ...q, limit })).toEqual(expectFor(keep));
      }
    }
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

  it('matches words at word boundaries', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    await log.append([ev({ type: 'card_posted', data: { intent: 'Refunds for approval_refused' } })]);
    expect(await all(log, { words: ['refused'] })).toHaveLength(1);
    expect(await all(log, { words: ['refunds'] })).toHaveLength(1);
    expect(await all(log, { words: ['refund'] })).toHaveLength(0);
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
