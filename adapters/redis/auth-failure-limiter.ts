import type { Cluster, Redis } from 'ioredis';
import { systemClock, type Clock } from '../../src/core/clock.ts';
import type { AuthFailureLimiter } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';
import { countInWindow } from './lua-commands.ts';

// Auth failures are audited, and the audit chain cannot be trimmed; so one address gets at
// most `perMinute` audited failures a minute (all are still refused and logged). Kept in
// Redis so the limit holds across replicas.
//
// The minute is the injected clock's, like every other time decision; each minute's counter
// lives two (real) minutes, long enough to outlast its minute on any replica.
const BUCKET_TTL_SECONDS = 120;

export function createRedisFailureLimiter(redis: Redis | Cluster, prefix: string, clock: Clock = systemClock, perMinute = 30): AuthFailureLimiter {
  const keys = redisKeys(prefix);
  return {
    async allow(address: string): Promise<boolean> {
      const key = keys.authFailures(address, Math.floor(clock.now() / 60_000));
      return (await countInWindow(redis, key, BUCKET_TTL_SECONDS)) <= perMinute;
    },
  };
}
