import type { AuditEventInput } from './audit.ts';
import type { Checkpoint } from './audit-checkpoint.ts';

// The ports of the audit sealer (src/app/seal-audit.ts): where it reads entries and keeps its
// progress and checkpoints (AuditSeals), what it reports (AuditSealMetrics), and where
// checkpoints go outside the store (CheckpointWitness); retention (src/app/audit-retention.ts)
// trims through the same port. See audit-checkpoint.ts for why.

/** An audit entry as the sealer reads it: its content, digest, and what its writer chained. */
export interface SealableEntry {
  /** The store's id for the entry (Redis stream id). */
  id: string;
  seq: number;
  /** The content as stored; the sealer checks `digest` against it. */
  event: AuditEventInput;
  digest: string;
  /**
   * The chain step the entry names: 1 (no field: legacyChainHash), 2 (chainHash in the script),
   * 3 (chainHash computed by the sealer); anything else as written, which the sealer refuses.
   */
  chain: number;
  /** What the writer stored for steps 1 and 2 (checked by the sealer); null for step 3. */
  prevHash: string | null;
  hash: string | null;
}

/** How far the chain is computed: the last entry sealed and the chain's hash after it. */
export interface SealedState {
  /** 0 before the first entry. */
  seq: number;
  /** GENESIS_HASH at seq 0. */
  hash: string;
  /** The store's id of entry `seq`; reading resumes after it ('0-0' before the first). */
  id: string;
  /**
   * The last hash a writer of chain step 1 or 2 stored, up to `seq` (GENESIS_HASH if none): a
   * replica of an older release, still writing during an upgrade, chains its next entry from it
   * (core/audit.ts ChainVerifier), so sealing must know it to go on as verify does.
   */
  legacyHash: string;
  /** When it was written (the sealer's clock), ISO-8601. */
  at: string;
}

/**
 * `fenced`: the writer no longer holds the lease (nothing written); `conflict`: the sealed
 * state is no longer the one the writer started from (nothing written).
 */
export type SealWriteResult = 'ok' | 'fenced' | 'conflict';

/**
 * `fenced`: the writer does not hold the sealer's lease; `behind`: a cut at this seq or beyond
 * is already there (another run got further). Nothing is written in either case.
 */
export type CutWriteResult = 'ok' | 'fenced' | 'behind';

export interface AuditSeals {
  /** Takes the sealer's lease for `ttlMs` unless someone else holds it; true when `owner` holds it now. */
  acquireLease(owner: string, ttlMs: number): Promise<boolean>;
  /** Extends the lease, only while `owner` holds it; false when it was lost. */
  renewLease(owner: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up, only while `owner` holds it. */
  releaseLease(owner: string): Promise<void>;
  /** Null before anything was sealed. */
  sealed(): Promise<SealedState | null>;
  /** Up to `count` entries after the entry with id `afterId` ('0-0': from the first), oldest first. */
  entriesAfter(afterId: string, count: number): Promise<SealableEntry[]>;
  /**
   * Writes `next` as the sealed state and, when given, `checkpoint` (whose seq and hash must be
   * `next`'s), atomically, only while `owner` holds the lease and the sealed state is still at
   * `expectedSeq` (0 when none); extends the lease to `leaseMs` in the same step.
   */
  seal(owner: string, leaseMs: number, expectedSeq: number, next: SealedState, checkpoint: Checkpoint | null): Promise<SealWriteResult>;
  /** Checkpoints whose seq is `fromSeq` or later, oldest first, at most `limit`. */
  checkpoints(fromSeq: number, limit: number): Promise<Checkpoint[]>;
  /**
   * A page of checkpoints in order, from the first at or after `from.seq`, or after the one
   * `from.after` (a previous page's `next`, or one of its `ids`) names; `next` is null at the end. Pages by position,
   * not by seq: an idle log can hold thousands of heartbeats at one seq.
   */
  checkpointPage(from: { seq: number } | { after: string }, limit: number): Promise<{ checkpoints: Checkpoint[]; ids: string[]; next: string | null }>;
  latestCheckpoint(): Promise<Checkpoint | null>;
  /** The seq of the last entry appended (0 when none). */
  headSeq(): Promise<number>;
  /**
   * The signed `cut` checkpoint of the last retention run (null: nothing was ever trimmed).
   * Entries up to its seq may be gone; the chain goes on from its hash at seq + 1.
   */
  cut(): Promise<Checkpoint | null>;

  // Retention (src/app/audit-retention.ts). Each write runs only while `owner` holds the
  // sealer's lease (it never takes or extends it: retention runs beside the leader's sealer),
  // and each is repeatable: a run cut short anywhere leaves a state the next run finishes.

  /** True while `owner` holds the sealer's lease (a replica that does not, skips its retention run). */
  holdsLease(owner: string): Promise<boolean>;
  /**
   * Makes `cut` (kind 'cut', signed) the cut that cut() returns. Refused with an error unless a
   * stored checkpoint names the same seq and hash (so a cut is never beyond what is sealed and
   * signed) and its kind is 'cut'; `behind` when the current cut is at its seq or later.
   */
  writeCut(owner: string, cut: Checkpoint): Promise<CutWriteResult>;
  /**
   * Removes the oldest entries up to the cut: of the `limit` oldest entries, those whose seq is
   * the cut's or lower, with their ids in the search index (a store that keeps one: every
   * list the writer put them in loses them, and a list left empty is gone). Returns how many
   * were removed: 0 when no entry up to the cut is left (or there is no cut), whoever holds the
   * lease; `fenced` (nothing removed) only when there was something to remove.
   */
  trimToCut(owner: string, limit: number): Promise<number | 'fenced'>;
  /**
   * Once no entry up to the cut is left, removes the checkpoints whose seq is below the cut's
   * (those at its seq and after stay); returns how many. `pending` while entries up to the cut
   * remain (nothing removed); 0 when there is no cut.
   */
  trimCheckpointsToCut(owner: string): Promise<number | 'fenced' | 'pending'>;
}

/** Why sealing stopped or failed: an entry that does not fit (`chain`, `digest`, `seq`), or the sealed state (`state`). */
export type SealErrorReason = 'chain' | 'digest' | 'seq' | 'state';

export interface AuditSealMetrics {
  /** This replica holds the sealer's lease (1) or not (0). */
  sealerLeader(leader: boolean): void;
  /** Seconds from an entry's time to the checkpoint that covers it. */
  sealLag(seconds: number): void;
  sealError(reason: SealErrorReason): void;
}

export interface AuditRetentionMetrics {
  /** Entries removed by retention. */
  auditTrimmed(entries: number): void;
}

/** A copy of every checkpoint outside the store; delivery (and its retries) must never hold the sealer up. */
export interface CheckpointWitness {
  send(checkpoint: Checkpoint): void;
}
