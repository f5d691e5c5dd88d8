import type { Cluster, Redis } from 'ioredis';
import type { ChannelBinding, ChannelBindingStore } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';

// Channels bound at run time by a chat command, one pair of hashes per platform:
//   {prefix}:<platform>:bindings   route key -> JSON binding (where the route posts now)
//   {prefix}:<platform>:channels   conversation id -> JSON binding (every channel ever bound,
//                                  kept when its route moves, so its old cards still update)
// The binding is stored as given (JSON.stringify), so for "teams" the keys and values are
// those the Teams adapter has always written. What a platform's ids mean (Teams' thread ids,
// channels fixed in the policy) is the platform adapter's business, not this store's.

function parse(raw: string | null): ChannelBinding | null {
  if (raw === null) return null;
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
    return typeof (value as { conversation?: unknown }).conversation === 'string' ? (value as ChannelBinding) : null;
  } catch {
    return null;
  }
}

export function createRedisChannelBindingStore(redis: Redis | Cluster, prefix: string): ChannelBindingStore {
  const keys = redisKeys(prefix);
  return {
    async bind(platform, key, binding) {
      const value = JSON.stringify(binding);
      // Both or neither: a route bound to a channel its old cards cannot find would strand them.
      // MULTI, not a pipeline; both keys share the `{prefix}` tag (one Cluster slot).
      const replies = await redis.multi().hset(keys.channelBindings(platform), key, value).hset(keys.boundChannels(platform), binding.conversation, value).exec();
      if (replies === null) throw new Error('the channel binding transaction was aborted');
      for (const [err] of replies) if (err !== null) throw err;
    },
    async forKey(platform, key) {
      return parse(await redis.hget(keys.channelBindings(platform), key));
    },
    async forConversation(platform, conversation) {
      return parse(await redis.hget(keys.boundChannels(platform), conversation));
    },
  };
}
