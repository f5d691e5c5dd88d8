import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { keepScheduled } from './schedules.ts';
import { DeliveryRateLimitedError, PermanentDeliveryError } from '../../src/core/delivery-errors.ts';
import type { JobScheduler, Logger, NotifyJob } from '../../src/core/ports.ts';

// The queues behind the JobScheduler port. Job ids are derived from what the job is for,
// so the same work enqueued twice (a retried request, two replicas) is one job.
// BullMQ's prefix carries the same `{prefix}` hash tag as every other countersign key; the
// wiring passes it in (`bullPrefix`, named by the Redis adapter with every other key).
//
// Notify jobs back off exponentially, but never sooner than a platform's Retry-After (a custom
// backoff strategy reads it from the error); a PermanentDeliveryError ends the job at once
// (BullMQ's UnrecoverableError) instead of burning its attempts on an answer that will not change.

export const QUEUE_NAMES = { notify: 'notify', expire: 'expire' } as const;

export interface QueueConfig {
  /** BullMQ's full `prefix` option (`{prefix}:bull`), as the Redis adapter names it (keys.ts). */
  bullPrefix: string;
  /**
   * A queue's connection trouble (Redis down). Without a listener BullMQ prints each error with
   * its stack to stderr, several per reconnect attempt; the wiring logs them once, as a warning.
   */
  onError?: (error: Error) => void;
  /** A connection (or options) for Queues: fails fast when Redis is gone. */
  queueConnection: ConnectionOptions;
  /** For Workers: must allow blocking commands (`maxRetriesPerRequest: null`). */
  workerConnection: ConnectionOptions;
  notifyAttempts?: number;
  /** Base delay of the exponential backoff between notify attempts, ms. */
  notifyBackoffMs?: number;
  /** After the last attempt, how long until a card that could not be posted gets a new round, ms. */
  notifyRetryLaterMs?: number;
  /** The same after a permanent refusal (wrong channel, bot not invited): only a person fixes that, so less often. */
  notifyPermanentRetryLaterMs?: number;
  /**
   * How often the expire sweep runs, ms: it expires every pending proposal past its deadline
   * (the pending set's score), so a proposal expires within this long after its deadline.
   */
  sweepEveryMs?: number;
  /** How often the card repair runs (a pending proposal with a platform's card missing), ms. */
  repairEveryMs?: number;
  /** How often each replica checks that the sweep's and repair's schedules still exist (and makes them again), ms. */
  schedulesCheckEveryMs?: number;
}

/** Every queue gets an error listener, so connection trouble is logged rather than printed. */
export function listenForErrors(config: Pick<QueueConfig, 'onError'>, ...queues: Queue[]): void {
  const onError = config.onError ?? (() => undefined);
  for (const q of queues) q.on('error', onError);
}

export function notifyJobId(job: NotifyJob): string {
  switch (job.kind) {
    case 'post':
      // An escalation step's card is a post of its own (step 0, the rule's route, keeps the old id).
      return `post-${job.proposal_id}-${job.platform}${job.step === undefined || job.step === 0 ? '' : `-s${job.step}`}`;

    case 'update':
      return `update-${job.proposal_id}-${job.platform}-${job.version}`;
    case 'reply':
      return `reply-${job.proposal_id}-${job.platform}-${job.key}`;
  }
}

/** The notify jobs' backoff type: BullMQ hands it to the worker's `backoffStrategy` (notifyBackoff). */
export const NOTIFY_BACKOFF = 'retry-after';

/**
 * The longest Retry-After honoured. A platform answering "wait 11 days" would otherwise park a
 * card past its proposal's expiry with nothing said; capped, the attempts run out and the usual
 * card_failed (audited) and later rounds follow.
 */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** How long the platform asked to be left alone, ms (0 when it did not say), at most MAX_RETRY_AFTER_MS. */
export function retryAfterMs(error: unknown): number {
  return error instanceof DeliveryRateLimitedError ? Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS) : 0;
}

/** Exponential from `baseMs` (as BullMQ's own), but never shorter than the error's Retry-After. */
export function notifyBackoff(baseMs: number): (attemptsMade: number, type?: string, err?: Error) => number {
  return (attemptsMade, _type, err) => Math.max(Math.round(2 ** (attemptsMade - 1) * baseMs), retryAfterMs(err));
}

