import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { auditSealsContract } from '../contracts/audit-seals.contract.ts';
import { appendRawEntries } from '../helpers/audit-entries.ts';
import { testRedis } from '../helpers/redis.ts';

// The AuditSeals contract against the Redis adapter (and audit-seal.lua): each case on a prefix of its own.
const { redis, newPrefix } = testRedis();

auditSealsContract('redis', async () => {
  const prefix = newPrefix();
  return { seals: createRedisAuditSeals(redis, { prefix }), append: async (events, chain) => void (await appendRawEntries(redis, prefix, events, chain)) };
});
