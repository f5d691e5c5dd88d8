import type { JobScheduler, NotifyJob } from '../../../src/core/ports.ts';
import { failNext } from './fail-next.ts';

// The background-job port as a recorder: what a use case enqueued, in order, for a test to
// read (nothing runs; a test that wants the job done calls the use case the worker would).
// `failNext` makes the next call reject, as a queue does when Redis is gone.

export interface MemoryJobScheduler extends JobScheduler {
  /** Every notify job, in the order of the calls that enqueued them. */
  readonly notified: NotifyJob[];
  /** The next call rejects with `error` and records nothing. */
  failNext(error?: Error, method?: 'notify'): void;
  clear(): void;
}

export function createMemoryJobScheduler(): MemoryJobScheduler {
  const notified: NotifyJob[] = [];
  const failures = failNext<'notify'>();

  return {
    notified,
    async notify(jobs) {
      failures.check('notify');
      notified.push(...jobs.map((j) => structuredClone(j)));
    },
    failNext(error = new Error('queue unavailable'), method) {
      failures.add(error, method);
    },
    clear() {
      notified.length = 0;
    },
  };
}
