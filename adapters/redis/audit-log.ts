import type { Cluster, Redis } from 'ioredis';
import { seal } from '../../src/core/audit.ts';
import type { AuditEventInput, AuditEventType } from '../../src/core/audit.ts';
import type { AuditLog, AuditQuery, AuditScanFrom, StoredAuditEvent, WriteOptions } from '../../src/core/ports.ts';
import { auditSearchText, hasEveryWord, queryWords } from '../../src/core/audit-words.ts';
import { ValidationError } from '../../src/core/errors.ts';
import type { Status } from '../../src/core/proposal.ts';
import { AUDIT_INDEX_CAP, searchTokens } from './audit-index.ts';
import { redisKeys } from './keys.ts';
import type { RedisStoreOptions } from './proposal-store.ts';
import { redisScripts } from './scripts.ts';

// Search reads candidates from the index the indexer keeps (audit-index.ts: per agent, actor,
// proposal and word; written after the commit, audit-index-store.ts) when the query has a
// filter or word it can use, and checks each one against every filter; otherwise, and where
// the index does not reach (entries the indexer has not got to yet, and below what it covers),
// it scans the stream newest first and filters in Node. Either way one call looks at no more than
// MAX_SCANNED_PER_SEARCH entries and then hands back a cursor. Words match whole on every
// path (core/audit-words.ts): `refund` finds "Refund invoice" and "approval_refund", not "refunds".
export const MAX_SCANNED_PER_SEARCH = 200_000;
const SEARCH_CHUNK = 500;
const DEFAULT_SCAN_BATCH = 1000;

// Replicas stamp `at` with their own clocks, so stream order and `at` order can disagree a
// little; scanning goes on this far past `since` before it concludes nothing older matches.
const CLOCK_SKEW_MS = 60_000;

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

type StreamEntry = [id: string, fields: string[]];

/** Reads one XRANGE/XREVRANGE entry back into the event the writer stored. */
export function parseStreamEntry(entry: StreamEntry): StoredAuditEvent {
  const [id, list] = entry;
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) f.set(list[i]!, list[i + 1]!);
  const text = (name: string): string => f.get(name) ?? '';
  const nullable = (name: string): string | null => {
    const v = text(name);
    return v === '' ? null : v;
  };
  const step = text('chain');
  const chain = step === '3' ? 3 : step === '2' ? 2 : 1;
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text('data')) as Record<string, unknown>;
  } catch {
    // An entry whose data is not JSON was tampered with; keep the raw text so that the
    // verifier reports the digest mismatch instead of the whole scan throwing.
    data = { unparseable: text('data') };
  }
  return {
    id,
    seq: Number(text('seq')),
    at: text('at'),
    type: text('type') as AuditEventType,
    proposal_id: nullable('proposal_id'),
    agent: nullable('agent'),
    actor: text('actor'),
    data,
    digest: text('digest'),
    // Step 3 stores no hashes: the chain is computed by whoever reads the log in order.
    prev_hash: chain === 3 ? null : text('prev_hash'),
    hash: chain === 3 ? null : text('hash'),
    chain,
  };
}

function searchableText(fields: string[]): string {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const v = (k: string) => f.get(k) ?? '';
  return auditSearchText(v('type'), v('actor'), v('proposal_id'), v('agent'), v('data'));
}

