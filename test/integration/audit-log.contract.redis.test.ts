import type { Redis } from 'ioredis';
import { canonicalJson } from '../../src/core/audit.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { auditLogContract, type AuditTamper } from '../contracts/audit-log.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The AuditLog contract against the Redis adapter: each log on a prefix of its own. Tampering
// rewrites the stream with the same ids (stream entries cannot be edited in place).
const { redis: client, newPrefix } = testRedis();
const redis = client as Redis;

type StreamEntry = [id: string, fields: string[]];

function tamperWith(prefix: string): AuditTamper {
  const stream = redisKeys(prefix).audit;
  return {
    async editData(seq, data) {
      const entries = (await redis.xrange(stream, '-', '+')) as StreamEntry[];
      await redis.del(stream);
      for (const [id, fields] of entries) {
        const copy = [...fields];
        if (copy[copy.indexOf('seq') + 1] === String(seq)) copy[copy.indexOf('data') + 1] = canonicalJson(data);
        await redis.xadd(stream, id, ...copy);
      }
    },
    async dropNewest(count) {
      const newest = (await redis.xrevrange(stream, '+', '-', 'COUNT', count)) as StreamEntry[];
      if (newest.length > 0) await redis.xdel(stream, ...newest.map(([id]) => id));
    },
  };
}

auditLogContract('redis', async () => {
  const prefix = newPrefix();
  return { audit: createRedisAuditLog(redis, { prefix }), store: createRedisProposalStore(redis, { prefix }), tamper: tamperWith(prefix) };
});
