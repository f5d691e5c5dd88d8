import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { cardRefStoreContract } from '../contracts/card-ref-store.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The CardRefStore contract against the Redis adapter: each case on a prefix of its own.
const { redis, newPrefix } = testRedis();

cardRefStoreContract('redis', async () => ({ cards: createRedisCardRefStore(redis, { prefix: newPrefix() }) }));
