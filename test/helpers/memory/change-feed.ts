import type { ChangeFeed } from '../../../src/core/ports.ts';
import type { Status } from '../../../src/core/proposal.ts';

// The change feed in memory; held to the Redis adapter's behaviour by
// test/contracts/change-feed.contract.ts. Feeds made by `replica()` share one bus, as replicas share a
// Redis channel: a change published on one wakes the long-polls waiting on any. Like pub/sub,
// nothing is kept: a change published while nobody waits is gone.

type Listener = (status: Status) => void;

interface Bus {
  listeners: Map<string, Set<Listener>>;
  published: { proposalId: string; status: Status }[];
  onWait: Set<(proposalId: string) => void>;
}

export interface MemoryChangeFeed extends ChangeFeed {
  /** Another replica's feed on the same bus. */
  replica(): MemoryChangeFeed;
  /** Every change published on the bus, in order. */
  readonly published: readonly { proposalId: string; status: Status }[];
  /** Long-polls waiting for `proposalId` now, on every replica. */
  waiting(proposalId: string): number;
  /** Resolves once someone waits for `proposalId` (at once when someone already does). */
  whenWaiting(proposalId: string): Promise<void>;
}

function feedOn(bus: Bus): MemoryChangeFeed {
  return {
    published: bus.published,
    replica: () => feedOn(bus),
    async publish(proposalId, status) {
      bus.published.push({ proposalId, status });
      for (const listener of [...(bus.listeners.get(proposalId) ?? [])]) listener(status);
    },
    waitForChange(proposalId, timeoutMs, signal) {
      return new Promise((resolve) => {
        const set = bus.listeners.get(proposalId) ?? new Set<Listener>();
        bus.listeners.set(proposalId, set);
        const done = (status: Status | null) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          set.delete(listener);
          if (set.size === 0) bus.listeners.delete(proposalId);
          resolve(status);
        };
        const listener: Listener = (status) => done(status);
        const onAbort = () => done(null);
        const timer = setTimeout(() => done(null), timeoutMs);
        set.add(listener);
        if (signal?.aborted) done(null);
        else {
          signal?.addEventListener('abort', onAbort, { once: true });
          for (const notify of [...bus.onWait]) notify(proposalId);
        }
      });
    },
    waiting: (proposalId) => bus.listeners.get(proposalId)?.size ?? 0,
    whenWaiting(proposalId) {
      if ((bus.listeners.get(proposalId)?.size ?? 0) > 0) return Promise.resolve();
      return new Promise((resolve) => {
        const notify = (id: string) => {
          if (id !== proposalId) return;
          bus.onWait.delete(notify);
          resolve();
        };
        bus.onWait.add(notify);
      });
    },
  };
}

export function createMemoryChangeFeed(): MemoryChangeFeed {
  return feedOn({ listeners: new Map(), published: [], onWait: new Set() });
}
