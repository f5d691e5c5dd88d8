import { CHECKPOINT_VERSION, type AuditSigner, type Checkpoint } from '../core/audit-checkpoint.ts';
import type { AuditRetentionMetrics, AuditSeals, CheckpointWitness } from '../core/audit-seal-ports.ts';
import { iso } from '../core/clock.ts';
import type { Clock, Logger } from '../core/ports.ts';
import { createStepLoop } from './step-loop.ts';

// Audit retention (AUDIT_RETENTION): entries older than the retention are removed, but only up
// to a signed checkpoint, so what remains still verifies. One run:
//   a. the target: the newest seal or heartbeat checkpoint older than now - retention, beyond
//      the current cut, whose signature checks (one that does not is logged, never cut at);
//   b. a `cut` checkpoint signed at its seq and hash, written as the store's cut, logged and
//      sent to the witness like every checkpoint;
//   c. entries up to the cut removed, oldest first, in batches (with their search index ids);
//   d. once none is left, the checkpoints below the cut.
// It runs on every replica and writes only while this replica's sealer holds the lease (same
// owner id): every write is fenced by it in the store. Each step is repeatable, and the next
// run starts from what the store says (the cut), so a run cut short anywhere (a crash, a lost
// lease) is finished by the next one, on any replica.

export interface AuditRetentionTuning {
  /** How often a run starts. */
  everyMs: number;
  /** How often a replica that does not hold the lease looks again (at most everyMs). */
  followerPollMs: number;
  /** Entries removed in one store step. */
  batch: number;
  /** Store steps in one run before it yields ('more': the next run follows at once). */
  batchesPerStep: number;
  /** Checkpoints read at once while looking for the target... */
  checkpointPage: number;
  /** ...and pages read in one run (a first run over a long log cuts in several steps). */
  scanPages: number;
}

export const DEFAULT_AUDIT_RETENTION_TUNING: AuditRetentionTuning = {
  everyMs: 600_000,
  followerPollMs: 60_000,
  batch: 500,
  batchesPerStep: 20,
  checkpointPage: 1000,
  scanPages: 100,
};

