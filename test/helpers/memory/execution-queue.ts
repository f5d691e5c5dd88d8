import type { ExecutionQueue } from '../../../src/core/ports.ts';
import type { Status } from '../../../src/core/proposal.ts';
import { failNext } from './fail-next.ts';

// The execute / callback queues as a recorder, with the job-id rules of
// adapters/bullmq/execution-queues.ts: one execute job per proposal (enqueueing it again is
// a no-op while it is known), one callback job per proposal and status. `start` plays a
// worker taking the waiting job (it can no longer be removed); `failNext` a queue outage.

type Method = 'enqueueExecution' | 'scheduleTokenExpiry' | 'enqueueCallback' | 'removeExecution';

export interface MemoryExecutionQueue extends ExecutionQueue {
  /** Proposal ids whose execute job was accepted, in order. */
  readonly executions: string[];
  readonly tokenExpiries: { proposalId: string; at: number }[];
  /** Callback jobs accepted (one per proposal and status), in order. */
  readonly callbacks: { proposalId: string; status: Status }[];
  /** Execute jobs waiting for a worker. */
  waiting(): string[];
  /** A worker takes the waiting execute job; false when none waits. */
  start(proposalId: string): boolean;
  /** The next call (of `method`, or of any) rejects with `error` and records nothing. */
  failNext(error?: Error, method?: Method): void;
}

export function createMemoryExecutionQueue(): MemoryExecutionQueue {
  const executions: string[] = [];
  const tokenExpiries: { proposalId: string; at: number }[] = [];
  const callbacks: { proposalId: string; status: Status }[] = [];
  const known = new Set<string>();
  const waiting = new Set<string>();
  const callbackIds = new Set<string>();
  const failures = failNext<Method>();

  return {
    executions,
    tokenExpiries,
    callbacks,
    async enqueueExecution(proposalId) {
      failures.check('enqueueExecution');
      if (known.has(proposalId)) return;
      known.add(proposalId);
      waiting.add(proposalId);
      executions.push(proposalId);
    },
    async scheduleTokenExpiry(proposalId, at) {
      failures.check('scheduleTokenExpiry');
      tokenExpiries.push({ proposalId, at });
    },
    async enqueueCallback(proposalId, status) {
      failures.check('enqueueCallback');
      const id = `${proposalId} ${status}`;
      if (callbackIds.has(id)) return;
      callbackIds.add(id);
      callbacks.push({ proposalId, status });
    },
    async removeExecution(proposalId) {
      failures.check('removeExecution');
      if (!waiting.delete(proposalId)) return false;
      known.delete(proposalId);
      return true;
    },
    waiting: () => [...waiting],
    start(proposalId) {
      return waiting.delete(proposalId);
    },
    failNext(error = new Error('queue unavailable'), method) {
      failures.add(error, method);
    },
  };
}
