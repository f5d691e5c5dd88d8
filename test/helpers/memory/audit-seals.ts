import { GENESIS_HASH, canonicalJson, chainHash, eventDigest, legacyChainHash } from '../../../src/core/audit.ts';
import type { AuditEventInput } from '../../../src/core/audit.ts';
import type { Checkpoint } from '../../../src/core/audit-checkpoint.ts';
import type { AuditSeals, Clock, SealableEntry, SealedState } from '../../../src/core/ports.ts';
import { createManualClock } from './clock.ts';

// AuditSeals in memory, held to adapters/redis/audit-seals.ts + audit-seal.lua by
// test/contracts/audit-seals.contract.ts: its own audit entries, appended as each writer
// generation stores them (steps 1 and 2 with prev_hash/hash from the head, step 3 without),
// ids shaped like stream ids; a lease that runs out on the injected clock; seal writes fenced by
// the lease and the sealed seq, checked before anything changes; checkpoints kept in order;
// retention's cut and trims, fenced by the same lease (it keeps no search index).

interface Entry {
  id: string;
  seq: number;
  event: AuditEventInput;
  /** Canonical JSON of the data, as the stream keeps it. */
  data: string;
  digest: string;
  chain: number;
  prevHash: string | null;
  hash: string | null;
}

export interface MemoryAuditSeals extends AuditSeals {
  /** Appends entries as a writer of chain step `chain` does. */
  append(events: readonly AuditEventInput[], chain: 1 | 2 | 3): void;
  /** Changes the stored entries behind the sealer's back, as someone with access to the store could. */
  readonly tamper: {
    edit(seq: number, change: { data?: Record<string, unknown>; digest?: string; hash?: string; prevHash?: string; chain?: number }): void;
    drop(seq: number): void;
  };
}