export interface AuditRetentionDeps {
  seals: AuditSeals;
  signer: AuditSigner;
  clock: Clock;
  logger: Logger;
  metrics: AuditRetentionMetrics;
  witness: CheckpointWitness;
  /** The installation's name in every checkpoint (its key prefix). */
  log: string;
  /** The sealer's owner id on this replica: retention writes only while it holds the sealer's lease. */
  owner: string;
  /** How long entries are kept (ms). */
  retentionMs: number;
  /** Runs each step (the wiring makes its store calls fail fast while the store is away). */
  scope?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** `more`: stopped part-way (a bounded run), step again at once; `idle`: done for now; `fenced`: this replica does not hold the lease. */
export type RetentionStep = 'more' | 'idle' | 'fenced';

export interface AuditRetention {
  step(): Promise<RetentionStep>;
  /** Steps in the background until stop(). */
  start(): void;
  stop(): Promise<void>;
}

/** Unverifiable candidates are passed over for older ones; this many are kept to fall back on. */
const CANDIDATES = 64;

export function createAuditRetention(deps: AuditRetentionDeps, tuning: Partial<AuditRetentionTuning> = {}): AuditRetention {
  const t = { ...DEFAULT_AUDIT_RETENTION_TUNING, ...tuning };
  const { seals, signer, clock, logger, metrics, witness, owner } = deps;
  const scope = deps.scope ?? (<T>(fn: () => Promise<T>) => fn());

  /**
   * The newest seal or heartbeat checkpoint after `afterSeq` that is older than the retention
   * and verifies; `more` when the scan stopped at its bound before reaching the newer ones.
   */
  async function findTarget(afterSeq: number): Promise<{ target: Checkpoint | null; more: boolean }> {
    const before = clock.now() - deps.retentionMs;
    const candidates: Checkpoint[] = [];
    let from = afterSeq + 1;
    let more = true;
    scan: for (let page = 0; page < t.scanPages; page++) {
      const list = await seals.checkpoints(from, t.checkpointPage);
      for (const c of list) {
        // Checkpoints are signed in seq order, so their times grow with it: the first one inside
        // the retention (or with a time that cannot be read) ends the search.
        if (!(Date.parse(c.at) < before)) {
          more = false;
          break scan;
        }
        if (c.seq > afterSeq && (c.kind === 'seal' || c.kind === 'heartbeat')) {
          candidates.push(c);
          if (candidates.length > CANDIDATES) candidates.shift();
        }
      }
      const last = list.at(-1);
      if (last === undefined || list.length < t.checkpointPage) {
        more = false;
        break;
      }
      // On from the next seq: every checkpoint at one seq names the same hash, and an idle log
      // holds a heartbeat a minute at the same seq.
      from = last.seq + 1;
    }
    for (let i = candidates.length - 1; i >= 0; i--) {
      const c = candidates[i]!;
      if (c.v === CHECKPOINT_VERSION && c.log === deps.log && (await signer.verify(c))) return { target: c, more };
      logger.error(
        { checkpoint: c },
        `audit retention: the checkpoint at seq ${c.seq} does not verify (signature, key or log name); the log is not cut there (run countersign audit verify)`,
      );
    }
    return { target: null, more };
  }

  async function run(): Promise<RetentionStep> {
    if (!(await seals.holdsLease(owner))) return 'fenced';
    let cut = await seals.cut();
    const { target, more } = await findTarget(cut?.seq ?? 0);
    if (target !== null) {
      const next = await signer.sign({ v: CHECKPOINT_VERSION, log: deps.log, kind: 'cut', seq: target.seq, hash: target.hash, at: iso(clock.now()) });
      const written = await seals.writeCut(owner, next);
      if (written === 'fenced') return 'fenced';
      if (written === 'ok') {
        logger.info({ checkpoint: next }, 'audit checkpoint');
        witness.send(next);
        cut = next;
      } else {
        // Another run got further: trim to its cut.
        cut = await seals.cut();
      }
    }
    if (cut === null) return 'idle';

    const result = await trim(cut);
    // Only after a step forward: a scan that found nothing it could cut at would find the same again.
    return result === 'idle' && more && target !== null ? 'more' : result;
  }

  /** Steps c and d; logs what it removed. */
  async function trim(cut: Checkpoint): Promise<RetentionStep> {
    let entries = 0;
    let checkpoints = 0;
    let step: RetentionStep = 'idle';
    for (let i = 0; i < t.batchesPerStep; i++) {
      const n = await seals.trimToCut(owner, t.batch);
      if (n === 'fenced') step = 'fenced';
      if (n === 'fenced' || n === 0) break;
      entries += n;
      metrics.auditTrimmed(n);
    }
    if (step !== 'fenced') {
      const n = await seals.trimCheckpointsToCut(owner);
      if (n === 'fenced') step = 'fenced';
      // Entries up to the cut remain: go on at once if this run got somewhere, else at the next run.
      else if (n === 'pending') step = entries > 0 ? 'more' : 'idle';
      else checkpoints = n;
    }
    if (entries > 0 || checkpoints > 0) {
      logger.info({ seq: cut.seq, entries, checkpoints, finished: step === 'idle' }, `audit retention: trimmed the log up to seq ${cut.seq}`);
    }
    return step;
  }

  const background = createStepLoop(
    () => scope(run),
    (next) => (next === 'more' ? 'now' : next === 'fenced' ? Math.min(t.everyMs, t.followerPollMs) : t.everyMs),
    (e) => logger.warn({ error: e.message }, 'audit retention: run failed; trying again at the next one'),
  );

  return {
    step: () => run(),
    start: () => background.start(),
    stop: () => background.stop(),
  };
}
