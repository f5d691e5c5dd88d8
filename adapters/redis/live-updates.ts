import type { Cluster, Redis } from 'ioredis';
import type { LiveNotice, LiveUpdates } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';

// Card changes for live pages (the console's open browsers), on one pub/sub channel per
// installation: every replica hears every change and tells its own pages which card to
// fetch again. A message is "<proposal id> <change>".

const CHANGES: ReadonlySet<string> = new Set<LiveNotice['change']>(['posted', 'updated', 'reply', 'notice']);

/**
 * `subscriber` is a connection in subscriber mode that may be shared with other pub/sub users
 * (the change feed): messages on other channels are theirs and ignored here.
 */
export async function createRedisLiveUpdates(publisher: Redis | Cluster, subscriber: Redis | Cluster, prefix: string): Promise<LiveUpdates> {
  const channel = redisKeys(prefix).liveUpdates;
  const listeners = new Set<(notice: LiveNotice) => void>();
  const onMessage = (ch: string, message: string) => {
    if (ch !== channel) return;
    const parts = message.split(' ');
    const [id, change] = parts;
    // Malformed (another version's or someone else's message): dropped, never half-read.
    if (parts.length !== 2 || id === undefined || id === '' || change === undefined || !CHANGES.has(change)) return;
    const notice: LiveNotice = { id, change: change as LiveNotice['change'] };
    // A throwing listener must not keep the others (or the shared connection's other users) from hearing.
    for (const listener of [...listeners]) {
      try {
        listener(notice);
      } catch {
        // The listener's own problem; it is called again at the next notice.
      }
    }
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);
  return {
    async publish(notice) {
      // The message is space-separated: such an id would arrive as a malformed message, i.e. never.
      if (notice.id === '' || /\s/.test(notice.id)) throw new Error(`a live update cannot carry the id "${notice.id}"`);
      await publisher.publish(channel, `${notice.id} ${notice.change}`);
    },
    subscribe(listener) {
      // A wrapper per call: subscribing one function twice gives two independent subscriptions.
      const own = (n: LiveNotice) => listener(n);
      listeners.add(own);
      return () => void listeners.delete(own);
    },
    async close() {
      subscriber.off('message', onMessage);
      listeners.clear();
      await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
