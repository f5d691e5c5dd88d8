import { canonicalJson, seal } from '../../../src/core/audit.ts';
import type { AuditEventInput, SealedAuditEventInput } from '../../../src/core/audit.ts';
import { auditSearchText, hasEveryWord, hasWord, queryWords } from '../../../src/core/audit-words.ts';
import { ValidationError } from '../../../src/core/errors.ts';
import type { AuditLog, AuditQuery, Clock, StoredAuditEvent } from '../../../src/core/ports.ts';
import type { Status } from '../../../src/core/proposal.ts';
import { createManualClock } from './clock.ts';

// The audit log in memory, held to the Redis adapter's behaviour by test/contracts/audit-log.contract.ts:
// entries as the scripts write them (core/audit.ts `seal`, chain step 3: no hashes stored, the
// chain is computed by whoever reads in order), seq from 1, a head record kept apart from the
// entries (so a cut tail shows; its legacy `hash` stays null), ids shaped like Redis stream ids
// (`<ms>-<n>`, from the injected clock), data stored as canonical JSON and parsed on every
// read (callers get copies), and search with the port's semantics (core/audit-words.ts): every
// word whole, case-insensitive, in type / actor / proposal id / agent / data; filters; newest
// first; `limit`; `cursor` / `next` paging.

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

interface Entry {
  id: string;
  seq: number;
  sealed: SealedAuditEventInput;
  /** Canonical JSON of `data`, as the Redis stream stores it. */
  data: string;
  /** Lower-cased text a word search looks in (core/audit-words.ts `auditSearchText`). */
  text: string;
}

export interface MemoryAuditLog extends AuditLog {
  /**
   * Appends in the caller's own step, with no await between check and write: the memory
   * proposal store calls it inside create/commit, so a proposal and its events change together.
   * Throws before writing anything when an event cannot be stored.
   */
  appendNow(events: readonly AuditEventInput[]): void;
  /** Where `search({ status })` reads a proposal's current status (the memory proposal store registers itself). */
  readStatusFrom(lookup: (proposalId: string) => Status | null): void;
  /** Every entry, oldest first (copies). */
  entries(): StoredAuditEvent[];
  /** Changes the stored log behind the chain's back, as someone with access to the store could. */
  readonly tamper: {
    /** Replaces the data of the entry with this seq (its digest and hash stay). */
    editData(seq: number, data: Record<string, unknown>): Promise<void>;
    /** Deletes the newest `count` entries; the head record still names the last one written. */
    dropNewest(count: number): Promise<void>;
  };
}

/** Orders ids `<ms>-<n>` numerically (as adapters/redis/audit-log.ts compareIds). */
export function compareIds(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('-').map(Number);
  const [bm = 0, bn = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** The whole-word match every store uses (re-exported for the tests that check it). */
export { hasWord };

/** Seals and checks every event (as the Redis adapter does before its script runs). */
function prepare(events: readonly AuditEventInput[]): SealedAuditEventInput[] {
  return events.map((e) => {
    if (e.proposal_id === '' || e.agent === '') throw new Error('audit event proposal_id/agent must be null, not empty');
    return seal(e);
  });
}

export function createMemoryAuditLog(opts: { clock?: Clock } = {}): MemoryAuditLog {
  const clock = opts.clock ?? createManualClock();
  const stored: Entry[] = [];
  let head: { seq: number; hash: string | null } | null = null;
  let lastId = { ms: 0, n: -1 };
  let statusOf: (proposalId: string) => Status | null = () => null;

  function nextId(): string {
    const ms = Math.max(Math.floor(clock.now()), lastId.ms);
    lastId = { ms, n: ms === lastId.ms ? lastId.n + 1 : 0 };
    return `${lastId.ms}-${lastId.n}`;
  }

  function textOf(sealed: SealedAuditEventInput, data: string): string {
    return auditSearchText(sealed.type, sealed.actor, sealed.proposal_id ?? '', sealed.agent ?? '', data);
  }

  function write(events: SealedAuditEventInput[]): void {
    for (const sealed of events) {
      const seq = (head?.seq ?? 0) + 1;
      const data = canonicalJson(sealed.data);
      stored.push({ id: nextId(), seq, sealed: { ...sealed, data: {} }, data, text: textOf(sealed, data) });
      head = { seq, hash: head?.hash ?? null };
    }
  }

  function read(e: Entry): StoredAuditEvent {
    const { type, at, proposal_id, agent, actor, digest } = e.sealed;
    const data = JSON.parse(e.data) as Record<string, unknown>;
    return { id: e.id, seq: e.seq, type, at, proposal_id, agent, actor, data, digest, prev_hash: null, hash: null, chain: 3 };
  }

  function matches(e: Entry, q: AuditQuery, words: string[]): boolean {
    const at = Date.parse(e.sealed.at);
    if (q.since !== undefined && at < q.since) return false;
    if (q.until !== undefined && at > q.until) return false;
    if (q.agent !== undefined && e.sealed.agent !== q.agent) return false;
    if (q.actor !== undefined && e.sealed.actor !== q.actor) return false;
    if (q.proposalId !== undefined && e.sealed.proposal_id !== q.proposalId) return false;
    if (!hasEveryWord(e.text, words)) return false;
    if (q.status !== undefined && (e.sealed.proposal_id === null || statusOf(e.sealed.proposal_id) !== q.status)) return false;
    return true;
  }

  return {
    appendNow(events) {
      write(prepare(events));
    },

    async append(events) {
      write(prepare(events));
    },

    async search(query) {
      const limit = Math.max(0, Math.floor(query.limit));
      if (limit === 0) return { events: [], next: null };
      if (query.cursor !== undefined && !STREAM_ID.test(query.cursor)) {
        throw new ValidationError('invalid audit cursor', [{ path: 'cursor', code: 'invalid_format', message: 'not a cursor from a previous page' }]);
      }
      const words = queryWords(query.words);
      const events: StoredAuditEvent[] = [];
      for (let i = stored.length - 1; i >= 0; i--) {
        const e = stored[i]!;
        if (query.cursor !== undefined && compareIds(e.id, query.cursor) >= 0) continue;
        if (!matches(e, query, words)) continue;
        events.push(read(e));
        if (events.length === limit) return { events, next: e.id };
      }
      return { events, next: null };
    },

    async *scan(_batch, from = {}) {
      // Stream ids here are `1-<n>`: "received" times are the entries' own `at`, less the minute a real store allows.
      const since = from.time === undefined ? -Infinity : from.time - 60_000;
      for (let i = 0; i < stored.length; i++) {
        const e = stored[i]!;
        if (e.seq >= (from.seq ?? 0) && Date.parse(e.sealed.at) >= since) yield read(e);
      }
    },

    async head() {
      return head === null ? null : { ...head };
    },

    readStatusFrom(lookup) {
      statusOf = lookup;
    },

    entries: () => stored.map(read),

    tamper: {
      async editData(seq, data) {
        const e = stored.find((x) => x.seq === seq);
        if (e === undefined) throw new Error(`no audit entry with seq ${seq}`);
        e.data = canonicalJson(data);
        e.text = textOf(e.sealed, e.data);
      },
      async dropNewest(count) {
        stored.splice(Math.max(0, stored.length - count), count);
      },
    },
  };
}
