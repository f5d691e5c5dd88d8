import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findRedisServerBinary, freePort, REDIS_NOT_INSTALLED } from '../../adapters/redis/private-server.ts';

// A private Redis Cluster of `masters` redis-server processes (no replicas, no persistence) on
// free ports in `dir`, for the cluster test and the scale benchmark. Formed the way an operator
// would without redis-cli: each master takes its share of the slots (CLUSTER ADDSLOTSRANGE), the
// first meets the others (CLUSTER MEET), and it is `ready` once every node says cluster_state:ok
// and knows all the others. Not a Cluster anyone should run: one node down is slots down.

const SLOTS = 16384;
const START_TIMEOUT_MS = 10_000;

export interface ClusterNode {
  host: string;
  port: number;
  /** The node's cluster id (CLUSTER MYID). */
  id: string;
  /** First and last slot it serves. */
  slots: [number, number];
  pid: number;
}

export interface PrivateRedisCluster {
  nodes: ClusterNode[];
  /** `host:port,host:port,…`: the value of REDIS_CLUSTER_NODES. */
  spec: string;
  /** The node that serves `slot`. */
  nodeForSlot(slot: number): ClusterNode;
  /** Resolves once every node says cluster_state:ok and knows the others. */
  ready: Promise<void>;
  /** A plain (non-cluster) connection to one node, closed by stop(). */
  connect(node: ClusterNode): Redis;
  stop(): Promise<void>;
}

function exitOf(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

interface Launched {
  child: ChildProcess;
  port: number;
  output: () => string;
}

function launch(binary: string, dir: string, port: number, busPort: number): Launched {
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    binary,
    [
      '--port', String(port),
      // The bus port is chosen too: port + 10000 (the default) may be past 65535 or taken.
      '--cluster-port', String(busPort),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--appendonly', 'no',
      '--save', '',
      '--daemonize', 'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (c: Buffer) => (output = (output + c.toString('utf8')).slice(-4000));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, port, output: () => output };
}

/** Resolves with a connection once the node answers PING; rejects if it exits first or does not answer in time. */
async function answering(l: Launched): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port: l.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (l.child.exitCode !== null) throw new Error(`redis-server (cluster node on ${l.port}) exited during start-up: ${l.output().trim().split('\n').slice(-3).join('; ')}`);
    try {
      if (redis.status !== 'ready') await redis.connect();
      // Whoever answers must be our child: another server may have won the race for the port.
      if ((await redis.ping()) === 'PONG' && new RegExp(`process_id:${l.child.pid}\\r\\n`).test(await redis.info('server'))) return redis;
    } catch {
      redis.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server (cluster node on ${l.port}) did not answer within ${START_TIMEOUT_MS / 1000}s`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

interface ClusterOptions {
  dir: string;
  masters?: number;
  searchPath?: string;
}

/** Starts `masters` cluster-enabled redis-servers and begins forming one cluster of them (await `ready`). */
export async function startRedisCluster(opts: ClusterOptions): Promise<PrivateRedisCluster> {
  // Another process may take a port between our probe and redis-server's bind: start again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/i.test((e as Error).message)) throw e;
    }
  }
}

async function startOnce(opts: ClusterOptions): Promise<PrivateRedisCluster> {
  const masters = opts.masters ?? 3;
  const binary = findRedisServerBinary(opts.searchPath ?? process.env['PATH'] ?? '');
  if (binary === null) throw new Error(REDIS_NOT_INSTALLED);
  const launched: Launched[] = [];
  const connections: Redis[] = [];
  const stop = async () => {
    for (const c of connections) c.disconnect();
    await Promise.all(
      launched.map(async ({ child }) => {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exitOf(child);
        clearTimeout(killer);
      }),
    );
  };
  try {
    // Ports all picked before any server binds, so that two picks are never the same port.
    const ports = new Set<number>();
    while (ports.size < masters * 2) ports.add(await freePort());
    const list = [...ports];
    for (let i = 0; i < masters; i++) launched.push(launch(binary, join(opts.dir, `node-${i}`), list[2 * i]!, list[2 * i + 1]!));
    const admin = await Promise.all(launched.map(answering));
    connections.push(...admin);

    const nodes: ClusterNode[] = [];
    for (let i = 0; i < masters; i++) {
      const first = Math.floor((i * SLOTS) / masters);
      const last = Math.floor(((i + 1) * SLOTS) / masters) - 1;
      const node = admin[i]!;
      await node.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
      nodes.push({ host: '127.0.0.1', port: launched[i]!.port, id: String(await node.call('CLUSTER', 'MYID')), slots: [first, last], pid: launched[i]!.child.pid ?? 0 });
    }
    for (let i = 1; i < masters; i++) await admin[0]!.call('CLUSTER', 'MEET', '127.0.0.1', String(launched[i]!.port), String(list[2 * i + 1]));

    // Gossip spreads the meetings and the slot claims within a few cluster cron runs (100 ms
    // each), but a master says cluster_state:ok no sooner than 2 s after it started (Redis's
    // CLUSTER_WRITABLE_DELAY): waited for in `ready`, so that a caller can start its clients meanwhile.
    const ready = (async () => {
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        const infos = await Promise.all(admin.map((n) => n.call('CLUSTER', 'INFO').then(String)));
        if (infos.every((i) => /cluster_state:ok/.test(i) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(i))) return;
        if (Date.now() > deadline) throw new Error(`the cluster did not form within ${START_TIMEOUT_MS / 1000}s: ${infos.map((i) => /cluster_state:\w+/.exec(i)?.[0]).join(', ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    ready.catch(() => undefined);

    return {
      nodes,
      spec: nodes.map((n) => `${n.host}:${n.port}`).join(','),
      nodeForSlot(slot) {
        const node = nodes.find((n) => slot >= n.slots[0] && slot <= n.slots[1]);
        if (node === undefined) throw new Error(`slot ${slot} is out of range`);
        return node;
      },
      connect(node) {
        const c = new Redis({ host: node.host, port: node.port });
        connections.push(c);
        return c;
      },
      ready,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

// CRC16/XMODEM, as Redis Cluster hashes keys (cluster specification, "Keys distribution model").
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The slot of `key`: of its hash tag (`{…}`, non-empty) when it has one. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % SLOTS;
}
