import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAwayStore } from '../../adapters/redis/away-store.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { proposalStoreContract } from '../contracts/proposal-store.contract.ts';
import { proposalStoreFatigueContract } from '../contracts/proposal-store-fatigue.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The ProposalStore contract against the Redis adapter: each case on a prefix of its own.
const { redis, newPrefix } = testRedis();

proposalStoreContract('redis', async () => {
  const prefix = newPrefix();
  return { store: createRedisProposalStore(redis, { prefix }), audit: createRedisAuditLog(redis, { prefix }), ledger: createRedisTokenLedger(redis, { prefix }), away: createRedisAwayStore(redis, { prefix }) };
});

proposalStoreFatigueContract('redis', async () => ({ store: createRedisProposalStore(redis, { prefix: newPrefix() }) }));
