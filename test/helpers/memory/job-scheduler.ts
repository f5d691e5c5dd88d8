import type { JobScheduler, NotifyJob } from '../../../src/core/ports.ts';
import { failNext } from './fail-next.ts';

// The background-job port as a recorder: what a use case enqueued, in order, for a test to
// read (nothing runs; a test that wants the job done calls the use case the worker would).
// `failNext` makes the next call reject, as a queue does when Redis is gone.

export interface MemoryJobScheduler extends JobScheduler {
  /** Every scheduleExpiry call, in order. */
  readonly expiries: { proposalId: string; at: number }[];
  /** Every notify job, in the order of the calls that enqueued them. */
  readonly notified: NotifyJob[];
  /** The next call (of `method`, or of either) rejects with `error` and records nothing. */
  failNext(error?: Error, method?: 'scheduleExpiry' | 'notify'): void;
  clear(): void;
}

export function createMemoryJobScheduler(): MemoryJobScheduler {
  const expiries: { proposalId: string; at: number }[] = [];
  const notified: NotifyJob[] = [];
  const failures = failNext<'scheduleExpiry' | 'notify'>();

  return {
    expiries,
    notified,
    async scheduleExpiry(proposalId, at) {
      failures.check('scheduleExpiry');
      expiries.push({ proposalId, at });
    },
    async notify(jobs) {
      failures.check('notify');
      notified.push(...jobs.map((j) => structuredClone(j)));
    },
    failNext(error = new Error('queue unavailable'), method) {
      failures.add(error, method);
    },
    clear() {
      expiries.length = 0;
      notified.length = 0;
    },
  };
}
