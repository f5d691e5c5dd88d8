import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { ExecutionQueue, Logger } from '../../src/core/ports.ts';
import type { Status } from '../../src/core/proposal.ts';
import { boundedClose, listenForErrors, type QueueConfig, type Workers } from './queues.ts';
import { keepScheduled } from './schedules.ts';

// The execute and callback queues. Job data is ids only: the token stays in the Redis
// ledger. Job ids come from what the job is for (no ":"; proposal ids never are all digits),
// so the same work enqueued twice is one job while the first is kept.

export const EXECUTION_QUEUE_NAMES = { execute: 'execute', callback: 'callback' } as const;

export interface ExecutionQueueTuning {
  /** Attempts to reach the executor (only failures before anything was sent are retried). */
  executeAttempts: number;
  executeBackoffMs: number;
  callbackAttempts: number;
  callbackBackoffMs: number;
  /** How often abandoned executions are looked for. */
  sweepEveryMs: number;
  /** How often approvals left without a token (a crash between the two) are looked for. */
  reconcileEveryMs: number;
  /** BullMQ lock: a worker that dies loses its job after this long and the job is re-delivered. */
  lockDurationMs: number;
  /** How often each replica checks that the sweep's and reconcile's schedules exist (schedules.ts), ms. */
  schedulesCheckEveryMs?: number;
}

export const DEFAULT_EXECUTION_QUEUE_TUNING: ExecutionQueueTuning = {
  executeAttempts: 5,
  executeBackoffMs: 1000,
  callbackAttempts: 10,
  callbackBackoffMs: 2000,
  sweepEveryMs: 15_000,
  reconcileEveryMs: 5 * 60_000,
  lockDurationMs: 30_000,
};

interface ExecuteData {
  proposal_id: string;
}
interface CallbackData {
  proposal_id: string;
  status: Status;
}

export interface ExecutionQueues extends ExecutionQueue {
  executeQueue: Queue<ExecuteData>;
  callbackQueue: Queue<CallbackData>;
  counts(): Promise<Record<string, Record<string, number>>>;
  close(): Promise<void>;
}

export function createExecutionQueues(config: QueueConfig, tuning: ExecutionQueueTuning, now: () => number = Date.now): ExecutionQueues {
  const prefix = config.bullPrefix;
  const executeQueue = new Queue<ExecuteData>(EXECUTION_QUEUE_NAMES.execute, { connection: config.queueConnection, prefix });
  const callbackQueue = new Queue<CallbackData>(EXECUTION_QUEUE_NAMES.callback, { connection: config.queueConnection, prefix });
  listenForErrors(config, executeQueue, callbackQueue);
  // Kept for a day: while a job is kept, enqueueing the same proposal again is a no-op.
  const keep = { removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } };

  return {
    executeQueue,
    callbackQueue,
    async enqueueExecution(proposalId) {
      await executeQueue.add(
        'execute',
        { proposal_id: proposalId },
        { jobId: proposalId, attempts: tuning.executeAttempts, backoff: { type: 'exponential', delay: tuning.executeBackoffMs }, ...keep },
      );
    },
    async scheduleTokenExpiry(proposalId, at) {
      await executeQueue.add(
        'token-expiry',
        { proposal_id: proposalId },
        { jobId: `tokexp-${proposalId}`, delay: Math.max(0, at - now()), attempts: 5, backoff: { type: 'exponential', delay: 1000 }, ...keep },
      );
    },
    async enqueueCallback(proposalId, status) {
      await callbackQueue.add(
        'callback',
        { proposal_id: proposalId, status },
        { jobId: `cb-${proposalId}-${status}`, attempts: tuning.callbackAttempts, backoff: { type: 'exponential', delay: tuning.callbackBackoffMs }, ...keep },
      );
    },
    async removeExecution(proposalId) {
      // remove() refuses a locked (running) job; that one is stopped by the claim instead.
      try {
        return (await executeQueue.remove(proposalId)) === 1;
      } catch {
        return false;
      }
    },
    async counts() {
      return {
        execute: await executeQueue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
        callback: await callbackQueue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
      };
    },
    async close() {
      await Promise.all([executeQueue.close(), callbackQueue.close()]);
    },
  };
}

