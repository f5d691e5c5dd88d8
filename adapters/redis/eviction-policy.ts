import { Cluster, type Redis } from 'ioredis';
import { ConfigError } from '../../src/core/errors.ts';
import type { Logger } from '../../src/core/ports.ts';

// countersign keeps everything in Redis and most of it has no TTL: a policy that evicts would
// drop proposals, audit index entries or the records that make a retry idempotent, and nothing
// would say so. volatile-* is refused as well: it evicts exactly the keys with a TTL (sessions,
// idempotency keys, execution tokens, the auth-failure counters), and once those are gone it
// refuses writes like noeviction anyway.

const SAFE_POLICY = 'noeviction';

async function policies(redis: Redis | Cluster): Promise<{ node: string; policy: string | null }[]> {
  // A cluster knows its masters once it is ready; a command waits for that.
  if (redis instanceof Cluster) await redis.ping();
  const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
  return Promise.all(
    nodes.map(async (node) => {
      const info = await node.info('memory');
      return { node: `${node.options.host ?? ''}:${node.options.port ?? ''}`, policy: /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null };
    }),
  );
}

/** Refuses (ConfigError, one line) a Redis that may evict countersign's keys, unless allowed; then it only warns. */
export async function checkEvictionPolicy(redis: Redis | Cluster, allowEviction: boolean, logger: Logger): Promise<void> {
  for (const { node, policy } of await policies(redis)) {
    if (policy === SAFE_POLICY) continue;
    if (policy === null) {
      logger.warn({ node }, 'could not read Redis maxmemory-policy (INFO memory has no maxmemory_policy): make sure it is noeviction');
      continue;
    }
    const where = redis instanceof Cluster ? ` on ${node}` : '';
    if (allowEviction) {
      logger.warn({ node, policy }, `Redis maxmemory-policy is ${policy}${where}: when memory runs out Redis deletes keys countersign relies on (REDIS_ALLOW_EVICTION=true)`);
      continue;
    }
    throw new ConfigError(
      `Redis maxmemory-policy is ${policy}${where}: when memory runs out Redis would delete keys countersign relies on (proposals, idempotency records, execution tokens, the audit index). ` +
        `Set it to noeviction (redis.conf "maxmemory-policy noeviction", or CONFIG SET maxmemory-policy noeviction), or set REDIS_ALLOW_EVICTION=true to run anyway.`,
    );
  }
}
