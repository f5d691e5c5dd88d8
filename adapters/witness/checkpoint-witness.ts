import { appendFile } from 'node:fs/promises';
import type { Checkpoint } from '../../src/core/audit-checkpoint.ts';
import type { CheckpointWitness, Logger } from '../../src/core/ports.ts';

// Copies of every audit checkpoint outside Redis (AUDIT_WITNESS_URL, AUDIT_WITNESS_FILE), so
// that someone who rewrites all of Redis, checkpoints included, is still caught by comparing
// with them. Each witness has its own queue, delivered in order, one at a time; a failure is
// logged, counted and retried with backoff (the ones behind it wait), and never reaches the
// sealer: send() only queues. The URL is never logged (it may carry a credential).

export type WitnessName = 'url' | 'file';

export interface WitnessSettings {
  url: string | null;
  file: string | null;
}

export interface WitnessOptions {
  logger: Logger;
  /** Each failed delivery (the metric). */
  onFailure(witness: WitnessName): void;
  /** First retry after this long, doubling up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** A POST that takes longer has failed. */
  timeoutMs?: number;
  /** Checkpoints kept for a witness that is down; past this the oldest are dropped (logged). */
  maxQueued?: number;
}

export interface CheckpointWitnesses extends CheckpointWitness {
  /** Delivers what is queued for up to `graceMs`, then stops. */
  close(graceMs?: number): Promise<void>;
}

type Deliver = (c: Checkpoint, closing: AbortSignal) => Promise<void>;

class WitnessRefused extends Error {}

function reason(e: unknown): string {
  if (e instanceof WitnessRefused) return e.message;
  const err = e as Error & { cause?: { code?: string }; code?: string };
  // fetch's own message is "fetch failed"; its cause names what happened, without the URL.
  return err.cause?.code ?? err.code ?? (err.name === 'TimeoutError' ? 'timeout' : err.name) ?? 'error';
}

function postTo(url: string, timeoutMs: number): Deliver {
  return async (c, closing) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(c),
      redirect: 'error',
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), closing]),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new WitnessRefused(`HTTP ${res.status}`);
  };
}

function appendTo(path: string): Deliver {
  return async (c) => {
    await appendFile(path, `${JSON.stringify(c)}\n`, { mode: 0o600 });
  };
}

export function createCheckpointWitness(settings: WitnessSettings, options: WitnessOptions): CheckpointWitnesses {
  const retryMs = options.retryMs ?? 1000;
  const maxRetryMs = options.maxRetryMs ?? 60_000;
  const maxQueued = options.maxQueued ?? 10_000;
  let closing = false;
  const abort = new AbortController();
  const stopWaiting = new Set<() => void>();

  const witnesses = [
    ...(settings.url === null ? [] : [{ name: 'url' as const, deliver: postTo(settings.url, options.timeoutMs ?? 5000) }]),
    ...(settings.file === null ? [] : [{ name: 'file' as const, deliver: appendTo(settings.file) }]),
  ].map((w) => ({ ...w, queue: [] as Checkpoint[], pumping: null as Promise<void> | null }));

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopWaiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopWaiting.add(done);
    });

  async function pump(w: (typeof witnesses)[number]): Promise<void> {
    let attempt = 0;
    while (w.queue.length > 0 && !closing) {
      const c = w.queue[0]!;
      try {
        await w.deliver(c, abort.signal);
        w.queue.shift();
        attempt = 0;
      } catch (e) {
        if (closing) break;
        attempt += 1;
        options.onFailure(w.name);
        const wait = Math.min(maxRetryMs, retryMs * 2 ** Math.min(attempt - 1, 20));
        options.logger.warn({ witness: w.name, seq: c.seq, kind: c.kind, attempt, error: reason(e), retry_in_ms: wait, queued: w.queue.length }, 'audit witness failed; retrying');
        await pause(wait);
      }
    }
    if (closing && w.queue.length > 0) {
      options.logger.warn({ witness: w.name, undelivered: w.queue.length, first_seq: w.queue[0]!.seq }, 'audit witness: checkpoints not delivered at shutdown (they are in Redis and in the log)');
    }
    w.pumping = null;
  }

  return {
    send(checkpoint) {
      if (closing) return;
      for (const w of witnesses) {
        w.queue.push(checkpoint);
        if (w.queue.length > Math.max(2, maxQueued)) {
          // The head may be on its way: the one after it goes.
          const [dropped] = w.queue.splice(1, 1) as [Checkpoint];
          options.onFailure(w.name);
          options.logger.error({ witness: w.name, seq: dropped.seq, at: dropped.at, queued: maxQueued }, 'audit witness: too many checkpoints waiting; the oldest was dropped (it is still in Redis and in the log)');
        }
        w.pumping ??= pump(w);
      }
    },
    async close(graceMs = 2000) {
      const drained = Promise.all(witnesses.map((w) => w.pumping));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      closing = true;
      abort.abort();
      for (const stop of [...stopWaiting]) stop();
      await drained;
    },
  };
}
