import { Cluster, Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';

// One factory for every Redis connection, so that the role-specific settings BullMQ insists
// on cannot be forgotten at a call site (see PLATFORM-NOTES, bullmq 6.7 with ioredis 6).

export type RedisRole = 'command' | 'worker' | 'queue';

export interface RedisConnectionOptions {
  /** Single node (`redis://`, `rediss://`). With cluster or sentinel, only its credentials and db are used. */
  url?: string;
  /** `host:port` of some cluster nodes: selects cluster mode. */
  clusterNodes?: string[];
  /** Selects Sentinel mode (with sentinelName). */
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  role: RedisRole;
}

// replyMapping stays at its default ("legacy"): the adapters parse RESP2-shaped replies, and
// its declared type clashes with exactOptionalPropertyTypes when spread.
type Options = Omit<RedisOptions, 'replyMapping'>;

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

function roleOptions(role: RedisRole): Options {
  switch (role) {
    // A BullMQ Worker blocks on BZPOPMIN and must retry forever; it throws without this.
    case 'worker':
      return { maxRetriesPerRequest: null };
    // A Queue fails fast while Redis is down instead of piling up jobs in memory.
    case 'queue':
      return { enableOfflineQueue: false };
    case 'command':
      return {};
  }
}

function credentials(url: string | undefined): Options {
  if (url === undefined || url === '') return {};
  const u = new URL(url);
  const out: Options = {};
  if (u.username !== '') out.username = decodeURIComponent(u.username);
  if (u.password !== '') out.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '') out.db = Number(db);
  if (u.protocol === 'rediss:') out.tls = {};
  return out;
}

function parseNode(spec: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(spec.trim());
  if (match === null) throw new Error(`invalid Redis cluster node "${spec}": expected host:port`);
  return { host: match[1]!, port: Number(match[2]) };
}

export function createRedisConnection(opts: RedisConnectionOptions): Redis | Cluster {
  const base: Options = {
    connectionName: `countersign-${opts.role}-${process.pid}`,
    lazyConnect: false,
    ...roleOptions(opts.role),
  };

  if (opts.clusterNodes !== undefined && opts.clusterNodes.length > 0) {
    // A cluster has only db 0; a db in the URL would make every node refuse SELECT.
    const { enableOfflineQueue, db: _db, ...redisOptions } = { ...base, ...credentials(opts.url) };
    return new Cluster(opts.clusterNodes.map(parseNode), {
      lazyConnect: false,
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      redisOptions,
    });
  }

  if (opts.sentinels !== undefined && opts.sentinels.length > 0) {
    if (opts.sentinelName === undefined || opts.sentinelName === '') {
      throw new Error('Redis Sentinel needs the master name (REDIS_SENTINEL_NAME)');
    }
    return new Redis({ ...credentials(opts.url), ...base, sentinels: opts.sentinels, name: opts.sentinelName });
  }

  return new Redis(opts.url === undefined || opts.url === '' ? DEFAULT_REDIS_URL : opts.url, base);
}