/** What the notify worker throws for `error`: BullMQ's own "do not retry" for a permanent refusal. */
export function notifyFailure(error: unknown): unknown {
  if (!(error instanceof PermanentDeliveryError)) return error;
  const stop = new UnrecoverableError(error.message);
  // The failed handler hands the platform's own error on (its message, that it was permanent).
  stop.cause = error;
  return stop;
}

/** The error a failed notify job ends with, as the processor first saw it. */
function originalError(err: Error): unknown {
  return err instanceof UnrecoverableError && err.cause instanceof PermanentDeliveryError ? err.cause : err;
}

export interface Queues extends JobScheduler {
  notifyQueue: Queue<NotifyJob>;
  expireQueue: Queue<{ proposal_id: string }>;
  counts(): Promise<Record<string, Record<string, number>>>;
  /**
   * Replaces a notify job that used up its attempts (or was refused for good) by the same job,
   * delayed, with fresh attempts. `error` is what ended it: it sets how long "later" is.
   */
  notifyLater(job: NotifyJob, error?: unknown): Promise<void>;
  close(): Promise<void>;
}

export function createQueues(config: QueueConfig): Queues {
  const prefix = config.bullPrefix;
  const notifyQueue = new Queue<NotifyJob>(QUEUE_NAMES.notify, { connection: config.queueConnection, prefix });
  const expireQueue = new Queue<{ proposal_id: string }>(QUEUE_NAMES.expire, { connection: config.queueConnection, prefix });
  listenForErrors(config, notifyQueue, expireQueue);
  const attempts = config.notifyAttempts ?? 8;
  const notifyBackoffOpts = { type: NOTIFY_BACKOFF, delay: config.notifyBackoffMs ?? 1000 };
  const notifyOpts = (data: NotifyJob) => ({ jobId: notifyJobId(data), attempts, backoff: notifyBackoffOpts, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } });

  return {
    notifyQueue,
    expireQueue,
    async notify(jobs) {
      // addBulk runs a MULTI even for one job: 1.8x the time of add.
      const [only] = jobs;
      if (jobs.length === 1 && only !== undefined) {
        await notifyQueue.add(only.kind, only, notifyOpts(only));
        return;
      }
      await notifyQueue.addBulk(
        jobs.map((data) => ({
          name: data.kind,
          data,
          opts: notifyOpts(data),
        })),
      );
    },
    async notifyLater(data, error) {
      const later =
        error instanceof PermanentDeliveryError
          ? (config.notifyPermanentRetryLaterMs ?? 60 * 60_000)
          : Math.max(config.notifyRetryLaterMs ?? 10 * 60_000, retryAfterMs(error));
      // The failed job keeps its id (which would swallow the new one); it is already logged and audited.
      await notifyQueue.remove(notifyJobId(data));
      await notifyQueue.add(data.kind, data, { ...notifyOpts(data), delay: later });
    },
    async counts() {
      return {
        notify: await notifyQueue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
        expire: await expireQueue.getJobCounts('waiting', 'active', 'delayed', 'failed'),
      };
    },
    async close() {
      await Promise.all([notifyQueue.close(), expireQueue.close()]);
    },
  };
}

export interface WorkerHandlers {
  notify(job: NotifyJob): Promise<void>;
  /**
   * After the last attempt failed, or at once for a PermanentDeliveryError (`error` is the
   * platform's own); resolving to true schedules the job again later (notifyRetryLaterMs, or
   * notifyPermanentRetryLaterMs for a permanent refusal).
   */
  notifyGaveUp(job: NotifyJob, error: unknown): Promise<boolean | void>;
  /** A delayed per-proposal expire job, as releases before the expire sweep enqueued them. */
  expire(proposalId: string): Promise<void>;
  /** Expires what is overdue. */
  sweep(): Promise<void>;
  /** Re-posts cards that are missing (repair-cards.ts). */
  repair(): Promise<void>;
}

/** A job a worker was still running when its close gave up waiting. */
export interface ActiveJob {
  queue: string;
  name: string;
  id: string;
}

