import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../../src/core/ports.ts';

// One reporter of Redis outages for the whole process. Every connection (and every BullMQ
// worker's own) fails each reconnect attempt on its own, several times a second: logged one
// by one, an outage of a few seconds buried the one line an operator needs under hundreds.
// Here an outage is three kinds of line: when it starts (the first failed attempt after a
// connection was lost, so a dropped socket that reconnects at once says nothing), one every
// `reportEveryMs` while it lasts, and when every connection is back. Meanwhile the loggers
// handed out by quiet() put their warnings and errors at debug: those are the per-attempt ones.

export const DEFAULT_OUTAGE_REPORT_EVERY_MS = 60_000;

export interface OutageLogOptions {
  /** How operators name the Redis: host:port (never the URL, which may hold a password). */
  target: string;
  logger: Logger;
  /** The interval of the "still unreachable" line (tests shorten it). */
  reportEveryMs?: number;
  now?: () => number;
}

export interface RedisOutageLog {
  /** True while a connection that was ready is not. */
  down(): boolean;
  /** `logger`, with its warnings and errors at debug while Redis is down. */
  quiet(logger: Logger): Logger;
  /** Stops reporting (the process is closing its connections on purpose). */
  stop(): void;
}

type Connection = Redis | Cluster;

// A dropped socket reaches every worker's 'error' handler in the same tick, before the
// connection's status says it is gone: six identical lines at the start of each outage. The
// outage's own lines report it; a drop that reconnects at once says nothing, as designed above.
const CONNECTION_DROP = /\b(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT)\b|^Connection is closed/;

/** Whether a log line's `error` is a lost connection to Redis rather than a failed command. */
export function isConnectionDrop(obj: object): boolean {
  const error = (obj as { error?: unknown }).error;
  return typeof error === 'string' && CONNECTION_DROP.test(error);
}

/** host:port of what `url` / the cluster / Sentinel points at, for log lines. */
export function redisTargetLabel(target: { clusterNodes: readonly { host: string; port: number }[]; sentinels: readonly { host: string; port: number }[]; sentinelName: string | null }, url: string): string {
  const list = (nodes: readonly { host: string; port: number }[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  if (target.clusterNodes.length > 0) return `cluster ${list(target.clusterNodes)}`;
  if (target.sentinels.length > 0) return `sentinel master ${target.sentinelName ?? '?'} via ${list(target.sentinels)}`;
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port === '' ? '6379' : u.port}`;
  } catch {
    return 'redis';
  }
}

export function createRedisOutageLog(connections: readonly Connection[], options: OutageLogOptions): RedisOutageLog {
  const { target, logger } = options;
  const now = options.now ?? Date.now;
  const everyMs = options.reportEveryMs ?? DEFAULT_OUTAGE_REPORT_EVERY_MS;
  const wasReady = new Set<Connection>();
  let stopped = false;
  // The current outage: since when, failed attempts, whether its first line was written.
  let since: number | null = null;
  let failed = 0;
  let announced = false;
  let timer: NodeJS.Timeout | null = null;

  const lost = () => [...wasReady].some((c) => c.status !== 'ready');
  const sinceIso = () => new Date(since ?? now()).toISOString();

  function announce(error: string): void {
    announced = true;
    logger.warn({ redis: target, since: sinceIso(), error }, `Redis at ${target} unreachable since ${sinceIso()}; retrying`);
    timer = setInterval(() => {
      logger.warn({ redis: target, since: sinceIso(), failed_attempts: failed }, `Redis at ${target} still unreachable since ${sinceIso()}: ${failed} failed connection attempts; retrying`);
    }, everyMs);
    timer.unref();
  }

  function settle(): void {
    if (since === null || lost()) return;
    if (announced) {
      const seconds = Math.round((now() - since) / 100) / 10;
      logger.info({ redis: target, down_seconds: seconds, failed_attempts: failed }, `Redis at ${target} reachable again after ${seconds}s (${failed} failed connection attempts)`);
    }
    if (timer !== null) clearInterval(timer);
    [since, failed, announced, timer] = [null, 0, false, null];
  }

  for (const c of connections) {
    if (c.status === 'ready') wasReady.add(c);
    c.on('ready', () => {
      wasReady.add(c);
      if (!stopped) settle();
    });
    c.on('close', () => {
      if (!stopped && wasReady.has(c) && since === null) since = now();
    });
    c.on('error', (e: Error) => {
      if (stopped || since === null) return;
      failed += 1;
      if (!announced) announce(e.message);
    });
  }

  return {
    down: () => since !== null || lost(),
    quiet(inner) {
      const demoted = (level: 'warn' | 'error') => (obj: object, msg?: string) =>
        since !== null || lost() || isConnectionDrop(obj) ? inner.debug(obj, msg) : inner[level](obj, msg);
      return { debug: (o, m) => inner.debug(o, m), info: (o, m) => inner.info(o, m), warn: demoted('warn'), error: demoted('error') };
    },
    stop() {
      stopped = true;
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };
}
