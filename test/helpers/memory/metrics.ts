import type { Metrics } from '../../../src/core/ports.ts';
import type { Status } from '../../../src/core/proposal.ts';

/** A Metrics port that records each observation in order. */
export interface MemoryMetrics extends Metrics {
  /** The policy effect of each accepted proposal. */
  readonly submitted: string[];
  readonly decisions: { status: Status; seconds: number }[];
}

export function createMemoryMetrics(): MemoryMetrics {
  const submitted: string[] = [];
  const decisions: { status: Status; seconds: number }[] = [];
  return {
    submitted,
    decisions,
    proposalSubmitted(effect) {
      submitted.push(effect);
    },
    decisionRecorded(status, seconds) {
      decisions.push({ status, seconds });
    },
  };
}
