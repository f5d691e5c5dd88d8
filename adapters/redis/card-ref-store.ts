import type { Cluster, Redis } from 'ioredis';
import type { CardRef } from '../../src/core/card.ts';
import type { CardRefStore } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';
import type { RedisStoreOptions } from './proposal-store.ts';

// One hash per proposal, one field per `platform:conversation`: a route may post to several
// channels of one platform, and re-posting to the same channel replaces the old reference
// (so a retried notify job does not leave two cards to update).

export function createRedisCardRefStore(redis: Redis | Cluster, opts: RedisStoreOptions): CardRefStore {
  const keys = redisKeys(opts.prefix);
  return {
    async list(proposalId: string): Promise<CardRef[]> {
      const raw = await redis.hgetall(keys.cards(proposalId));
      // Hash order is arbitrary; sort so that callers (and tests) see a stable order.
      return Object.keys(raw)
        .sort()
        .map((field) => JSON.parse(raw[field]!) as CardRef);
    },
    async save(proposalId: string, ref: CardRef): Promise<void> {
      const value: CardRef = { platform: ref.platform, conversation: ref.conversation, message: ref.message };
      await redis.hset(keys.cards(proposalId), `${ref.platform}:${ref.conversation}`, JSON.stringify(value));
    },
    async claimPost(proposalId, platform, ttlSeconds) {
      return (await redis.set(keys.postingClaim(proposalId, platform), '1', 'EX', ttlSeconds, 'NX')) === 'OK';
    },
    async releasePost(proposalId, platform) {
      await redis.del(keys.postingClaim(proposalId, platform));
    },
  };
}
