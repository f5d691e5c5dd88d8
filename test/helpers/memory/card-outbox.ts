import type { CardOutbox, OutboxEntry } from '../../../src/core/ports.ts';

// The card outbox in memory (adapters/redis/card-outbox.ts holds it in a stream): the memory
// proposal store adds a new pending proposal in its create step, a relay takes entries
// (claimed by a consumer until done), and entries a consumer left for `minIdleMs` on the
// test's clock are reclaimed. take never waits: nothing else can add while it would.

export interface MemoryCardOutbox extends CardOutbox {
  /** What the create step calls. */
  add(proposalId: string): void;
  /** Proposal ids of the entries not done yet, taken or not, in order. */
  waiting(): string[];
}

export function createMemoryCardOutbox(now: () => number): MemoryCardOutbox {
  let seq = 0;
  const entries: { entry: OutboxEntry; owner: string | null; takenAt: number }[] = [];
  const hand = (list: typeof entries, consumer: string, max: number) =>
    list.slice(0, max).map((e) => {
      e.owner = consumer;
      e.takenAt = now();
      return { ...e.entry };
    });
  return {
    add(proposalId) {
      entries.push({ entry: { id: `${++seq}-0`, proposal_id: proposalId }, owner: null, takenAt: 0 });
    },
    waiting: () => entries.map((e) => e.entry.proposal_id),
    async take(consumer, max) {
      return hand(entries.filter((e) => e.owner === null), consumer, max);
    },
    async reclaim(consumer, minIdleMs, max) {
      return hand(entries.filter((e) => e.owner !== null && now() - e.takenAt >= minIdleMs), consumer, max);
    },
    async done(list) {
      const ids = new Set(list.map((e) => e.id));
      for (let i = entries.length - 1; i >= 0; i--) if (ids.has(entries[i]!.entry.id)) entries.splice(i, 1);
    },
  };
}
