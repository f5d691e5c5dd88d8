import { GENESIS_HASH, chainHash, eventDigest, legacyChainHash } from '../core/audit.ts';
import { CHECKPOINT_VERSION, type AuditSigner, type Checkpoint, type CheckpointKind } from '../core/audit-checkpoint.ts';
import { iso } from '../core/clock.ts';
import type { AuditSealMetrics, AuditSeals, CheckpointWitness, Clock, Logger, SealableEntry, SealedState, SealErrorReason } from '../core/ports.ts';
import { createStepLoop } from './step-loop.ts';

// The audit sealer: every replica runs one; the holder of the lease (AuditSeals) chains new
// entries in Node and signs checkpoints. It reads entries after the sealed one in batches,
// checks each (seq continuity, digest against content, and for steps 1 and 2 the stored
// prev_hash and hash), and writes the new sealed state, with a signed checkpoint every N
// entries, T ms after the first entry no checkpoint covers yet, or every heartbeat while idle.
// Both go in one write fenced by the lease: a sealer that lost its lease writes nothing.
//
// It never signs over a broken log: at the first entry that does not fit, it signs what came
// before it, logs an error naming the entry, counts it, and signs nothing further (keeping the
// lease, so no other replica does either), looking again every heartbeat interval.

export interface AuditSealerTuning {
  /** A checkpoint after this many entries... */
  everyEntries: number;
  /** ...or this long after the first entry not yet covered (from its own time; from when it was read, if that is earlier). */
  everyMs: number;
  /** A checkpoint at least this often while nothing happens, so a cut tail shows as missing heartbeats. */
  heartbeatMs: number;
  /** How long the leader's lease lasts unrenewed: the longest a dead leader holds sealing up. */
  leaseMs: number;
  /** How often the leader looks for new entries. */
  pollMs: number;
  /** How often a follower tries to take the lease. */
  followerPollMs: number;
  /** Entries read at once. */
  batch: number;
}

export const DEFAULT_AUDIT_SEALER_TUNING: AuditSealerTuning = {
  everyEntries: 1000,
  everyMs: 800,
  heartbeatMs: 60_000,
  leaseMs: 5000,
  pollMs: 100,
  followerPollMs: 1000,
  batch: 1000,
};

