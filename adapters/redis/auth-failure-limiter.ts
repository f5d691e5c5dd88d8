import type { Cluster, Redis } from 'ioredis';

// Auth failures are audited, and the audit chain cannot be trimmed; so one address gets at
// most `perMinute` audited failures a minute (all are still refused and logged). Kept in
// Redis so the limit holds across replicas.
export function createRedisFailureLimiter(redis: Redis | Cluster, prefix: string, perMinute = 30) {
  return {
    async allow(address: string): Promise<boolean> {
      const key = `{${prefix}}:authfail:${address}:${Math.floor(Date.now() / 60_000)}`;
      const [[, count]] = (await redis.multi().incr(key).expire(key, 120).exec()) as [[Error | null, number]];
      return count <= perMinute;
    },
  };
}
