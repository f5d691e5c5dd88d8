import type { Queue } from 'bullmq';

// The repeating jobs (sweeps, repair, reconcile) as BullMQ job schedulers: one job at a time for
// every replica, wherever it runs. Kept, not just made at start: a Redis that lost its keys
// (FLUSHDB, a restart without persistence) loses the schedulers with them, and without a check
// nothing would make them again before countersign restarted.

export interface Schedule {
  id: string;
  every: number;
  template: Parameters<Queue['upsertJobScheduler']>[2];
}

/**
 * Makes `s` on `queue`. One whose interval changed (an earlier release's) is made anew: BullMQ
 * keeps its old offset, and a job taken late then puts the next one that far off.
 */
async function schedule(queue: Queue, s: Schedule, onlyIfMissing: boolean): Promise<void> {
  const existing = await queue.getJobScheduler(s.id);
  if (existing !== undefined && existing.every !== s.every) await queue.removeJobScheduler(s.id);
  else if (existing !== undefined && onlyIfMissing) return;
  await queue.upsertJobScheduler(s.id, { every: s.every }, s.template);
}

/** Makes the schedules now, then checks every `checkEveryMs` that they exist; the result stops the checks. */
export async function keepScheduled(queue: Queue, schedules: readonly Schedule[], checkEveryMs: number): Promise<() => void> {
  const all = (onlyIfMissing: boolean) => Promise.all(schedules.map((s) => schedule(queue, s, onlyIfMissing)));
  await all(false);
  const check = setInterval(() => void all(true).catch(() => undefined), checkEveryMs);
  check.unref();
  return () => clearInterval(check);
}
