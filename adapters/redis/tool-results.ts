import type { Cluster, Redis } from 'ioredis';
import type { ToolResultStore } from '../../src/core/mcp-ports.ts';
import { redisKeys } from './keys.ts';
import type { RedisStoreOptions } from './proposal-store.ts';

// Where an MCP upstream's answer waits for the agent: one string per proposal, set once (a
// job delivered twice never replaces what the first run kept) and gone after `ttlSeconds`.

export function createRedisToolResults(redis: Redis | Cluster, opts: RedisStoreOptions & { ttlSeconds: number }): ToolResultStore {
  const keys = redisKeys(opts.prefix);
  return {
    async keep(proposalId, result) {
      await redis.set(keys.toolResult(proposalId), JSON.stringify(result), 'EX', opts.ttlSeconds, 'NX');
    },
    async get(proposalId) {
      const raw = await redis.get(keys.toolResult(proposalId));
      return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
    },
  };
}
