import type { Checkpoint } from '../../../src/core/audit-checkpoint.ts';
import type { AuditSealMetrics, CheckpointWitness, SealErrorReason } from '../../../src/core/ports.ts';

/** AuditSealMetrics that records each report in order. */
export interface MemoryAuditSealMetrics extends AuditSealMetrics {
  /** Each change of leadership reported. */
  readonly leader: boolean[];
  readonly lags: number[];
  readonly errors: SealErrorReason[];
}

export function createMemoryAuditSealMetrics(): MemoryAuditSealMetrics {
  const leader: boolean[] = [];
  const lags: number[] = [];
  const errors: SealErrorReason[] = [];
  return {
    leader,
    lags,
    errors,
    sealerLeader: (l) => void leader.push(l),
    sealLag: (s) => void lags.push(s),
    sealError: (r) => void errors.push(r),
  };
}

/** A witness that keeps what it was sent. */
export interface MemoryWitness extends CheckpointWitness {
  readonly sent: Checkpoint[];
}

export function createMemoryWitness(): MemoryWitness {
  const sent: Checkpoint[] = [];
  return { sent, send: (c) => void sent.push({ ...c }) };
}
