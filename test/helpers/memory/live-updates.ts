import type { LiveNotice, LiveUpdates } from '../../../src/core/ports.ts';

// LiveUpdates in memory, for use-case unit tests (test/contracts states what it shares with
// the Redis one). A hub stands for the installation's channel: each `connect()` is one
// replica's view of it. A notice is delivered before publish resolves, so a test can assert
// right after `await publish(...)`.

export interface MemoryLiveUpdatesHub {
  connect(): LiveUpdates;
  /** Every notice published through the hub, in order (for assertions). */
  readonly published: readonly LiveNotice[];
}

export function createMemoryLiveUpdatesHub(): MemoryLiveUpdatesHub {
  const replicas = new Set<Set<(notice: LiveNotice) => void>>();
  const published: LiveNotice[] = [];
  return {
    published,
    connect() {
      const listeners = new Set<(notice: LiveNotice) => void>();
      replicas.add(listeners);
      return {
        async publish(notice) {
          if (notice.id === '' || /\s/.test(notice.id)) throw new Error(`a live update cannot carry the id "${notice.id}"`);
          published.push({ ...notice });
          for (const replica of [...replicas]) {
            for (const listener of [...replica]) {
              try {
                listener({ ...notice });
              } catch {
                // As in Redis: one broken page does not keep the others from hearing.
              }
            }
          }
        },
        subscribe(listener) {
          const own = (n: LiveNotice) => listener(n);
          listeners.add(own);
          return () => void listeners.delete(own);
        },
        async close() {
          listeners.clear();
          replicas.delete(listeners);
        },
      };
    },
  };
}

/** One replica on a hub of its own. */
export function createMemoryLiveUpdates(): LiveUpdates {
  return createMemoryLiveUpdatesHub().connect();
}
