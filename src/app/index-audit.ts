import type { AuditIndexStore } from '../core/audit-index-ports.ts';
import type { Logger } from '../core/ports.ts';
import { createStepLoop } from './step-loop.ts';

// The audit search indexer: the commit scripts append events and nothing else; the search
// index over them is written here, after the commit, in batches (AuditIndexStore). Every
// replica runs one beside its sealer and under the sealer's owner id: only the replica whose
// sealer holds the lease writes (every write is fenced by it in the store), so there is one
// writer and no lease of its own. It does not care whether the chain verifies: an edited or
// out-of-place entry is indexed like any other, so search keeps working on a log whose sealing
// stopped (the sealer keeps its lease then, and so this replica keeps indexing).
//
// Search scans what is not indexed yet (normally under a poll interval's worth, or a batch),
// so the index may lag without a search missing anything; it only makes searches cost more.

export interface AuditIndexerTuning {
  /** Entries indexed in one store step. */
  batch: number;
  /**
   * How often the leader looks for new entries once it has caught up: what search scans is at
   * most this much of the log (or a batch, when entries come faster). Longer fills batches
   * better (entries of one batch share lists: fewer pushes per entry), shorter scans less.
   */
  pollMs: number;
  /** How often a replica that does not hold the lease looks again. */
  followerPollMs: number;
  /** How long to wait after a step failed (the store away, a head record of the wrong type). */
  retryMs: number;
}

export const DEFAULT_AUDIT_INDEXER_TUNING: AuditIndexerTuning = {
  batch: 1000,
  pollMs: 500,
  followerPollMs: 1000,
  retryMs: 1000,
};

export interface AuditIndexerDeps {
  index: AuditIndexStore;
  logger: Logger;
  /** The sealer's owner id on this replica: the indexer writes only while it holds the sealer's lease. */
  owner: string;
  /** Runs each step (the wiring makes its store calls fail fast while the store is away). */
  scope?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** `more`: a full batch (or a moved position), step again at once; `idle`: caught up; `fenced`: this replica does not hold the lease. */
export type IndexStep = 'more' | 'idle' | 'fenced';

export interface AuditIndexer {
  step(): Promise<IndexStep>;
  /** Steps in the background until stop(). */
  start(): void;
  stop(): Promise<void>;
}

export function createAuditIndexer(deps: AuditIndexerDeps, tuning: Partial<AuditIndexerTuning> = {}): AuditIndexer {
  const t = { ...DEFAULT_AUDIT_INDEXER_TUNING, ...tuning };
  const { index, logger, owner } = deps;
  const scope = deps.scope ?? (<T>(fn: () => Promise<T>) => fn());
  // Halved after a failed step (a batch of large entries can outlast the store's command
  // timeout, and would fail the same way every time), doubled back after a hundred good steps.
  let batch = t.batch;
  let stepsOk = 0;

  async function step(): Promise<IndexStep> {
    const result = await index.indexNext(owner, batch);
    if (result === 'fenced') return 'fenced';
    // Someone moved the position (retention trimmed past it, or this batch was written already): read again.
    if (result === 'moved') return 'more';
    return result.indexed >= batch ? 'more' : 'idle';
  }

  const background = createStepLoop(
    async () => {
      try {
        const next = await scope(step);
        stepsOk += 1;
        if (stepsOk >= 100) [batch, stepsOk] = [Math.min(t.batch, batch * 2), 0];
        return next;
      } catch (e) {
        [batch, stepsOk] = [Math.max(10, Math.floor(batch / 2)), 0];
        throw e;
      }
    },
    (next) => (next === 'more' ? 'now' : next === 'idle' ? t.pollMs : next === 'fenced' ? t.followerPollMs : t.retryMs),
    (e) => logger.warn({ error: e.message, batch }, 'audit indexer: step failed; search scans what is not indexed meanwhile'),
  );

  return {
    step: () => step(),
    start: () => background.start(),
    stop: () => background.stop(),
  };
}
