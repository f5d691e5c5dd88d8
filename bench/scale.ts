import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedisConnection } from '../adapters/redis/connection.ts';
import { redisKeys } from '../adapters/redis/keys.ts';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import { keySlot, startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { buildCountersign, spawnChild, startFlags, Timeline, type Child } from './children.ts';
import { fmt, HttpClient, pool, redisCpuMs, summarize, wallNow, type Summary } from './lib.ts';
import { redisSnapshot } from './redis-stats.ts';
import { waitIndexed, waitSealed } from './sealing-lag.ts';
import { benchPolicy, countersignEnv, paymentBody, propose, tagBody } from './workload.ts';

// `npm run bench:scale`: how far one Redis carries countersign, and what saturates first.
// One countersign process against two (same COUNTERSIGN_PREFIX, one private redis-server), in
// rounds that alternate which goes first, at rising concurrency, for pending proposals (card
// posted to the fake Slack) and allowed ones (executed by the local executor). Each step is
// one window: the requests, then the follow-up work until done (cards posted or outcomes
// recorded, audit sealed and indexed). Per step: intake rate and latency, redis-server CPU per
// proposal over the whole window, and each process's share of a core during the requests
// (redis-server, each countersign, this load generator, the machine). The per-shard ceiling is
// one Redis core divided by the measured redis-server CPU per proposal.
// Then two partitions (prefixes p1, p2, one process each) on a private 3-master Redis Cluster:
// each master's CPU per proposal of the partition it holds.
// BENCH_SCALE (default 1) scales the counts; SCALE_ROUNDS (default 2) the rounds;
// SCALE_ONLY=single or SCALE_ONLY=cluster runs one part.

const SCALE = Math.max(0.01, Number(process.env['BENCH_SCALE'] ?? '1') || 1);
const ROUNDS = Math.max(1, Number(process.env['SCALE_ROUNDS'] ?? '2') || 2);
const CONCURRENCY = [4, 16, 64];
const PER_STEP = Math.max(100, Math.round(1500 * SCALE));
const CLUSTER_COUNT = Math.max(100, Math.round(2000 * SCALE));
const DRAIN_CAP_MS = 120_000;
const ONLY = process.env['SCALE_ONLY'];
if (ONLY !== undefined && ONLY !== 'single' && ONLY !== 'cluster') throw new Error(`SCALE_ONLY=${ONLY}: "single" or "cluster"`);
const KINDS = { pending: paymentBody, allowed: tagBody } as const;
type Kind = keyof typeof KINDS;

const SECRET = randomBytes(24).toString('hex');
const SLACK_SECRET = randomBytes(16).toString('hex');
const ADMIN = randomBytes(24).toString('hex');
const STARTED = wallNow();
const log = (line: string) => process.stderr.write(`[scale ${((wallNow() - STARTED) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);

// ---------- CPU readings ----------

/** Busy and total jiffies of the whole machine (/proc/stat): everything on it, not only this bench. */
function machineJiffies(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  return { busy: total - (n[3] ?? 0) - (n[4] ?? 0), total };
}

interface Reading {
  t: number;
  redisMs: number[];
  childMs: number[];
  selfMs: number;
  machine: { busy: number; total: number };
}

async function read(redises: Redis[], children: Child[]): Promise<Reading> {
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
function shares(a: Reading, b: Reading) {
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

interface Deployment {
  prefix: string;
  children: Child[];
  clients: HttpClient[];
  finished: Timeline;
  stop(): Promise<void>;
}

async function deploy(opts: { processes: number; prefix: string; env: Record<string, string> }): Promise<Deployment> {
  const finished = new Timeline();
  const children = await Promise.all(Array.from({ length: opts.processes }, () => spawnChild('./server-child.js', { ...opts.env, COUNTERSIGN_PREFIX: opts.prefix }, startFlags())));
  for (const c of children) {
    c.on('succeeded', (m) => finished.record(String(m['id']), Number(m['t'])));
    c.on('failed', (m) => finished.record(String(m['id']), Number(m['t'])));
  }
  const clients = children.map((c) => new HttpClient(String(c.ready['url'])));
  return {
    prefix: opts.prefix,
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
async function cardsPosted(redis: Redis, d: Deployment, ids: readonly string[], deadline: number): Promise<void> {
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
async function warmUp(redis: Redis, d: Deployment): Promise<void> {
  const ids: string[] = [];
  await pool(200, 8, async (i) => void ids.push((await propose(d.clients[i % d.clients.length]!, SECRET, paymentBody())).id));
  await cardsPosted(redis, d, ids, wallNow() + DRAIN_CAP_MS);
}

interface Step {
  kind: Kind;
  processes: number;
  concurrency: number;
  round: number;
  done: number;
  errors: number;
  rps: number;
  /** Until the follow-up work was done too. */
  sustained: number;
  lat: Summary;
  /** redis-server CPU per proposal over the whole window, µs. */
  redisUs: number;
  /** countersign CPU per proposal (all its processes) over the whole window, µs. */
  nodeUs: number;
  /** Shares of a core during the requests. */
  during: ReturnType<typeof shares>;
}

async function step(d: Deployment, redis: Redis, kind: Kind, concurrency: number, count: number, round: number): Promise<Step> {
  const ids: string[] = [];
  const lat: number[] = [];
  const r0 = await read([redis], d.children);
  const r = await pool(count, concurrency, async (i) => {
    const t = wallNow();
    const { id } = await propose(d.clients[i % d.clients.length]!, SECRET, KINDS[kind]());
    lat.push(wallNow() - t);
    ids.push(id);
  });
  const r1 = await read([redis], d.children);
  const deadline = wallNow() + DRAIN_CAP_MS;
  if (kind === 'pending') await cardsPosted(redis, d, ids, deadline);
  else for (const id of ids) if ((await d.finished.wait(id, Math.max(0, deadline - wallNow()))) === null) throw new Error(`${id}: no outcome within the cap`);
  await waitSealed(redis, d.prefix, DRAIN_CAP_MS);
  await waitIndexed(redis, d.prefix, DRAIN_CAP_MS);
  const r2 = await read([redis], d.children);
  if (r.errors > 0) log(`  ${r.errors} errors, first: ${String((r.firstError as Error)?.message ?? r.firstError)}`);
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  return {
    kind,
    processes: d.children.length,
    concurrency,
    round,
    done: r.done,
    errors: r.errors,
    rps: (r.done / r.elapsedMs) * 1000,
    sustained: (r.done / (r2.t - r0.t)) * 1000,
    lat: summarize(lat),
    redisUs: ((r2.redisMs[0]! - r0.redisMs[0]!) * 1000) / r.done,
    nodeUs: ((sum(r2.childMs) - sum(r0.childMs)) * 1000) / r.done,
    during: shares(r0, r1),
  };
}

// ---------- report ----------

const pct = (share: number) => `${fmt(share * 100, 0)}%`;
const range = (xs: number[], digits = 0) => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi || xs.length === 1 ? fmt(lo, digits) : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
};

/** What a deployment costs with no traffic: its processes' background work (sealer, indexer, queue checks), per second. */
interface Idle {
  processes: number;
  redisMsPerS: number;
  nodeMsPerS: number;
}

async function idle(redis: Redis, d: Deployment, ms: number): Promise<Idle> {
  const a = await read([redis], d.children);
  await new Promise((r) => setTimeout(r, ms));
  const b = await read([redis], d.children);
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const s = (b.t - a.t) / 1000;
  return { processes: d.children.length, redisMsPerS: (b.redisMs[0]! - a.redisMs[0]!) / s, nodeMsPerS: (sum(b.childMs) - sum(a.childMs)) / s };
}

function report(steps: Step[], idles: Idle[]): void {
  const out: string[] = [];
  out.push('| kind | processes | c | intake req/s | sustained /s | p50 / p99 ms | Redis µs/proposal | countersign µs/proposal | during the requests: redis-server, countersign (each), load generator, machine (of a core; machine of 2 cores = 200%) |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const kind of Object.keys(KINDS) as Kind[]) {
    for (const c of CONCURRENCY) {
      for (const p of [1, 2]) {
        const s = steps.filter((x) => x.kind === kind && x.concurrency === c && x.processes === p);
        if (s.length === 0) continue;
        out.push(
          `| ${kind} | ${p} | ${c} | ${range(s.map((x) => x.rps))} | ${range(s.map((x) => x.sustained))} | ${range(s.map((x) => x.lat.p50), 1)} / ${range(s.map((x) => x.lat.p99), 1)} | ${range(s.map((x) => x.redisUs))} | ${range(s.map((x) => x.nodeUs))} | ` +
            `${range(s.map((x) => x.during.redis[0]! * 100))}%, ${s.map((x) => x.during.children.map(pct).join(' + ')).join(' / ')}, ${range(s.map((x) => x.during.self * 100))}%, ${range(s.map((x) => x.during.machine * 100))}% |`,
        );
      }
    }
  }
  out.push('');
  for (const p of [1, 2]) {
    const i = idles.filter((x) => x.processes === p);
    if (i.length > 0) out.push(`- idle, ${p} process(es) (background work, no traffic): redis-server ${range(i.map((x) => x.redisMsPerS), 1)} ms CPU per second, countersign ${range(i.map((x) => x.nodeMsPerS), 1)} ms per second (all its processes).`);
  }
  for (const kind of Object.keys(KINDS) as Kind[]) {
    const s = steps.filter((x) => x.kind === kind);
    const two = s.filter((x) => x.processes === 2);
    const one = s.filter((x) => x.processes === 1);
    const best = (xs: Step[]) => Math.max(...xs.map((x) => x.rps));
    const high = s.filter((x) => x.concurrency === Math.max(...CONCURRENCY));
    const ceilings = high.map((x) => 1e6 / x.redisUs);
    out.push(
      `- ${kind}: best intake ${fmt(best(one), 0)} req/s with one process, ${fmt(best(two), 0)} with two (${fmt(best(two) / best(one), 2)}x); ` +
        `redis-server CPU per proposal at c=${Math.max(...CONCURRENCY)} ${range(high.map((x) => x.redisUs))} µs (all steps ${range(s.map((x) => x.redisUs))}) ` +
        `=> one Redis core carries ${range(ceilings)} ${kind} proposals/s (the per-shard ceiling, this machine); ` +
        `countersign CPU per proposal at c=${Math.max(...CONCURRENCY)} ${range(high.map((x) => x.nodeUs))} µs => one countersign core carries ${range(high.map((x) => 1e6 / x.nodeUs))}/s, ` +
        `so one Redis core feeds ${range(high.map((x) => x.nodeUs / x.redisUs), 1)} countersign cores.`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------- the run ----------

async function singleRedis(dir: string, env: (prefix: string) => Record<string, string>): Promise<{ steps: Step[]; idles: Idle[] }> {
  const server = await startPrivateRedis({ dir: join(dir, 'redis'), persist: false, searchPath: process.env['PATH'] ?? '' });
  const redis = createRedisConnection({ url: server.url, role: 'command' }) as Redis;
  const steps: Step[] = [];
  const idles: Idle[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // Which configuration goes first alternates: the machine's other work drifts.
      const order = round % 2 === 1 ? [1, 2] : [2, 1];
      for (const processes of order) {
        const prefix = `scale-r${round}-x${processes}`;
        const d = await deploy({ processes, prefix, env: { ...env(prefix), REDIS_URL: server.url } });
        try {
          await warmUp(redis, d);
          idles.push(await idle(redis, d, 3000));
          for (const kind of Object.keys(KINDS) as Kind[]) {
            for (const c of CONCURRENCY) {
              const s = await step(d, redis, kind, c, PER_STEP, round);
              steps.push(s);
              log(
                `round ${round}, ${processes} process(es), ${kind} c=${c}: ${fmt(s.rps, 0)} req/s (sustained ${fmt(s.sustained, 0)}), p99 ${fmt(s.lat.p99, 1)} ms; ` +
                  `Redis ${fmt(s.redisUs, 0)} µs/proposal, countersign ${fmt(s.nodeUs, 0)} µs; during: redis ${pct(s.during.redis[0]!)}, countersign ${s.during.children.map(pct).join('+')}, bench ${pct(s.during.self)}, machine ${pct(s.during.machine)}`,
              );
            }
          }
        } finally {
          await d.stop();
        }
      }
    }
  } finally {
    await redis.quit();
    await server.stop();
  }
  return { steps, idles };
}

/** PUBLISH calls a node has served (INFO commandstats). */
async function publishCalls(node: Redis): Promise<number> {
  return (await redisSnapshot(node)).commands.get('publish')?.calls ?? 0;
}

async function clusterPartitions(dir: string, env: (prefix: string) => Record<string, string>): Promise<void> {
  const cluster = await startRedisCluster({ dir: join(dir, 'cluster') });
  const prefixes = ['p1', 'p2'];
  try {
    await cluster.ready;
    const nodes = cluster.nodes.map((n) => cluster.connect(n));
    const deployments = await Promise.all(prefixes.map((prefix) => deploy({ processes: 1, prefix, env: { ...env(prefix), REDIS_CLUSTER_NODES: cluster.spec } })));
    try {
      const homes = prefixes.map((p) => cluster.nodes.indexOf(cluster.nodeForSlot(keySlot(redisKeys(p).tag))));
      const children = deployments.flatMap((d) => d.children);
      for (const [i, d] of deployments.entries()) await warmUp(nodes[homes[i]!]!, d);
      // What each master spends with no traffic (cluster bus, the partitions' background work).
      const i0 = await read(nodes, children);
      await new Promise((r) => setTimeout(r, 3000));
      const i1 = await read(nodes, children);
      const idleMsPerS = i1.redisMs.map((v, i) => (v - i0.redisMs[i]!) / ((i1.t - i0.t) / 1000));
      // Both partitions at once, pending proposals at c=16 each, until every card is posted and sealed.
      const r0 = await read(nodes, children);
      const publishes0 = await Promise.all(nodes.map(publishCalls));
      const ids = deployments.map(() => [] as string[]);
      const runs = await Promise.all(deployments.map((d, i) => pool(CLUSTER_COUNT, 16, async () => void ids[i]!.push((await propose(d.clients[0]!, SECRET, paymentBody())).id))));
      const r1 = await read(nodes, children);
      for (const d of deployments) {
        await cardsPosted(nodes[homes[deployments.indexOf(d)]!]!, d, ids[deployments.indexOf(d)]!, wallNow() + DRAIN_CAP_MS);
        await waitSealed(nodes[homes[deployments.indexOf(d)]!]!, d.prefix, DRAIN_CAP_MS);
        await waitIndexed(nodes[homes[deployments.indexOf(d)]!]!, d.prefix, DRAIN_CAP_MS);
      }
      const r2 = await read(nodes, children);
      const published = (await Promise.all(nodes.map(publishCalls))).reduce((a, v, i) => a + v - publishes0[i]!, 0);
      const during = shares(r0, r1);
      const windowS = (r2.t - r0.t) / 1000;
      const lines = [
        `| master | holds | CPU in the window (${fmt(windowS, 1)} s) | idle CPU (ms/s) | per proposal of the partition it holds, µs (all / above idle) | share of a core during the requests |`,
        `|---|---|---|---|---|---|`,
      ];
      cluster.nodes.forEach((n, i) => {
        const held = prefixes.filter((_, j) => homes[j] === i);
        const done = held.reduce((a, p) => a + runs[prefixes.indexOf(p)]!.done, 0);
        const ms = r2.redisMs[i]! - r0.redisMs[i]!;
        const per = held.length > 0 ? `${fmt((ms * 1000) / done, 0)} / ${fmt(((ms - idleMsPerS[i]! * windowS) * 1000) / done, 0)}` : '-';
        lines.push(`| ${n.port} (slots ${n.slots[0]}-${n.slots[1]}) | ${held.map((p) => `{${p}}`).join(', ') || 'nothing'} | ${fmt(ms, 0)} ms | ${fmt(idleMsPerS[i]!, 1)} | ${per} | ${pct(during.redis[i]!)} |`);
      });
      lines.push('');
      // A master that holds no partition still serves and hears PUBLISHes: classic pub/sub is not sharded.
      const total = runs.reduce((a, r) => a + r.done, 0);
      cluster.nodes.forEach((n, i) => {
        if (homes.includes(i)) return;
        const extra = r2.redisMs[i]! - r0.redisMs[i]! - idleMsPerS[i]! * windowS;
        lines.push(
          `- master ${n.port} holds nothing, yet spent ${fmt(extra, 0)} ms above its idle rate in the window: ${fmt((extra * 1000) / total, 1)} µs per proposal of the partitions, ` +
            `${fmt((extra * 1000) / Math.max(1, published), 1)} µs per PUBLISH they made (${fmt(published / total, 2)} per proposal: ioredis sends a PUBLISH to any node, and a cluster passes every PUBLISH on to every node).`,
        );
      });
      const rps = runs.map((r) => (r.done / r.elapsedMs) * 1000);
      lines.push(`- two partitions on a 3-master cluster, pending at c=16 each: ${rps.map((x, i) => `{${prefixes[i]}} ${fmt(x, 0)} req/s`).join(', ')}; countersign ${during.children.map(pct).join(' + ')}, machine ${pct(during.machine)} of a core.`);
      process.stdout.write(`\n${lines.join('\n')}\n`);
    } finally {
      for (const d of deployments) await d.stop();
    }
  } finally {
    await cluster.stop();
  }
}

/** The commit measured, and whether the working tree differed from it (the build compiles the tree as it is). */
function codeVersion(): string {
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout.trim();
  const changed = git('status', '--porcelain', '--untracked-files=no', '--', 'src', 'adapters').split('\n').filter((l) => l !== '').length;
  return `${git('rev-parse', '--short', 'HEAD')}${changed > 0 ? ` + ${changed} changed file(s) under src/ and adapters/` : ''}`;
}

async function main(): Promise<void> {
  buildCountersign();
  const dir = mkdtempSync(join(tmpdir(), 'countersign-scale-'));
  const fixtures = await spawnChild('./fixtures-child.ts', {});
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, benchPolicy(String(fixtures.ready['executorUrl'])));
  const env = (prefix: string) => {
    const e = countersignEnv({ redisUrl: '', prefix, dataDir: join(dir, 'data'), policyFile, adminToken: ADMIN, agentSecret: SECRET, slackSigningSecret: SLACK_SECRET, slackApiUrl: String(fixtures.ready['slackApiUrl']) });
    delete e['REDIS_URL'];
    return e;
  };
  try {
    log(`code: ${codeVersion()}`);
    log(`${cpus().length} cores, load ${loadavg().map((l) => fmt(l, 2)).join(' ')}; ${PER_STEP} proposals per step, concurrency ${CONCURRENCY.join('/')}, ${ROUNDS} rounds`);
    if (ONLY !== 'cluster') {
      const { steps, idles } = await singleRedis(dir, env);
      process.stdout.write(`\n## One Redis, one vs two countersign processes (code ${codeVersion()}; ${ROUNDS} rounds; ranges over rounds; load at the end ${loadavg().map((l) => fmt(l, 2)).join(' ')})\n\n`);
      report(steps, idles);
    }
    if (ONLY !== 'single') {
      log(`cluster: two partitions, ${CLUSTER_COUNT} pending proposals each at c=16`);
      await clusterPartitions(dir, env);
    }
    log(`done in ${fmt((wallNow() - STARTED) / 1000, 0)} s`);
  } finally {
    fixtures.proc.disconnect?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
