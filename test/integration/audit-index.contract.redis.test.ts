import { createRedisAuditIndex } from '../../adapters/redis/audit-index-store.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { canonicalJson } from '../../src/core/audit.ts';
import { auditIndexContract } from '../contracts/audit-index.contract.ts';
import { appendRawEntries, rewriteRawEntry } from '../helpers/audit-entries.ts';
import { testRedis } from '../helpers/redis.ts';

// The AuditIndexStore contract against the Redis adapter (and audit-index.lua): each case on a prefix of its own.
const { redis, newPrefix } = testRedis();

auditIndexContract('redis', async () => {
  const prefix = newPrefix();
  return {
    index: createRedisAuditIndex(redis, { prefix }),
    seals: createRedisAuditSeals(redis, { prefix }),
    append: async (events) => void (await appendRawEntries(redis, prefix, events, 3)),
    editData: (seq, data) => rewriteRawEntry(redis, prefix, seq, (f) => void f.set('data', canonicalJson(data))),
  };
});
