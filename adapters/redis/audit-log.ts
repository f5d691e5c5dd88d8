import type { Cluster, Redis } from 'ioredis';
import { seal } from '../../src/core/audit.ts';
import type { AuditEventInput, AuditEventType } from '../../src/core/audit.ts';
import type { AuditLog, AuditQuery, StoredAuditEvent } from '../../src/core/ports.ts';
import { ValidationError } from '../../src/core/errors.ts';
import type { Status } from '../../src/core/proposal.ts';
import { redisKeys } from './keys.ts';
import type { RedisStoreOptions } from './proposal-store.ts';
import { redisScripts } from './scripts.ts';

// Search scans the stream newest first and filters in Node. That is linear in the entries
// scanned, so one call looks at no more than MAX_SCANNED_PER_SEARCH entries and then hands
// back a cursor; secondary indexes (per agent, per proposal, per word) are a later step.
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
    prev_hash: text('prev_hash'),
    hash: text('hash'),
  };
}

function searchableText(fields: string[]): string {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  return ['type', 'actor', 'proposal_id', 'agent', 'data'].map((k) => f.get(k) ?? '').join('\n').toLowerCase();
}

export function createRedisAuditLog(redis: Redis | Cluster, opts: RedisStoreOptions): AuditLog {
  const keys = redisKeys(opts.prefix);
  const scripts = redisScripts(redis);

  async function append(events: AuditEventInput[]): Promise<void> {
    if (events.length === 0) return;
    await scripts.appendEvents({ audit: keys.audit, auditHead: keys.auditHead }, events.map(seal));
  }

  async function search(query: AuditQuery): Promise<{ events: StoredAuditEvent[]; next: string | null }> {
    const limit = Math.max(0, Math.floor(query.limit));
    if (limit === 0) return { events: [], next: null };
    const words = query.words.map((w) => w.trim().toLowerCase()).filter((w) => w !== '');
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
    let end = query.cursor === undefined ? '+' : `(${query.cursor}`;
    let scanned = 0;
    let lastScanned: string | null = null;
    while (scanned < MAX_SCANNED_PER_SEARCH) {
      const count = Math.min(SEARCH_CHUNK, MAX_SCANNED_PER_SEARCH - scanned);
      const chunk = (await redis.xrevrange(keys.audit, end, '-', 'COUNT', count)) as StreamEntry[];
      for (const entry of chunk) {
        scanned += 1;
        lastScanned = entry[0];
        const e = parseStreamEntry(entry);
        const at = Date.parse(e.at);
        if (query.since !== undefined && at < query.since) {
          if (at < query.since - CLOCK_SKEW_MS) return { events, next: null };
          continue;
        }
        if (query.until !== undefined && at > query.until) continue;
        if (query.agent !== undefined && e.agent !== query.agent) continue;
        if (query.actor !== undefined && e.actor !== query.actor) continue;
        if (query.proposalId !== undefined && e.proposal_id !== query.proposalId) continue;
        if (words.length > 0) {
          const text = searchableText(entry[1]);
          if (!words.every((w) => text.includes(w))) continue;
        }
        if (query.status !== undefined && (e.proposal_id === null || (await statusOf(e.proposal_id)) !== query.status)) continue;
        events.push(e);
        if (events.length === limit) return { events, next: e.id };
      }
      if (chunk.length < count) return { events, next: null };
      end = `(${lastScanned}`;
    }
    // Out of scan budget: continue from the last entry looked at, not the last one returned,
    // so the next page does not scan the same entries again.
    return { events, next: lastScanned };
  }

  async function* scan(batchSize: number = DEFAULT_SCAN_BATCH): AsyncIterable<StoredAuditEvent> {
    const count = Math.max(1, Math.floor(batchSize));
    let start = '-';
    for (;;) {
      const chunk = (await redis.xrange(keys.audit, start, '+', 'COUNT', count)) as StreamEntry[];
      for (const entry of chunk) yield parseStreamEntry(entry);
      const last = chunk.at(-1);
      if (last === undefined || chunk.length < count) return;
      start = `(${last[0]}`;
    }
  }

  async function head(): Promise<{ seq: number; hash: string } | null> {
    const [seq, hash] = await redis.hmget(keys.auditHead, 'seq', 'hash');
    return seq == null || hash == null ? null : { seq: Number(seq), hash };
  }

  return { append, search, scan, head };
}
