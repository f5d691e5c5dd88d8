import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { cardRefStoreContract } from '../contracts/card-ref-store.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The CardRefStore contract against the Redis adapter: each case on a prefix of its own.
const { redis, newPrefix } = testRedis();

cardRefStoreContract('redis', async () => {
  const prefix = newPrefix();
  return { cards: createRedisCardRefStore(redis, { prefix }), store: createRedisProposalStore(redis, { prefix }), audit: createRedisAuditLog(redis, { prefix }) };
});