export interface AuditSealerDeps {
  seals: AuditSeals;
  signer: AuditSigner;
  clock: Clock;
  logger: Logger;
  metrics: AuditSealMetrics;
  witness: CheckpointWitness;
  /** The installation's name in every checkpoint (its key prefix). */
  log: string;
  /** This replica's id in the lease: unique per process. */
  owner: string;
  /** Runs each step (the wiring makes its store calls fail fast while the store is away). */
  scope?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * `more`: a full batch was read, step again at once; `idle`: caught up; `follower`: another
 * replica holds the lease; `broken`: stopped at an entry that does not fit.
 */
export type SealStep = 'more' | 'idle' | 'follower' | 'broken';

export interface AuditSealer {
  step(): Promise<SealStep>;
  /** Steps in the background until stop(). */
  start(): void;
  /** Stops stepping; a leader signs what it sealed but no checkpoint covers yet, and gives the lease up. */
  stop(): Promise<void>;
}

interface Position {
  sealed: SealedState;
  /** Entries sealed that no checkpoint covers yet: their count, their times (ms), and when the first was due. */
  uncovered: { ats: number[]; dueAt: number };
  lastCheckpointAt: number;
}

interface Break {
  seq: number;
  id: string;
  reason: string;
  why: SealErrorReason;
  /** When to look again. */
  recheckAt: number;
}

const NOT_SEALED: SealedState = { seq: 0, hash: GENESIS_HASH, id: '0-0', at: '', legacyHash: GENESIS_HASH };

type Fit = { hash: string; legacyHash: string } | { reason: string; why: SealErrorReason };

/**
 * The chain after `e`, or why `e` does not fit it: the rules of core/audit.ts ChainVerifier, so
 * that every checkpoint names the hash `audit verify` computes. A step 1/2 entry may chain from
 * `legacy` instead of `prev` (an older replica writing during an upgrade chains from the last
 * hash a step 1/2 writer stored); the chain goes on from the hash it stored.
 */
function fit(e: SealableEntry, expectedSeq: number, prev: string, legacy: string): Fit {
  if (e.seq !== expectedSeq) return { why: 'seq', reason: `seq ${e.seq} where ${expectedSeq} was expected (an entry is missing or out of order)` };
  if (eventDigest(e.event) !== e.digest) return { why: 'digest', reason: 'content does not match its digest (the entry was edited)' };
  if (e.chain === 3) return { hash: chainHash(prev, e.seq, e.digest), legacyHash: legacy };
  if (e.chain !== 1 && e.chain !== 2) return { why: 'chain', reason: `chain step ${String(e.chain)} is not one this release knows` };
  if (e.prevHash === null || (e.prevHash !== prev && e.prevHash !== legacy)) return { why: 'chain', reason: 'prev_hash does not match the previous entry' };
  const hash = (e.chain === 2 ? chainHash : legacyChainHash)(e.prevHash, e.seq, e.digest);
  if (e.hash !== hash) return { why: 'chain', reason: 'hash does not match' };
  return { hash, legacyHash: hash };
}

export function createAuditSealer(deps: AuditSealerDeps, tuning: Partial<AuditSealerTuning> = {}): AuditSealer {
  const t = { ...DEFAULT_AUDIT_SEALER_TUNING, ...tuning };
  const { seals, signer, clock, logger, metrics, witness, owner } = deps;
  const scope = deps.scope ?? (<T>(fn: () => Promise<T>) => fn());
  let leader = false;
  let renewedAt = 0;
  let position: Position | null = null;
  let broken: Break | null = null;
  // Entries read at once: halved after a failed step (a batch of large entries can outlast the
  // store's command timeout, and would fail the same way every time), doubled back after a
  // hundred steps without a failure (sooner would fail every other step at the same entries).
  let batch = t.batch;
  let stepsOk = 0;

  function lead(now: boolean, handedOver = false): void {
    if (leader === now) return;
    leader = now;
    metrics.sealerLeader(now);
    if (now) logger.info({ owner }, 'audit sealer: this replica seals the audit log');
    else if (handedOver) logger.info({ owner }, 'audit sealer: lease given up at stop');
    else logger.warn({ owner }, 'audit sealer: the lease went to another replica');
  }

  /** Where sealing stands, read from the store (on taking the lease, after a conflict). */
  async function load(): Promise<Position | null> {
    const sealed = (await seals.sealed()) ?? NOT_SEALED;
    const latest = await seals.latestCheckpoint();
    if (latest !== null && (latest.seq > sealed.seq || (latest.seq === sealed.seq && latest.hash !== sealed.hash))) {
      // The sealed state was moved back or changed behind the sealer: signing on from it could
      // contradict a checkpoint already given out.
      stopAt({ seq: sealed.seq, id: sealed.id, why: 'state', reason: `the sealed state (seq ${sealed.seq}) disagrees with the newest checkpoint (seq ${latest.seq})` });
      return null;
    }
    const covered = latest?.seq ?? 0;
    return {
      sealed,
      // Sealed by a leader that did not live to sign it: due at once.
      uncovered: { ats: [], dueAt: sealed.seq > covered ? -Infinity : Infinity },
      lastCheckpointAt: latest === null ? -Infinity : Date.parse(latest.at),
    };
  }

  function stopAt(b: Omit<Break, 'recheckAt'>): void {
    broken = { ...b, recheckAt: clock.now() + t.heartbeatMs };
    metrics.sealError(b.why);
    const what = b.why === 'state' ? `audit sealing stopped: ${b.reason}` : `audit log is broken at seq ${b.seq} (stream id ${b.id}): ${b.reason}; sealing stopped`;
    logger.error({ seq: b.seq, id: b.id, reason: b.reason }, `${what}; nothing after it is signed (run countersign audit verify)`);
  }

  async function takeLease(): Promise<boolean> {
    const now = clock.now();
    if (leader && now - renewedAt < t.leaseMs / 3) return true;
    const renewed = leader && (await seals.renewLease(owner, t.leaseMs));
    if (!renewed) {
      if (!(await seals.acquireLease(owner, t.leaseMs))) {
        lead(false);
        position = null;
        return false;
      }
      // A new term (or one whose lease lapsed unnoticed): start from what the store says.
      position = null;
    }
    renewedAt = now;
    lead(true);
    return true;
  }

  async function write(pos: Position, next: SealedState, kind: CheckpointKind | null, covered: number[]): Promise<boolean> {
    const checkpoint: Checkpoint | null =
      kind === null ? null : await signer.sign({ v: CHECKPOINT_VERSION, log: deps.log, kind, seq: next.seq, hash: next.hash, at: next.at });
    const result = await seals.seal(owner, t.leaseMs, pos.sealed.seq, next, checkpoint);
    if (result === 'fenced') {
      lead(false);
      position = null;
      return false;
    }
    if (result === 'conflict') {
      logger.warn({ seq: pos.sealed.seq }, 'audit sealer: the sealed state moved under this replica; reading it again');
      position = null;
      return false;
    }
    renewedAt = clock.now();
    pos.sealed = next;
    if (checkpoint !== null) {
      const at = Date.parse(checkpoint.at);
      logger.info({ checkpoint }, 'audit checkpoint');
      witness.send(checkpoint);
      for (const entryAt of covered) metrics.sealLag(Math.max(0, at - entryAt) / 1000);
      pos.uncovered = { ats: [], dueAt: Infinity };
      pos.lastCheckpointAt = at;
    }
    return true;
  }

  async function seal(force: boolean): Promise<SealStep> {
    if (!(await takeLease())) return 'follower';
    if (broken !== null) {
      if (clock.now() < broken.recheckAt) return 'broken';
      // Look again, from what the store says now (someone may have repaired it).
      broken = null;
      position = null;
    }
    position ??= await load();
    if (position === null) return 'broken';
    const pos = position;
    const room = Math.max(1, Math.min(batch, t.everyEntries - pos.uncovered.ats.length));
    const entries = await seals.entriesAfter(pos.sealed.id, room);
    const seenAt = clock.now();
    let { seq, hash, id, legacyHash } = pos.sealed;
    const ats = [...pos.uncovered.ats];
    let dueAt = pos.uncovered.dueAt;
    let stop: Omit<Break, 'recheckAt'> | null = null;
    for (const e of entries) {
      const next = fit(e, seq + 1, hash, legacyHash);
      if (!('hash' in next)) {
        stop = { seq: e.seq, id: e.id, reason: next.reason, why: next.why };
        break;
      }
      const at = Date.parse(e.event.at);
      const known = Number.isNaN(at) ? seenAt : Math.min(at, seenAt);
      ats.push(known);
      if (dueAt === Infinity) dueAt = known + t.everyMs;
      ({ hash, legacyHash } = next);
      seq = e.seq;
      id = e.id;
    }
    const now = clock.now();
    const grown = seq !== pos.sealed.seq;
    const uncovered = ats.length > 0 || dueAt !== Infinity;
    let kind: CheckpointKind | null = null;
    if (uncovered && (force || stop !== null || ats.length >= t.everyEntries || now >= dueAt)) kind = 'seal';
    else if (!uncovered && stop === null && now >= pos.lastCheckpointAt + t.heartbeatMs) kind = 'heartbeat';
    if (grown || kind !== null) {
      const next: SealedState = { seq, hash, id, at: iso(now), legacyHash };
      if (!(await write(pos, next, kind, ats))) return leader ? 'more' : 'follower';
      if (kind === null) pos.uncovered = { ats, dueAt };
    }
    if (stop !== null) {
      stopAt(stop);
      return 'broken';
    }
    return entries.length === room ? 'more' : 'idle';
  }

  const background = createStepLoop(
    async () => {
      try {
        const next = await scope(() => seal(false));
        stepsOk += 1;
        if (stepsOk >= 100) [batch, stepsOk] = [Math.min(t.batch, batch * 2), 0];
        return next;
      } catch (e) {
        [batch, stepsOk] = [Math.max(10, Math.floor(batch / 2)), 0];
        throw e;
      }
    },
    (next) => (next === 'more' ? 'now' : next === 'follower' ? t.followerPollMs : t.pollMs),
    (e) => logger.warn({ error: e.message, batch }, 'audit sealer: step failed; trying again'),
  );

  return {
    step: () => seal(false),
    start: () => background.start(),
    async stop() {
      await background.stop();
      if (!leader) return;
      try {
        await scope(async () => {
          if (broken === null && position !== null) await seal(true);
          if (leader) await seals.releaseLease(owner);
        });
      } catch (e) {
        logger.warn({ error: (e as Error).message }, 'audit sealer: could not hand over at stop; the lease runs out by itself');
      }
      lead(false, true);
    },
  };
}
