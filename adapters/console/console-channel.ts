import type { Cluster, Redis } from 'ioredis';
import type { CardRef } from '../../src/core/card.ts';
import type { ChatChannel } from '../../src/core/ports.ts';

// The console's "channel": people see pending proposals by reading the store, and each
// proposal's timeline from the audit log, so posting, updating and replying deliver
// nothing. What they do is announce the change: every replica's console hub hears it on
// Redis pub/sub and tells its open browsers (Server-Sent Events) which card to refresh.
// The notify queue calls these after each committed change, exactly as it calls Slack's.

export type ConsoleChange = 'posted' | 'updated' | 'reply';

export interface ConsoleNotice {
  id: string;
  change: ConsoleChange;
}

export interface ConsoleHub {
  publish(notice: ConsoleNotice): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(listener: (notice: ConsoleNotice) => void): () => void;
  close(): Promise<void>;
}

/** No Redis yet (or in unit tests): only this process hears itself. */
export function createLocalHub(): ConsoleHub {
  const listeners = new Set<(n: ConsoleNotice) => void>();
  return {
    async publish(notice) {
      for (const l of listeners) l(notice);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}

/** `subscriber` may be shared with other pub/sub users: messages on other channels are ignored. */
export async function createRedisHub(publisher: Redis | Cluster, subscriber: Redis | Cluster, prefix: string): Promise<ConsoleHub> {
  const channel = `{${prefix}}:console:changes`;
  const local = createLocalHub();
  const onMessage = (ch: string, message: string) => {
    if (ch !== channel) return;
    const [id, change] = message.split(' ');
    if (id === undefined || (change !== 'posted' && change !== 'updated' && change !== 'reply')) return;
    void local.publish({ id, change });
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);
  return {
    publish: async (notice) => void (await publisher.publish(channel, `${notice.id} ${notice.change}`)),
    subscribe: (listener) => local.subscribe(listener),
    async close() {
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe(channel).catch(() => undefined);
      await local.close();
    },
  };
}

export function createConsoleChannel(hub?: ConsoleHub): ChatChannel {
  const announce = async (id: string, change: ConsoleChange) => {
    if (hub !== undefined) await hub.publish({ id, change });
  };
  return {
    platform: 'console',
    async postCard(target, card): Promise<CardRef> {
      await announce(card.proposalId, 'posted');
      return { platform: 'console', conversation: target, message: card.proposalId };
    },
    async updateCard(ref) {
      await announce(ref.message, 'updated');
    },
    async replyInThread(ref) {
      await announce(ref.message, 'reply');
    },
  };
}
