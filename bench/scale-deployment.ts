import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Redis } from 'ioredis';
import { redisKeys } from '../adapters/redis/keys.ts';
import { spawnChild, startFlags, Timeline, type Child } from './children.ts';
import { fmt, HttpClient, pool, redisCpuMs, wallNow } from './lib.ts';
import { paymentBody, propose } from './workload.ts';

// bench/scale.ts's pieces: countersign deployments (one or more processes on one prefix, as
// children running the compiled build) and the CPU readings taken around a window.

/** A share of one core as a percentage. */
export const pct = (share: number): string => `${fmt(share * 100, 0)}%`;

/** How long the work a window caused may take to finish. */
export const DRAIN_CAP_MS = 120_000;

// ---------- CPU readings ----------

/** Busy and total jiffies of the whole machine (/proc/stat): everything on it, not only this bench. */
export function machineJiffies(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  return { busy: total - (n[3] ?? 0) - (n[4] ?? 0), total };
}

export interface Reading {
  t: number;
  redisMs: number[];
  childMs: number[];
  selfMs: number;
  machine: { busy: number; total: number };
}

export async function read(redises: Redis[], children: Child[]): Promise<Reading> {
  const self = process.cpuUsage();
  return {
    t: wallNow(),
    redisMs: await Promise.all(redises.map(redisCpuMs)),
    childMs: await Promise.all(children.map(async (c) => Number((await c.ask('cpu'))['ms']))),
    selfMs: (self.user + self.system) / 1000,
    machine: machineJiffies(),
  };
}

/** Share of one core each used between a and b (1 = a whole core). */
export function shares(a: Reading, b: Reading) {
  const wall = b.t - a.t;
  const cores = cpus().length;
  return {
    wallMs: wall,
    redis: b.redisMs.map((v, i) => (v - a.redisMs[i]!) / wall),
    children: b.childMs.map((v, i) => (v - a.childMs[i]!) / wall),
    self: (b.selfMs - a.selfMs) / wall,
    machine: ((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * cores,
  };
}

// ---------- one countersign deployment (one or more processes on one prefix) ----------

export interface Deployment {
  prefix: string;
  /** The bench agent's secret, which its requests are signed with. */
  agentSecret: string;
  children: Child[];
  clients: HttpClient[];
  finished: Timeline;
  stop(): Promise<void>;
}

export async function deploy(opts: { processes: number; prefix: string; env: Record<string, string> }): Promise<Deployment> {
  const agentSecret = opts.env['AGENT_BENCH_SECRET'] ?? '';
  const finished = new Timeline();
  const children = await Promise.all(Array.from({ length: opts.processes }, () => spawnChild('./server-child.js', { ...opts.env, COUNTERSIGN_PREFIX: opts.prefix }, startFlags())));
  for (const c of children) {
    c.on('succeeded', (m) => finished.record(String(m['id']), Number(m['t'])));
    c.on('failed', (m) => finished.record(String(m['id']), Number(m['t'])));
  }
  const clients = children.map((c) => new HttpClient(String(c.ready['url'])));
  return {
    prefix: opts.prefix,
    agentSecret,
    children,
    clients,
    finished,
    async stop() {
      for (const c of clients) c.close();
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((r) => {
              if (c.proc.exitCode !== null) return r();
              c.proc.once('exit', () => r());
              c.proc.send({ kind: 'stop' });
            }),
        ),
      );
    },
  };
}

/**
 * Until every one of `ids` has its card posted (its card reference saved): how cards travel
 * (a queue job, an outbox) is not this benchmark's business. One EXISTS per 500 ids a poll.
 */
export async function cardsPosted(redis: Redis, d: Deployment, ids: readonly string[], deadline: number): Promise<void> {
  const keys = redisKeys(d.prefix);
  for (;;) {
    let posted = 0;
    for (let i = 0; i < ids.length; i += 500) posted += await redis.exists(...ids.slice(i, i + 500).map((id) => keys.cards(id)));
    if (posted === ids.length) return;
    if (wallNow() > deadline) throw new Error(`${d.prefix}: ${ids.length - posted} of ${ids.length} cards not posted within the cap`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** JIT, connections, scripts loaded: 200 pending proposals, until their cards are posted. */
export async function warmUp(redis: Redis, d: Deployment): Promise<void> {
  const ids: string[] = [];
  await pool(200, 8, async (i) => void ids.push((await propose(d.clients[i % d.clients.length]!, d.agentSecret, paymentBody())).id));
  await cardsPosted(redis, d, ids, wallNow() + DRAIN_CAP_MS);
}


/** What a deployment costs with no traffic: its processes' background work (sealer, indexer, queue checks), per second. */
export interface Idle {
  processes: number;
  redisMsPerS: number;
  nodeMsPerS: number;
}

export async function idle(redis: Redis, d: Deployment, ms: number): Promise<Idle> {
  const a = await read([redis], d.children);
  await new Promise((r) => setTimeout(r, ms));
  const b = await read([redis], d.children);
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const s = (b.t - a.t) / 1000;
  return { processes: d.children.length, redisMsPerS: (b.redisMs[0]! - a.redisMs[0]!) / s, nodeMsPerS: (sum(b.childMs) - sum(a.childMs)) / s };
}
