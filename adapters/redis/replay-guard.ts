// Guards in front of authentication, kept in Redis so every replica shares them.
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

// Remembers, for longer than the timestamp window, which endpoint each signed write was
// sent to. The v1 signature does not cover method and path, so without this a captured
// `POST .../A/cancel` with body `{}` would also cancel B. The same request sent again to
// the same endpoint is let through: that is a retry, and each endpoint dedupes its own
// (idempotency keys, implicit request keys, "already cancelled").

export interface ReplayGuard {
  /** True when this signature was never seen, or was seen on this same `route`. */
  bind(agent: string, signature: string, route: string): Promise<boolean>;
}

/** A short, non-secret name for one signed request (the signature is a MAC: hashing it hides nothing, but keeps keys short). */
export function requestKey(agent: string, signature: string): string {
  return createHash('sha256').update(`${agent}\n${signature}`).digest('hex').slice(0, 40);
}

/** Twice the 300 s timestamp window: a signature older than that is refused as stale anyway. */
export const REPLAY_MEMORY_SECONDS = 600;

export function createRedisReplayGuard(redis: Redis | Cluster, prefix: string): ReplayGuard {
  return {
    async bind(agent, signature, route) {
      const key = `{${prefix}}:seen:${requestKey(agent, signature)}`;
      if ((await redis.set(key, route, 'EX', REPLAY_MEMORY_SECONDS, 'NX')) === 'OK') return true;
      return (await redis.get(key)) === route;
    },
  };
}

/** At most `perMinute` audited auth failures per address and minute (all are still refused). */
export function createRedisFailureLimiter(redis: Redis | Cluster, prefix: string, perMinute = 30) {
  return {
    async allow(address: string): Promise<boolean> {
      const key = `{${prefix}}:authfail:${address}:${Math.floor(Date.now() / 60_000)}`;
      const [[, count]] = (await redis.multi().incr(key).expire(key, 120).exec()) as [[Error | null, number]];
      return count <= perMinute;
    },
  };
}
