import { AsyncLocalStorage } from 'node:async_hooks';
import { Cluster, Redis, ReplyError } from 'ioredis';
import type { Command, RedisOptions } from 'ioredis';
import { StoreFullError, UnavailableError } from '../../src/core/errors.ts';

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

// The command connection serves two kinds of caller. A queue worker should wait out a short
// outage (ioredis queues its commands and resends them): its use case then finishes instead
// of failing half-way. Someone waiting on an HTTP answer should not: inside failFast(), a
// command fails at once while the connection is down, and after REQUEST_COMMAND_TIMEOUT_MS
// when Redis stops answering (a cut network closes nothing), so the request ends in a 503.
const requestScope = new AsyncLocalStorage<true>();

/** Generous against a busy server or a stalled event loop: a timeout on a write that did land reads as a failure. */
export const REQUEST_COMMAND_TIMEOUT_MS = 2000;

/** Runs fn so that its Redis commands fail fast (UnavailableError) instead of waiting for Redis to return. */
export function failFast<T>(fn: () => T): T {
  return requestScope.run(true, fn);
}

const DOWN = new Set(['connecting', 'reconnecting', 'close', 'end', 'disconnecting']);
const TIMED_OUT = 'Command timed out';
/** Commands whose caller was already told they failed: a resend after a reconnect would run them behind its back. */
const abandoned = new WeakSet<Command>();

/** The store's own errors for the two conditions a caller can act on; anything else as it came. */
function storeError(err: Error): Error {
  // Redis refuses a script's first write when full, and never stops one half-way: nothing was written.
  if (err instanceof ReplyError && /^OOM\b|\bOOM command not allowed\b/.test(err.message)) return new StoreFullError();
  if (err.name === 'MaxRetriesPerRequestError' || err.message === TIMED_OUT || /^Connection is closed|^Stream isn't writeable/.test(err.message)) {
    return new UnavailableError('the store (Redis) does not answer; try again');
  }
  return err;
}

function guarded(command: Command, status: string, send: () => unknown): unknown {
  if (abandoned.has(command)) return command.promise;
  const reject = command.reject;
  command.reject = (err) => {
    if (err.message === TIMED_OUT) abandoned.add(command);
    reject(storeError(err));
  };
  if (requestScope.getStore() === true) {
    if (DOWN.has(status)) {
      command.reject(new UnavailableError('the store (Redis) is not connected; try again'));
      return command.promise;
    }
    command.setTimeout(REQUEST_COMMAND_TIMEOUT_MS);
  }
  return send();
}

class CommandRedis extends Redis {
  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    return guarded(command, this.status, () => super.sendCommand(command, stream));
  }
}

class CommandCluster extends Cluster {
  override sendCommand(command: Command, stream?: Parameters<Cluster['sendCommand']>[1], node?: unknown): unknown {
    return guarded(command, this.status, () => super.sendCommand(command, stream, node));
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
  const command = opts.role === 'command';
  const base: Options = {
    connectionName: `countersign-${opts.role}-${process.pid}`,
    lazyConnect: false,
    ...roleOptions(opts.role),
  };

  if (opts.clusterNodes !== undefined && opts.clusterNodes.length > 0) {
    // A cluster has only db 0; a db in the URL would make every node refuse SELECT.
    const { enableOfflineQueue, db: _db, ...redisOptions } = { ...base, ...credentials(opts.url) };
    return new (command ? CommandCluster : Cluster)(opts.clusterNodes.map(parseNode), {
      lazyConnect: false,
      // CLUSTERDOWN lasts while a cluster forms (a master is writable no sooner than 2 s after it
      // starts) or fails over (up to cluster-node-timeout, 15 s by default). ioredis gives up after
      // 16 tries 100 ms apart (1.6 s): a fleet started with its cluster saw commands fail at start
      // (one such failure ended a process in the cluster test). Wait out ~16 s instead.
      retryDelayOnClusterDown: 250,
      maxRedirections: 64,
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      redisOptions,
    });
  }

  if (opts.sentinels !== undefined && opts.sentinels.length > 0) {
    if (opts.sentinelName === undefined || opts.sentinelName === '') {
      throw new Error('Redis Sentinel needs the master name (REDIS_SENTINEL_NAME)');
    }
    return new (command ? CommandRedis : Redis)({ ...credentials(opts.url), ...base, sentinels: opts.sentinels, name: opts.sentinelName });
  }

  return new (command ? CommandRedis : Redis)(opts.url === undefined || opts.url === '' ? DEFAULT_REDIS_URL : opts.url, base);
}

/**
 * QUIT, so that replies still on their way arrive; but never waiting past `until` (ms since
 * the epoch): a connection that is not ready (Redis gone: QUIT would only join its offline
 * queue) or does not answer in time is dropped, and what it still had queued fails.
 */
export async function closeConnection(connection: Redis | Cluster, until: number): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status !== 'ready' || Date.now() >= until) {
    connection.disconnect();
    return;
  }
  const quit = connection.quit().then(
    () => 'quit' as const,
    () => 'failed' as const,
  );
  let timer: NodeJS.Timeout | undefined;
  const late = until === Infinity ? [] : [new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, until - Date.now()))))];
  const how = await Promise.race([quit, ...late]);
  clearTimeout(timer);
  if (how !== 'quit') connection.disconnect();
}
