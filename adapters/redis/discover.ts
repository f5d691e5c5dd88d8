// Which Redis to use: REDIS_URL (or cluster / Sentinel), else a private server another
// countersign process started (its URL is in the data dir), else one on 127.0.0.1:6379,
// else a private redis-server of our own (AOF on, data in the data dir, stopped on exit).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { RedisTarget } from '../../src/config.ts';
import { createRedisConnection, type RedisConnectionOptions } from './connection.ts';
import { startPrivateRedis, type PrivateRedis } from './private-server.ts';

/** How to connect, given the discovered URL (unused in cluster and Sentinel mode). */
export function connectionOptions(target: RedisTarget, url: string): Omit<RedisConnectionOptions, 'role'> {
  if (target.clusterNodes.length > 0) return { clusterNodes: target.clusterNodes.map((n) => `${n.host}:${n.port}`) };
  if (target.sentinels.length > 0) return { sentinels: target.sentinels, sentinelName: target.sentinelName ?? '' };
  return { url };
}

async function answersPing(url: string): Promise<boolean> {
  const probe = createRedisConnection({ url, role: 'command' }) as Redis;
  probe.on('error', () => undefined);
  try {
    await Promise.race([probe.ping(), new Promise((_r, reject) => setTimeout(() => reject(new Error('timeout')), 700))]);
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** REDIS_URL (or cluster / sentinel), else a Redis on 127.0.0.1:6379, else a private redis-server. */
export async function discoverRedis(
  target: RedisTarget,
  dataDir: string,
  log: (msg: string) => void,
  local = 'redis://127.0.0.1:6379',
  searchPath = '',
): Promise<{ url: string; privateRedis: PrivateRedis | null }> {
  if (target.url !== null) return { url: target.url, privateRedis: null };
  if (target.clusterNodes.length > 0 || target.sentinels.length > 0) return { url: '', privateRedis: null };
  // A private server started by another countersign process (the server, while a CLI runs).
  const urlFile = resolve(dataDir, 'redis.url');
  const running = existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : null;
  if (running !== null && (await answersPing(running))) return { url: running, privateRedis: null };
  if (await answersPing(local)) return { url: local, privateRedis: null };
  const dir = resolve(dataDir, 'redis');
  const started = await startPrivateRedis({ dir, persist: true, logFile: resolve(dir, 'redis.log'), searchPath });
  writeFileSync(urlFile, `${started.url}\n`);
  log(`started a private redis-server on ${started.url} (data in ${dir})`);
  const privateRedis: PrivateRedis = {
    ...started,
    async stop() {
      await started.stop();
      rmSync(urlFile, { force: true });
    },
  };
  return { url: privateRedis.url, privateRedis };
}
