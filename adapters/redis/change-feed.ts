import type { Redis, Cluster } from 'ioredis';
import type { ChangeFeed } from '../../src/core/ports.ts';
import { STATUSES, type Status } from '../../src/core/proposal.ts';
import { redisKeys } from './keys.ts';

// Status changes are published on one channel per installation; every replica holds one
// subscriber connection and wakes its own long-polls, so a waiter on replica A sees a
// click handled by replica B.

type Listener = (status: Status) => void;

export interface RedisChangeFeed extends ChangeFeed {
  close(): Promise<void>;
}

export async function createRedisChangeFeed(publisher: Redis | Cluster, subscriber: Redis | Cluster, prefix: string): Promise<RedisChangeFeed> {
  const channel = redisKeys(prefix).changes;
  const listeners = new Map<string, Set<Listener>>();
  const onMessage = (ch: string, message: string) => {
    if (ch !== channel) return;
    const [id, status] = message.split(' ');
    if (id === undefined || !(STATUSES as readonly string[]).includes(status ?? '')) return;
    for (const listener of listeners.get(id) ?? []) listener(status as Status);
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);

  return {
    async publish(proposalId, status) {
      await publisher.publish(channel, `${proposalId} ${status}`);
    },
    waitForChange(proposalId, timeoutMs, signal) {
      return new Promise((resolve) => {
        const set = listeners.get(proposalId) ?? new Set<Listener>();
        listeners.set(proposalId, set);
        const done = (status: Status | null) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          set.delete(listener);
          if (set.size === 0) listeners.delete(proposalId);
          resolve(status);
        };
        const listener: Listener = (status) => done(status);
        const onAbort = () => done(null);
        const timer = setTimeout(() => done(null), timeoutMs);
        set.add(listener);
        if (signal?.aborted) done(null);
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    async close() {
      // The subscriber connection is shared (live updates): leave it as it was before this feed.
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
