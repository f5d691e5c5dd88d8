import type { Redis } from 'ioredis';
import type { Child } from './children.ts';
import { wallNow } from './lib.ts';

// What follows a proposal after its 201, waited for where it lands, not in countersign's
// queues (cards may go through an outbox and a relay, BullMQ only for retries; expiry may be a
// sweep of the pending set): the fake Slack's cards and the executor's requests, counted by the
// fixtures child (fixtures-child.ts), then the audit log going quiet (card_posted and the
// outcome commit are appended just after the Slack answer or the executor's). Every read is a
// count: nothing here reads every job or every entry (drainQueues once read every delayed job
// every 50 ms: 39 ms a call, ~294 µs of Redis per proposal).

export interface FollowUpCounts {
  /** chat.postMessage answered ok outside a thread: a proposal's card. */
  cards: number;
  /** chat.postMessage in a thread. */
  replies: number;
  /** Requests the executor received. */
  executed: number;
}

export class FollowUpsMissingError extends Error {
  constructor(want: Partial<FollowUpCounts>, got: FollowUpCounts, timeoutMs: number) {
    super(`follow-ups not done after ${timeoutMs} ms: want ${JSON.stringify(want)}, have ${JSON.stringify(got)}`);
    this.name = 'FollowUpsMissingError';
  }
}

export async function followUpCounts(fixtures: Child): Promise<FollowUpCounts> {
  const m = await fixtures.ask('counts');
  return { cards: Number(m['cards']), replies: Number(m['replies']), executed: Number(m['executed']) };
}

const POLL_MS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the fixtures have counted at least `want` (totals since they started), then, when
 * `audit` is given, until that stream's length holds still over two polls 20 ms apart (XLEN).
 * Returns when the counts were reached (wall clock): the end of a sustained-rate window. Throws
 * FollowUpsMissingError after `timeoutMs`: a figure that needs the work done must not be printed
 * without it.
 */
export async function waitFollowUps(fixtures: Child, want: Partial<FollowUpCounts>, audit: { redis: Redis; key: string } | null, timeoutMs = 60_000): Promise<number> {
  const deadline = wallNow() + timeoutMs;
  const reached = (c: FollowUpCounts) => (Object.keys(want) as (keyof FollowUpCounts)[]).every((k) => c[k] >= (want[k] ?? 0));
  let counts = await followUpCounts(fixtures);
  while (!reached(counts)) {
    if (wallNow() > deadline) throw new FollowUpsMissingError(want, counts, timeoutMs);
    await sleep(POLL_MS);
    counts = await followUpCounts(fixtures);
  }
  const at = wallNow();
  if (audit !== null) {
    let last = await audit.redis.xlen(audit.key);
    for (let still = 0; still < 2 && wallNow() < deadline; ) {
      await sleep(20);
      const n = await audit.redis.xlen(audit.key);
      still = n === last ? still + 1 : 0;
      last = n;
    }
  }
  return at;
}