/** Orders stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  if (am.length !== bm.length) return am.length - bm.length;
  if (am !== bm) return am < bm ? -1 : 1;
  if (as.length !== bs.length) return as.length - bs.length;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

export function createRedisAuditLog(redis: Redis | Cluster, opts: RedisStoreOptions): AuditLog {
  const keys = redisKeys(opts.prefix);
  const index = keys.auditIndex;
  const scripts = redisScripts(redis);

  async function append(events: AuditEventInput[], options: WriteOptions = {}): Promise<void> {
    if (events.length === 0) return;
    await scripts.appendEvents({ audit: keys.audit, auditHead: keys.auditHead }, events.map(seal), options.evenWhenFull === true);
  }

  type Verdict = 'next' | 'done' | 'stop';
  type Page = { events: StoredAuditEvent[]; next: string | null };

  async function search(query: AuditQuery): Promise<Page> {
    const limit = Math.max(0, Math.floor(query.limit));
    if (limit === 0) return { events: [], next: null };
    const words = queryWords(query.words);
    const statusCache = new Map<string, Status | null>();
    const statusOf = async (proposalId: string): Promise<Status | null> => {
      if (!statusCache.has(proposalId)) {
        statusCache.set(proposalId, (await redis.hget(keys.proposal(proposalId), 'status')) as Status | null);
      }
      return statusCache.get(proposalId) ?? null;
    };

    if (query.cursor !== undefined && !STREAM_ID.test(query.cursor)) {
      throw new ValidationError('invalid audit cursor', [{ path: 'cursor', code: 'invalid_format', message: 'not a cursor from a previous page' }]);
    }
    const events: StoredAuditEvent[] = [];
    // One entry against every filter: 'done' when the page is full, 'stop' when nothing older can match.
    const consider = async (entry: StreamEntry): Promise<Verdict> => {
      const e = parseStreamEntry(entry);
      const at = Date.parse(e.at);
      if (query.since !== undefined && at < query.since) return at < query.since - CLOCK_SKEW_MS ? 'stop' : 'next';
      if (query.until !== undefined && at > query.until) return 'next';
      if (query.agent !== undefined && e.agent !== query.agent) return 'next';
      if (query.actor !== undefined && e.actor !== query.actor) return 'next';
      if (query.proposalId !== undefined && e.proposal_id !== query.proposalId) return 'next';
      if (words.length > 0 && !hasEveryWord(searchableText(entry[1]), words)) return 'next';
      if (query.status !== undefined && (e.proposal_id === null || (await statusOf(e.proposal_id)) !== query.status)) return 'next';
      events.push(e);
      return events.length === limit ? 'done' : 'next';
    };

    // Every path reads newest first and looks only at entries older than the cursor.
    const endId = query.cursor ?? null;
    let scanned = 0;
    let lastScanned: string | null = null;

    /**
     * Scans newest first from `end` down to `floor` (XREVRANGE bounds): the page once it is
     * complete (full, nothing older can match, out of scan budget), null when the range ran out first.
     */
    const scanDown = async (end: string, floor: string): Promise<Page | null> => {
      while (scanned < MAX_SCANNED_PER_SEARCH) {
        const count = Math.min(SEARCH_CHUNK, MAX_SCANNED_PER_SEARCH - scanned);
        const chunk = (await redis.xrevrange(keys.audit, end, floor, 'COUNT', count)) as StreamEntry[];
        for (const entry of chunk) {
          scanned += 1;
          lastScanned = entry[0];
          const verdict = await consider(entry);
          if (verdict === 'done') return { events, next: entry[0] };
          if (verdict === 'stop') return { events, next: null };
        }
        if (chunk.length < count) return null;
        end = `(${lastScanned}`;
      }
      // Out of scan budget: continue from the last entry looked at, not the last one returned,
      // so the next page does not scan the same entries again.
      return { events, next: lastScanned };
    };

    const plan = await indexPlan(query, words);
    if (plan === null) return (await scanDown(endId === null ? '+' : `(${endId}`, '-')) ?? { events, next: null };

    // 1. Entries after ix_to, which the indexer has not reached yet (normally under a second's
    //    worth): scanned, so that an event is found as soon as it is written.
    if (endId === null || compareIds(endId, plan.ixTo) > 0) {
      const page = await scanDown(endId === null ? '+' : `(${endId}`, `(${plan.ixTo}`);
      if (page !== null) return page;
    }

    // 2. Candidates from the index, newest first, from ix_to down to where it covers everything.
    const pipeline = (redis as Redis).pipeline();
    for (const key of plan.lists) pipeline.lrange(key, 0, -1);
    const replies = (await pipeline.exec()) ?? [];
    let coveredFrom = plan.ixFrom;
    const union = new Set<string>();
    for (const [err, reply] of replies) {
      if (err !== null) throw err;
      const ids = reply as string[];
      for (const id of ids) union.add(id);
      // A list at its cap may have been trimmed: it is complete only from its oldest id on.
      const oldest = ids.at(-1);
      if (ids.length >= AUDIT_INDEX_CAP && oldest !== undefined && compareIds(oldest, coveredFrom) > 0) coveredFrom = oldest;
    }
    // Ids after ix_to (pushed since it was read) were looked at in step 1, or are newer than this search.
    const candidates = [...union]
      .filter((id) => STREAM_ID.test(id) && compareIds(id, coveredFrom) >= 0 && compareIds(id, plan.ixTo) <= 0 && (endId === null || compareIds(id, endId) < 0))
      .sort((x, y) => compareIds(y, x));
    // Read about a page's worth at a time: candidates usually match.
    const step = Math.min(SEARCH_CHUNK, Math.max(16, limit));
    for (let i = 0; i < candidates.length; i += step) {
      const ids = candidates.slice(i, i + step);
      const fetch = (redis as Redis).pipeline();
      for (const id of ids) fetch.xrange(keys.audit, id, id);
      for (const [err, reply] of (await fetch.exec()) ?? []) {
        if (err !== null) throw err;
        const entry = (reply as StreamEntry[])[0];
        if (entry === undefined) continue; // deleted from the stream
        scanned += 1;
        const verdict = await consider(entry);
        if (verdict === 'done') return { events, next: entry[0] };
        if (verdict === 'stop') return { events, next: null };
      }
      if (scanned >= MAX_SCANNED_PER_SEARCH) return { events, next: ids[ids.length - 1]! };
    }

    // 3. Below what the index covers (older than coveredFrom, and never after ix_to, which step 1
    //    scanned), the scan takes over: only when there is anything below, as an XREVRANGE whose
    //    end is older than the whole stream costs as much as a full scan.
    const [topId, withTop] = compareIds(coveredFrom, plan.ixTo) <= 0 ? [coveredFrom, false] : [plan.ixTo, true];
    if (plan.firstId === null || compareIds(plan.firstId, topId) > (withTop ? 0 : -1)) return { events, next: null };
    const top = endId !== null && compareIds(endId, topId) <= 0 ? `(${endId}` : withTop ? topId : `(${topId}`;
    return (await scanDown(top, '-')) ?? { events, next: null };
  }

  /**
   * The most selective index every match must be in (one list, or a word's list and the overflow
   * list), what the index covers (from ix_from, the first id indexed, to ix_to, the indexer's
   * position) and the first id in the stream; null when no index applies (no filter or word it
   * can use, or nothing indexed yet).
   */
  async function indexPlan(query: AuditQuery, words: string[]): Promise<{ lists: string[]; ixFrom: string; ixTo: string; firstId: string | null } | null> {
    const options: string[][] = [];
    if (query.agent !== undefined) options.push([index.agent(query.agent)]);
    if (query.actor !== undefined) options.push([index.actor(query.actor)]);
    if (query.proposalId !== undefined) options.push([index.proposal(query.proposalId)]);
    for (const w of words) for (const t of searchTokens(w)) options.push([index.word(t), index.overflow]);
    if (options.length === 0) return null;
    const distinct = [...new Set(options.flat())];
    const pipeline = (redis as Redis).pipeline();
    pipeline.hmget(keys.auditHead, 'ix_from', 'ix_to');
    pipeline.xrange(keys.audit, '-', '+', 'COUNT', 1);
    for (const key of distinct) pipeline.llen(key).lindex(key, -1);
    const replies = (await pipeline.exec()) ?? [];
    for (const [err] of replies.slice(0, 2)) if (err !== null) throw err;
    const [ixFrom = null, ixTo = null] = replies[0]![1] as (string | null)[];
    // Not indexed yet, or only ids that retention has trimmed since (ix_to below ix_from): the scan does it all.
    if (ixFrom === null || ixTo === null || !STREAM_ID.test(ixFrom) || !STREAM_ID.test(ixTo) || compareIds(ixTo, ixFrom) < 0) return null;
    const firstId = (replies[1]![1] as StreamEntry[])[0]?.[0] ?? null;
    // The list with the fewest ids per stretch of the log gives the fewest candidates per match,
    // whatever its length: a list at its cap reaches back only to its oldest id (a busy word's
    // covers its last few thousand events, a quiet agent's months). Stretches in ms of the ids.
    // A key of another type is no list (the indexer leaves it out): an option that needs it is no use.
    const ms = (id: string) => Number(id.split('-')[0]);
    const density = new Map(
      distinct.map((key, i) => {
        const [lenErr, len] = replies[2 + 2 * i]!;
        const oldest = replies[3 + 2 * i]![1] as string | null;
        if (lenErr !== null) return [key, Infinity];
        const n = Number(len);
        const from = n >= AUDIT_INDEX_CAP && oldest !== null && STREAM_ID.test(oldest) && compareIds(oldest, ixFrom) > 0 ? oldest : ixFrom;
        return [key, n / Math.max(1, ms(ixTo) - ms(from) + 1)];
      }),
    );
    const cost = (lists: string[]) => lists.reduce((n, key) => n + (density.get(key) ?? 0), 0);
    const best = options.reduce((a, b) => (cost(b) < cost(a) ? b : a));
    return cost(best) === Infinity ? null : { lists: best, ixFrom, ixTo, firstId };
  }

  /** The first entry at or after stream id `start`, or null. */
  async function firstFrom(start: string): Promise<StreamEntry | null> {
    return ((await redis.xrange(keys.audit, start, '+', 'COUNT', 1)) as StreamEntry[])[0] ?? null;
  }

  /**
   * Where to start reading for entries with seq >= `seq`: a binary search on the stream ids'
   * milliseconds (seq grows with the id), so an export from the middle of a large log reads a
   * few dozen entries to find its place, not everything before it. The id returned may precede a
   * few entries with a smaller seq (those of the same millisecond); the reader skips them.
   */
  async function startOfSeq(seq: number): Promise<string> {
    const first = await firstFrom('-');
    const [last] = (await redis.xrevrange(keys.audit, '+', '-', 'COUNT', 1)) as StreamEntry[];
    if (first === null || last === undefined) return '-';
    const seqOf = (e: StreamEntry) => Number(parseStreamEntry(e).seq);
    if (seqOf(first) >= seq) return '-';
    let lo = Number(first[0].split('-')[0]);
    let hi = Number(last[0].split('-')[0]);
    // Invariant: the first entry at or after `lo-0` has a seq below `seq`.
    while (lo < hi) {
      const mid = Math.floor((lo + hi + 1) / 2);
      const probe = await firstFrom(`${mid}-0`);
      if (probe !== null && seqOf(probe) < seq) lo = mid;
      else hi = mid - 1;
    }
    return `${lo}-0`;
  }

  async function* scan(batchSize: number = DEFAULT_SCAN_BATCH, from: AuditScanFrom = {}): AsyncIterable<StoredAuditEvent> {
    const count = Math.max(1, Math.floor(batchSize));
    let start = '-';
    if (from.seq !== undefined && from.seq > 1) start = await startOfSeq(from.seq);
    else if (from.time !== undefined) start = `${Math.max(0, Math.floor(from.time) - CLOCK_SKEW_MS)}-0`;
    const minSeq = from.seq ?? 0;
    for (;;) {
      const chunk = (await redis.xrange(keys.audit, start, '+', 'COUNT', count)) as StreamEntry[];
      for (const entry of chunk) {
        const e = parseStreamEntry(entry);
        if (e.seq >= minSeq) yield e;
      }
      const last = chunk.at(-1);
      if (last === undefined || chunk.length < count) return;
      start = `(${last[0]}`;
    }
  }

  async function head(): Promise<{ seq: number; hash: string | null } | null> {
    const [seq, hash] = await redis.hmget(keys.auditHead, 'seq', 'hash');
    return seq == null ? null : { seq: Number(seq), hash: hash ?? null };
  }

  return { append, search, scan, head };
}