export interface Workers {
  /**
   * Takes no more jobs and waits for the running ones, but not past `until` (ms since the
   * epoch): resolves with those still running then (they stay in Redis: their lock runs out
   * and another worker gets them; see execute-approved.ts for what an execution does then).
   */
  close(until?: number): Promise<ActiveJob[]>;
  /** The jobs running now. */
  active(): ActiveJob[];
}

/** Workers' close and active for these workers: bounded, and saying what it left running. */
export function boundedClose(workers: readonly Worker[]): Workers {
  const active = new Map<string, ActiveJob>();
  for (const w of workers) {
    const key = (job: Job) => `${w.name}/${job.id ?? ''}`;
    w.on('active', (job: Job) => active.set(key(job), { queue: w.name, name: job.name, id: job.id ?? '' }));
    w.on('completed', (job: Job) => active.delete(key(job)));
    w.on('failed', (job: Job | undefined) => {
      if (job !== undefined) active.delete(key(job));
    });
  }
  const close = async (until = Infinity): Promise<ActiveJob[]> => {
    const closed = Promise.all(workers.map((w) => w.close())).then(() => 'closed' as const);
    let timer: NodeJS.Timeout | undefined;
    const late = until === Infinity ? [] : [new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, until - Date.now()))))];
    // A close that fails (its connection gone) has still stopped taking jobs.
    const how = await Promise.race([closed.catch(() => 'closed' as const), ...late]);
    clearTimeout(timer);
    return how === 'closed' ? [] : [...active.values()];
  };
  return { close, active: () => [...active.values()] };
}

export async function startWorkers(config: QueueConfig, handlers: WorkerHandlers, logger: Logger, queues: Queues): Promise<Workers> {
  const prefix = config.bullPrefix;
  const notify = new Worker<NotifyJob>(
    QUEUE_NAMES.notify,
    async (job) => {
      try {
        await handlers.notify(job.data);
      } catch (e) {
        throw notifyFailure(e);
      }
    },
    {
      connection: config.workerConnection,
      prefix,
      concurrency: 16,
      settings: { backoffStrategy: notifyBackoff(config.notifyBackoffMs ?? 1000) },
    },
  );
  notify.on('failed', (job: Job<NotifyJob> | undefined, err) => {
    if (job === undefined) return;
    const error = originalError(err);
    const permanent = error instanceof PermanentDeliveryError;
    const final = permanent || job.attemptsMade >= (job.opts.attempts ?? 1);
    logger.warn({ job: job.id, attempt: job.attemptsMade, final, permanent, error: err.message }, 'notify job failed');
    if (!final) return;
    handlers
      .notifyGaveUp(job.data, error)
      .then((again) => (again === true ? queues.notifyLater(job.data, error) : undefined))
      .catch((e: unknown) => logger.error({ err: e }, 'recording a notify failure failed'));
  });
  const expire = new Worker<{ proposal_id: string }>(
    QUEUE_NAMES.expire,
    async (job) => (job.name === 'sweep' ? handlers.sweep() : job.name === 'repair' ? handlers.repair() : handlers.expire(job.data.proposal_id)),
    { connection: config.workerConnection, prefix, concurrency: 8 },
  );
  expire.on('failed', (job, err) => logger.warn({ job: job?.id, error: err.message }, 'expire job failed'));
  // Per reconnect attempt while Redis is away: the wiring's logger puts these at debug then (outage-log.ts).
  for (const w of [notify, expire]) w.on('error', (err) => logger.error({ error: err.message }, 'queue worker error'));
  const workers = boundedClose([notify, expire]);
  // A finished sweep or repair is not kept: one a second would pile up in Redis for good.
  const opts = { removeOnComplete: true, removeOnFail: 100 };
  const stopChecks = await keepScheduled(
    queues.expireQueue,
    [
      { id: 'expire-sweep', every: config.sweepEveryMs ?? 1000, template: { name: 'sweep', data: { proposal_id: '' }, opts } },
      { id: 'card-repair', every: config.repairEveryMs ?? 30_000, template: { name: 'repair', data: { proposal_id: '' }, opts } },
    ],
    config.schedulesCheckEveryMs ?? 30_000,
  );
  await Promise.all([notify.waitUntilReady(), expire.waitUntilReady()]);
  return {
    ...workers,
    async close(until) {
      stopChecks();
      return workers.close(until);
    },
  };
}
