import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedisConnection } from '../adapters/redis/connection.ts';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import { buildCountersign, spawnChild } from './children.ts';
import { fmt, pool, summarize, wallNow, type Summary } from './lib.ts';
import { clusterPartitions } from './scale-cluster.ts';
import { cardsPosted, deploy, DRAIN_CAP_MS, idle, pct, read, shares, warmUp, type Deployment, type Idle } from './scale-deployment.ts';
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
// each master's CPU per proposal of the partition it holds (bench/scale-cluster.ts).
// BENCH_SCALE (default 1) scales the counts; SCALE_ROUNDS (default 2) the rounds;
// SCALE_ONLY=single or SCALE_ONLY=cluster runs one part.

const SCALE = Math.max(0.01, Number(process.env['BENCH_SCALE'] ?? '1') || 1);
const ROUNDS = Math.max(1, Number(process.env['SCALE_ROUNDS'] ?? '2') || 2);
const CONCURRENCY = [4, 16, 64];
const PER_STEP = Math.max(100, Math.round(1500 * SCALE));
const CLUSTER_COUNT = Math.max(100, Math.round(2000 * SCALE));
const ONLY = process.env['SCALE_ONLY'];
if (ONLY !== undefined && ONLY !== 'single' && ONLY !== 'cluster') throw new Error(`SCALE_ONLY=${ONLY}: "single" or "cluster"`);
const KINDS = { pending: paymentBody, allowed: tagBody } as const;
type Kind = keyof typeof KINDS;

const SECRET = randomBytes(24).toString('hex');
const SLACK_SECRET = randomBytes(16).toString('hex');
const ADMIN = randomBytes(24).toString('hex');
const STARTED = wallNow();
const log = (line: string) => process.stderr.write(`[scale ${((wallNow() - STARTED) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);

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
    const { id } = await propose(d.clients[i % d.clients.length]!, d.agentSecret, KINDS[kind]());
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

const range = (xs: number[], digits = 0) => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi || xs.length === 1 ? fmt(lo, digits) : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
};

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
      await clusterPartitions(dir, env, CLUSTER_COUNT);
    }
    log(`done in ${fmt((wallNow() - STARTED) / 1000, 0)} s`);
  } finally {
    fixtures.proc.disconnect?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