export interface ExecutionHandlers {
  execute(proposalId: string): Promise<void>;
  /** True for errors that prove nothing was sent: only those are retried. */
  isRetryable(error: unknown): boolean;
  executeGaveUp(proposalId: string, error: unknown): Promise<void>;
  tokenExpiry(proposalId: string): Promise<void>;
  sweep(): Promise<void>;
  reconcile(): Promise<void>;
  callback(proposalId: string, status: Status): Promise<void>;
  /** False for callbacks that can never succeed (nothing to sign with): no retries. */
  isCallbackRetryable(error: unknown): boolean;
  callbackGaveUp(proposalId: string, status: Status, attempts: number, error: unknown): Promise<void>;
}

/** Closed with a bound like the notify workers; an execute job left running keeps its claim, settled by the sweep. */
export type ExecutionWorkers = Workers;

export async function startExecutionWorkers(
  config: QueueConfig,
  tuning: ExecutionQueueTuning,
  handlers: ExecutionHandlers,
  logger: Logger,
  queues: ExecutionQueues,
): Promise<ExecutionWorkers> {
  const prefix = config.bullPrefix;
  const lock = { lockDuration: tuning.lockDurationMs, stalledInterval: Math.max(500, Math.floor(tuning.lockDurationMs / 2)) };
  const execute = new Worker<ExecuteData>(
    EXECUTION_QUEUE_NAMES.execute,
    async (job) => {
      if (job.name === 'sweep') return handlers.sweep();
      if (job.name === 'reconcile') return handlers.reconcile();
      if (job.name === 'token-expiry') return handlers.tokenExpiry(job.data.proposal_id);
      try {
        await handlers.execute(job.data.proposal_id);
      } catch (e) {
        // Anything that may have reached the executor must not run again: end the job here.
        if (!handlers.isRetryable(e)) {
          logger.error({ proposal_id: job.data.proposal_id, error: (e as Error).message }, 'execution failed');
          return;
        }
        throw e;
      }
    },
    { connection: config.workerConnection, prefix, concurrency: 16, ...lock },
  );
  execute.on('failed', (job: Job<ExecuteData> | undefined, err) => {
    if (job === undefined || job.name !== 'execute') return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1);
    logger.warn({ job: job.id, attempt: job.attemptsMade, final, error: err.message }, 'execution could not start (nothing was sent)');
    if (final) handlers.executeGaveUp(job.data.proposal_id, err).catch((e: unknown) => logger.error({ error: (e as Error).message }, 'recording an execution that never started failed'));
  });

  const callback = new Worker<CallbackData>(
    EXECUTION_QUEUE_NAMES.callback,
    async (job) => {
      try {
        await handlers.callback(job.data.proposal_id, job.data.status);
      } catch (e) {
        if (!handlers.isCallbackRetryable(e)) throw new UnrecoverableError((e as Error).message);
        throw e;
      }
    },
    { connection: config.workerConnection, prefix, concurrency: 16, ...lock },
  );
  callback.on('failed', (job: Job<CallbackData> | undefined, err) => {
    if (job === undefined) return;
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    logger.warn({ job: job.id, attempt: job.attemptsMade, final, error: err.message }, 'agent callback failed');
    if (final) {
      handlers
        .callbackGaveUp(job.data.proposal_id, job.data.status, job.attemptsMade, err)
        .catch((e: unknown) => logger.error({ error: (e as Error).message }, 'recording a callback failure failed'));
    }
  });
  // Per reconnect attempt while Redis is away: the wiring's logger puts these at debug then (outage-log.ts).
  for (const w of [execute, callback]) w.on('error', (err) => logger.error({ error: err.message }, 'execution worker error'));
  const workers = boundedClose([execute, callback]);

  const opts = { removeOnComplete: true, removeOnFail: 100 };
  const stopChecks = await keepScheduled(
    queues.executeQueue,
    [
      { id: 'execution-sweep', every: tuning.sweepEveryMs, template: { name: 'sweep', data: { proposal_id: '' }, opts } },
      { id: 'execution-reconcile', every: tuning.reconcileEveryMs, template: { name: 'reconcile', data: { proposal_id: '' }, opts } },
    ],
    tuning.schedulesCheckEveryMs ?? 30_000,
  );
  await Promise.all([execute.waitUntilReady(), callback.waitUntilReady()]);
  // What a dead process left behind is settled now rather than at the first tick.
  await handlers.sweep().catch((e: unknown) => logger.error({ error: (e as Error).message }, 'execution sweep failed'));
  await handlers.reconcile().catch((e: unknown) => logger.error({ error: (e as Error).message }, 'token reconciliation failed'));
  return {
    ...workers,
    async close(until) {
      stopChecks();
      return workers.close(until);
    },
  };
}
