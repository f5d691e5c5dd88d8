import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';

export interface TestRedis {
  redis: Redis | Cluster;
  /** A prefix of this test file's own; its keys are deleted after the file. */
  prefix: string;
  /** Another fresh prefix (cleaned up too), for a test that needs an empty audit stream. */
  newPrefix(): string;
  /** Another connection to the same server, closed after the file (for concurrency tests). */
  connect(): Redis | Cluster;
}

function randomPrefix(): string {
  return `t-${randomBytes(6).toString('hex')}`;
}

async function deleteKeys(redis: Redis | Cluster, pattern: string): Promise<void> {
  const node = redis as Redis;
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await node.del(...keys);
  } while (cursor !== '0');
}

/** Call at the top of a test file: a connection to the run's private redis-server. */
export function testRedis(): TestRedis {
  const url = inject('redisUrl');
  if (url === null) throw new Error(inject('redisUnavailable') ?? 'no test Redis');
  const prefixes = [randomPrefix()];
  const connections: (Redis | Cluster)[] = [];
  const connect = () => {
    const c = createRedisConnection({ url, role: 'command' });
    connections.push(c);
    return c;
  };
  const redis = connect();
  afterAll(async () => {
    for (const p of prefixes) await deleteKeys(redis, redisKeys(p).pattern);
    await Promise.all(connections.map((c) => c.quit()));
  });
  return {
    redis,
    prefix: prefixes[0]!,
    newPrefix() {
      const p = randomPrefix();
      prefixes.push(p);
      return p;
    },
    connect,
  };
}
