import type { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createExecutionQueues, DEFAULT_EXECUTION_QUEUE_TUNING, startExecutionWorkers, type ExecutionHandlers } from '../../adapters/bullmq/execution-queues.ts';
import { createQueues, startWorkers, type Queues, type WorkerHandlers, type Workers } from '../../adapters/bullmq/queues.ts';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import type { NotifyJob } from '../../src/core/ports.ts';
import { createMemoryLogger } from '../helpers/memory/logger.ts';
import { testRedis } from '../helpers/redis.ts';

// The expire queue's schedules (the expire sweep every second, the card repair) on a real
// BullMQ, and the jobs replicas of the release before them still add during a rolling upgrade;
// the execution queue's schedules (its sweep, token reconcile) kept the same way (schedules.ts).

const { redis, newPrefix } = testRedis();
const url = inject('redisUrl')!;
const queueConnection = createRedisConnection({ url, role: 'queue' });
const workerConnection = createRedisConnection({ url, role: 'worker' });
const running: { queues: { close(): Promise<void> }; workers: Workers }[] = [];
afterAll(async () => {
  for (const r of running) await r.workers.close();
  for (const r of running) await r.queues.close();
  await Promise.all([queueConnection.quit(), workerConnection.quit()]);
});

/** A handler call count that a test can wait on. */
function counter() {
  let count = 0;
  const waiting: { n: number; resolve: () => void }[] = [];
  return {
    hit() {
      count++;
      for (const w of waiting.filter((w) => count >= w.n)) w.resolve();
    },
    count: () => count,
    reached: (n: number) => new Promise<void>((resolve) => (count >= n ? resolve() : waiting.push({ n, resolve }))),
  };
}

async function start(tuning: { sweepEveryMs: number; repairEveryMs: number; schedulesCheckEveryMs?: number }, handlers: Partial<WorkerHandlers>, before?: (q: Queues) => Promise<void>) {
  const config = { bullPrefix: redisKeys(newPrefix()).bull, queueConnection, workerConnection, ...tuning };
  const queues = createQueues(config);
  await before?.(queues);
  const all: WorkerHandlers = { notify: async () => undefined, notifyGaveUp: async () => false, expire: async () => undefined, sweep: async () => undefined, repair: async () => undefined, ...handlers };
  const workers = await startWorkers(config, all, createMemoryLogger(), queues);
  running.push({ queues, workers });
  return queues;
}

describe('the expire queue', () => {
  it('keeps no finished sweep or repair job (one a second would pile up in Redis for good)', async () => {
    const sweeps = counter();
    const repairs = counter();
    const queues = await start({ sweepEveryMs: 20, repairEveryMs: 20 }, { sweep: async () => sweeps.hit(), repair: async () => repairs.hit() });
    await Promise.all([sweeps.reached(4), repairs.reached(4)]);
    const counts = await queues.expireQueue.getJobCounts('completed', 'failed');
    expect(counts).toEqual({ completed: 0, failed: 0 });
  });

  it("a schedule left by the release before (a sweep every 30 s) runs at this release's pace", async () => {
    const sweeps = counter();
    const queues = await start({ sweepEveryMs: 20, repairEveryMs: 60_000 }, { sweep: async () => sweeps.hit() }, async (q) => {
      await q.expireQueue.upsertJobScheduler('expire-sweep', { every: 30_000 }, { name: 'sweep', data: { proposal_id: '' } });
    });
    // BullMQ keeps a changed schedule's old offset (up to 30 s here), and a sweep taken late
    // then waits for it: the next one came up to 30 s after the last instead of 1 s.
    const scheduler = await queues.expireQueue.getJobScheduler('expire-sweep');
    expect(scheduler?.every).toBe(20);
    expect(scheduler?.offset ?? 0).toBeLessThan(20);
    await sweeps.reached(3);
  });

  it('sweeps again after Redis lost its keys (FLUSHDB, a restart without persistence), without a restart of countersign', async () => {
    const sweeps = counter();
    const repairs = counter();
    const queues = await start({ sweepEveryMs: 20, repairEveryMs: 20, schedulesCheckEveryMs: 50 }, { sweep: async () => sweeps.hit(), repair: async () => repairs.hit() });
    await Promise.all([sweeps.reached(1), repairs.reached(1)]);
    const bull = (queues.expireQueue.opts.prefix ?? '') + ':*';
    const keys = await (redis as Redis).keys(bull);
    await redis.del(...keys);
    const [s, r] = [sweeps.count(), repairs.count()];
    await Promise.all([sweeps.reached(s + 3), repairs.reached(r + 3)]);
  });

  it('runs the jobs an older replica still adds: a delayed expire job per proposal, a post job per card', async () => {
    const expired: string[] = [];
    const posted: NotifyJob[] = [];
    const done = counter();
    const queues = await start(
      { sweepEveryMs: 60_000, repairEveryMs: 60_000 },
      { expire: async (id) => void (expired.push(id), done.hit()), notify: async (job) => void (posted.push(job), done.hit()) },
    );
    // As the release before added them (its scheduleExpiry and its notify()).
    await queues.expireQueue.add('expire', { proposal_id: 'p_old' }, { jobId: 'expire-p_old', delay: 10, attempts: 5, removeOnComplete: true });
    await queues.notifyQueue.addBulk([{ name: 'post', data: { kind: 'post', proposal_id: 'p_old', platform: 'slack' }, opts: { jobId: 'post-p_old-slack' } }]);
    await done.reached(2);
    expect(expired).toEqual(['p_old']);
    expect(posted).toEqual([{ kind: 'post', proposal_id: 'p_old', platform: 'slack' }]);
  });
});

describe('the execution queue', () => {
  it('sweeps and reconciles again after Redis lost its keys, without a restart of countersign', async () => {
    const sweeps = counter();
    const reconciles = counter();
    const config = { bullPrefix: redisKeys(newPrefix()).bull, queueConnection, workerConnection };
    const tuning = { ...DEFAULT_EXECUTION_QUEUE_TUNING, sweepEveryMs: 20, reconcileEveryMs: 20, schedulesCheckEveryMs: 50 };
    const queues = createExecutionQueues(config, tuning);
    const noop = async () => undefined;
    const handlers: ExecutionHandlers = {
      execute: noop, isRetryable: () => false, executeGaveUp: noop, tokenExpiry: noop, callback: noop, isCallbackRetryable: () => false, callbackGaveUp: noop,
      sweep: async () => sweeps.hit(),
      reconcile: async () => reconciles.hit(),
    };
    const workers = await startExecutionWorkers(config, tuning, handlers, createMemoryLogger(), queues);
    running.push({ queues, workers });
    await Promise.all([sweeps.reached(3), reconciles.reached(3)]);
    const keys = await (redis as Redis).keys(`${config.bullPrefix}:*`);
    await redis.del(...keys);
    const [s, r] = [sweeps.count(), reconciles.count()];
    await Promise.all([sweeps.reached(s + 3), reconciles.reached(r + 3)]);
  });
});
