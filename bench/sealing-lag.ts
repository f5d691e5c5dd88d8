import type { Redis } from 'ioredis';
import { compareIds } from '../adapters/redis/audit-log.ts';
import { redisKeys } from '../adapters/redis/keys.ts';
import { fmt, summarize, wallNow, type Summary } from './lib.ts';

// How long an audit entry stays unsealed under the bench's load, read back from Redis after the
// fact: each entry's lag is the `at` of the first signed checkpoint whose seq covers it, minus
// the entry's own `at` (both written by countersign's clock). The sealer runs in the countersign
// child with its default tuning (src/app/seal-audit.ts: a checkpoint every 1000 entries or 1 s).

export interface SealingLag {
  /** Entries in the log when the measurement began. */
  entries: number;
  /** Of those, how many no checkpoint covered yet at that moment. */
  unsealedAtEnd: number;
  /** How long after that the last of them was covered (NaN: not within the wait). */
  coveredAfterMs: number;
  /** Lag of the entries covered by then, ms. */
  lag: Summary;
  checkpoints: number;
}

interface Point {
  seq: number;
  at: number;
}

const fieldsOf = (flat: string[]) => {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i]!, flat[i + 1]!);
  return f;
};

async function checkpoints(redis: Redis, key: string): Promise<Point[]> {
  const out: Point[] = [];
  let from = '-';
  for (;;) {
    const page = (await redis.xrange(key, from, '+', 'COUNT', 5000)) as [string, string[]][];
    for (const [, flat] of page) {
      const f = fieldsOf(flat);
      out.push({ seq: Number(f.get('seq')), at: Date.parse(f.get('at') ?? '') });
    }
    if (page.length < 5000) return out;
    from = `(${page[page.length - 1]![0]}`;
  }
}

/** Measures the lag of every entry in `prefix`'s audit log, waiting up to `waitMs` for the newest to be covered. */
export async function sealingLag(redis: Redis, prefix: string, waitMs: number): Promise<SealingLag> {
  const keys = redisKeys(prefix);
  const last = Number((await redis.hget(keys.auditHead, 'seq')) ?? '0');
  const coveredNow = (await checkpoints(redis, keys.auditCheckpoints)).reduce((m, c) => Math.max(m, c.seq), 0);
  const t0 = wallNow();
  let covered = coveredNow;
  while (covered < last && wallNow() - t0 < waitMs) {
    await new Promise((r) => setTimeout(r, 20));
    const newest = (await redis.xrevrange(keys.auditCheckpoints, '+', '-', 'COUNT', 1)) as [string, string[]][];
    covered = Number(fieldsOf(newest[0]?.[1] ?? []).get('seq') ?? '0');
  }
  const coveredAfterMs = covered >= last ? wallNow() - t0 : NaN;
  const cps = (await checkpoints(redis, keys.auditCheckpoints)).sort((a, b) => a.seq - b.seq || a.at - b.at);
  const lags: number[] = [];
  let from = '-';
  let c = 0;
  for (let done = false; !done; ) {
    const page = (await redis.xrange(keys.audit, from, '+', 'COUNT', 5000)) as [string, string[]][];
    done = page.length < 5000;
    if (page.length > 0) from = `(${page[page.length - 1]![0]}`;
    for (const [, flat] of page) {
      const f = fieldsOf(flat);
      const seq = Number(f.get('seq'));
      if (seq > last) {
        done = true;
        break;
      }
      // Entries come in seq order: the first covering checkpoint only moves forward.
      while (c < cps.length && cps[c]!.seq < seq) c += 1;
      const cp = cps[c];
      const lag = cp === undefined ? NaN : cp.at - Date.parse(f.get('at') ?? '');
      if (Number.isFinite(lag)) lags.push(lag);
    }
  }
  return { entries: last, unsealedAtEnd: last - coveredNow, coveredAfterMs, lag: summarize(lags), checkpoints: cps.length };
}

/** Waits until the sealer has sealed everything appended so far (at most `capMs`): the head's seq, the sealed seq, how long. */
export async function waitSealed(redis: Redis, prefix: string, capMs: number): Promise<{ head: number; seq: number; ms: number }> {
  const keys = redisKeys(prefix);
  const t0 = wallNow();
  const head = Number((await redis.hget(keys.auditHead, 'seq')) ?? '0');
  let seq = 0;
  while ((seq = Number((await redis.hget(keys.auditSealed, 'seq')) ?? '0')) < head && wallNow() - t0 < capMs) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return { head, seq, ms: wallNow() - t0 };
}

/**
 * Waits (up to capMs) until the search indexer (in the countersign child) has indexed the newest
 * entry there is now; `ms` is how long that took.
 */
export async function waitIndexed(redis: Redis, prefix: string, capMs: number): Promise<{ caught: boolean; ms: number }> {
  const keys = redisKeys(prefix);
  const t0 = wallNow();
  const [newest] = (await redis.xrevrange(keys.audit, '+', '-', 'COUNT', 1)) as [string, string[]][];
  if (newest === undefined) return { caught: true, ms: 0 };
  for (;;) {
    const position = await redis.hget(keys.auditHead, 'ix_to');
    if (position !== null && compareIds(position, newest[0]) >= 0) return { caught: true, ms: wallNow() - t0 };
    if (wallNow() - t0 >= capMs) return { caught: false, ms: wallNow() - t0 };
    await new Promise((r) => setTimeout(r, 50));
  }
}

type RowFn = (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void;

export function sealingLagRow(lag: SealingLag, row: RowFn): void {
  row(
    `9. audit sealing lag under the hot path phase (${lag.lag.count} of ${lag.entries} entries, ${lag.checkpoints} checkpoints)`,
    `p50 ${fmt(lag.lag.p50, 0)} / p99 ${fmt(lag.lag.p99, 0)} / max ${fmt(lag.lag.max, 0)} ms; ${lag.unsealedAtEnd} entries unsealed when read, all covered ${fmt(lag.coveredAfterMs, 0)} ms later`,
    '',
    '',
    `${lag.lag.p99 <= 1000 && lag.lag.count === lag.entries ? 'met' : 'MISSED'}: p99 <= 1 s, every entry sealed`,
  );
}