export function createMemoryAuditSeals(opts: { clock?: Clock } = {}): MemoryAuditSeals {
  const clock = opts.clock ?? createManualClock();
  const entries: Entry[] = [];
  let head = { seq: 0, hash: null as string | null };
  let n = 0;
  let lease: { owner: string; until: number } | null = null;
  let sealed: SealedState | null = null;
  const checkpoints: Checkpoint[] = [];
  let cut: Checkpoint | null = null;

  const holder = (): string | null => {
    if (lease !== null && clock.now() >= lease.until) lease = null;
    return lease?.owner ?? null;
  };
  const read = (e: Entry): SealableEntry => ({
    id: e.id,
    seq: e.seq,
    event: { ...e.event, data: JSON.parse(e.data) as Record<string, unknown> },
    digest: e.digest,
    chain: e.chain,
    prevHash: e.prevHash,
    hash: e.hash,
  });
  const idNumber = (id: string) => Number(id.split('-')[1] ?? 0);

  return {
    append(events, chain) {
      for (const event of events) {
        const seq = head.seq + 1;
        const digest = eventDigest(event);
        let prevHash: string | null = null;
        let hash: string | null = null;
        if (chain !== 3) {
          prevHash = head.hash ?? GENESIS_HASH;
          hash = (chain === 2 ? chainHash : legacyChainHash)(prevHash, seq, digest);
        }
        n += 1;
        entries.push({ id: `1-${n}`, seq, event: { ...event, data: {} }, data: canonicalJson(event.data), digest, chain, prevHash, hash });
        head = { seq, hash: hash ?? head.hash };
      }
    },

    tamper: {
      edit(seq, change) {
        const e = entries.find((x) => x.seq === seq);
        if (e === undefined) throw new Error(`no audit entry with seq ${seq}`);
        if (change.data !== undefined) e.data = canonicalJson(change.data);
        if (change.digest !== undefined) e.digest = change.digest;
        if (change.hash !== undefined) e.hash = change.hash;
        if (change.prevHash !== undefined) e.prevHash = change.prevHash;
        if (change.chain !== undefined) e.chain = change.chain;
      },
      drop(seq) {
        const i = entries.findIndex((x) => x.seq === seq);
        if (i >= 0) entries.splice(i, 1);
      },
    },

    async acquireLease(owner, ttlMs) {
      const now = holder();
      if (now !== null && now !== owner) return false;
      lease = { owner, until: clock.now() + ttlMs };
      return true;
    },
    async renewLease(owner, ttlMs) {
      if (holder() !== owner) return false;
      lease = { owner, until: clock.now() + ttlMs };
      return true;
    },
    async releaseLease(owner) {
      if (holder() === owner) lease = null;
    },
    async sealed() {
      return sealed === null ? null : { ...sealed };
    },
    async entriesAfter(afterId, count) {
      const after = idNumber(afterId);
      return entries.filter((e) => idNumber(e.id) > after).slice(0, Math.max(1, Math.floor(count))).map(read);
    },
    async seal(owner, leaseMs, expectedSeq, next, checkpoint) {
      if (holder() !== owner) return 'fenced';
      if (checkpoint !== null && (checkpoint.seq !== next.seq || checkpoint.hash !== next.hash)) {
        throw new Error('a checkpoint must name the seq and hash of the sealed state it is written with');
      }
      if ((sealed?.seq ?? 0) !== expectedSeq) return 'conflict';
      if (next.seq < expectedSeq) throw new Error('the sealed state never moves back');
      const newest = checkpoints.at(-1);
      if (checkpoint !== null && newest !== undefined && newest.seq > checkpoint.seq) throw new Error('a checkpoint below the newest one');
      if (checkpoint !== null) checkpoints.push({ ...checkpoint });
      sealed = { ...next };
      lease = { owner, until: clock.now() + leaseMs };
      return 'ok';
    },
    async checkpoints(fromSeq, limit) {
      return checkpoints.filter((c) => c.seq >= fromSeq).slice(0, Math.max(0, Math.floor(limit))).map((c) => ({ ...c }));
    },
    async checkpointPage(from, limit) {
      // The position in the list stands for the stream id.
      const count = Math.max(1, Math.floor(limit));
      const first = 'after' in from ? Number(from.after) + 1 : checkpoints.findIndex((c) => c.seq >= from.seq);
      const page = first < 0 ? [] : checkpoints.slice(first, first + count);
      return { checkpoints: page.map((c) => ({ ...c })), ids: page.map((_, i) => String(first + i)), next: page.length < count ? null : String(first + page.length - 1) };
    },
    async latestCheckpoint() {
      const c = checkpoints.at(-1);
      return c === undefined ? null : { ...c };
    },
    async headSeq() {
      return head.seq;
    },
    async cut() {
      return cut === null ? null : { ...(cut as Checkpoint) };
    },
    async holdsLease(owner) {
      return holder() === owner;
    },
    async writeCut(owner, c) {
      if (c.kind !== 'cut' || !/^[0-9a-f]{64}$/i.test(c.hash)) throw new Error('a cut needs the fields of a checkpoint, of kind cut, with a 64-hex hash');
      if (holder() !== owner) return 'fenced';
      if (cut !== null && (cut as Checkpoint).seq >= c.seq) return 'behind';
      const stored = checkpoints.find((x) => x.seq === c.seq);
      if (stored === undefined || stored.hash !== c.hash) throw new Error('a cut must name the seq and hash of a stored checkpoint');
      cut = { ...c };
      return 'ok';
    },
    async trimToCut(owner, limit) {
      const through = (cut as Checkpoint | null)?.seq;
      if (through === undefined) return 0;
      let n = 0;
      while (n < Math.max(1, Math.floor(limit)) && n < entries.length && entries[n]!.seq <= through) n += 1;
      if (n === 0) return 0;
      if (holder() !== owner) return 'fenced';
      entries.splice(0, n);
      return n;
    },
    async trimCheckpointsToCut(owner) {
      if (holder() !== owner) return 'fenced';
      const through = (cut as Checkpoint | null)?.seq;
      if (through === undefined) return 0;
      if (entries[0] !== undefined && entries[0].seq <= through) return 'pending';
      const below = checkpoints.filter((c) => c.seq < through).length;
      checkpoints.splice(0, below);
      return below;
    },
  };
}
