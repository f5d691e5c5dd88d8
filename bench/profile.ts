import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedisConnection } from '../adapters/redis/connection.ts';
import { redisKeys } from '../adapters/redis/keys.ts';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import { buildCountersign, spawnChild, startFlags, type Child } from './children.ts';
import { hottest } from './cpu-profile.ts';
import { waitFollowUps } from './follow-ups.ts';
import { fmt, HttpClient, pool, redisCpuMs, wallNow } from './lib.ts';
import { benchPolicy, countersignEnv, deleteBody, paymentBody, propose as submit, tagBody } from './workload.ts';

// `npm run bench:profile`: where intake time goes. Submits PROFILE_COUNT proposals (default
// 6000; PROFILE_KIND=pending|auto|denied) at PROFILE_CONCURRENCY (64) to countersign running under
// --cpu-prof, then prints CPU per proposal for countersign and redis-server, Redis time per
// command and per script (from SLOWLOG at threshold 0), and countersign's hottest functions.
// PROFILE_OUT=file.cpuprofile keeps the profile. A tool for finding what to fix, not a
// benchmark: profiling slows the server down.
// PROFILE_KIND=mcp profiles the MCP gateway's allowed tools/call instead (bench/mcp-profile.ts).

if (process.env['PROFILE_KIND'] === 'mcp') {
  await import('./mcp-profile.ts');
  process.exit(process.exitCode ?? 0);
}

const COUNT = Number(process.env['PROFILE_COUNT'] ?? '6000');
const CONCURRENCY = Number(process.env['PROFILE_CONCURRENCY'] ?? '64');
const KIND = process.env['PROFILE_KIND'] === 'auto' ? 'auto' : process.env['PROFILE_KIND'] === 'denied' ? 'denied' : 'pending';
// PROFILE_CPU=0: no --cpu-prof and no SLOWLOG, for the CPU figures without their overhead.
const TRACE = process.env['PROFILE_CPU'] !== '0';
const SECRET = randomBytes(24).toString('hex');
const PREFIX = 'prof';

buildCountersign();
const dir = mkdtempSync(join(tmpdir(), 'countersign-profile-'));
const profDir = join(dir, 'cpuprofile');
const redisServer = await startPrivateRedis({ dir: join(dir, 'redis'), persist: false, searchPath: process.env['PATH'] ?? '' });
const redis = createRedisConnection({ url: redisServer.url, role: 'command' }) as Redis;
const children: Child[] = [];
try {
  const fixtures = await spawnChild('./fixtures-child.ts', {});
  children.push(fixtures);
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, benchPolicy(String(fixtures.ready['executorUrl'])));
  const server = await spawnChild(
    './server-child.js',
    countersignEnv({
      redisUrl: redisServer.url,
      prefix: PREFIX,
      dataDir: join(dir, 'data'),
      policyFile,
      adminToken: randomBytes(24).toString('hex'),
      agentSecret: SECRET,
      slackSigningSecret: randomBytes(16).toString('hex'),
      slackApiUrl: String(fixtures.ready['slackApiUrl']),
    }),
    [...startFlags(), ...(TRACE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])],
  );
  children.push(server);
  const api = new HttpClient(String(server.ready['url']));
  // What follows a proposal: its card, or for an auto-allowed one its execution and outcome,
  // counted where it lands (the fake Slack, the executor), then the audit log quiet.
  const owed = { cards: 0, executed: 0 };
  const propose = async () => {
    const r = await submit(api, SECRET, KIND === 'auto' ? tagBody() : KIND === 'denied' ? deleteBody() : paymentBody());
    if (r.status === 'pending') owed.cards += 1;
    if (r.status === 'approved') owed.executed += 1;
  };
  const followUps = () => waitFollowUps(fixtures, owed, { redis, key: redisKeys(PREFIX).audit }, 300_000);
  await pool(500, 8, propose); // warm-up: JIT, connections, scripts loaded
  await followUps();

  const redisCpu = () => redisCpuMs(redis);
  const serverCpu = async () => Number((await server.ask('cpu'))['ms']);
  if (TRACE) await redis.config('SET', 'slowlog-log-slower-than', '0');
  await redis.config('SET', 'slowlog-max-len', '1000000');
  await redis.slowlog('RESET');
  const r0 = await redisCpu();
  const s0 = await serverCpu();
  const t0 = wallNow();
  const run = await pool(COUNT, CONCURRENCY, propose);
  const elapsed = wallNow() - t0;
  // The follow-up work belongs to the measurement window: wait until it is done.
  const drained = (await followUps()) - t0;
  const r1 = await redisCpu();
  const s1 = await serverCpu();
  const slow = (await redis.slowlog('GET', -1)) as [number, number, number, string[], ...unknown[]][];
  await redis.config('SET', 'slowlog-log-slower-than', '10000');

  const out: string[] = [];
  out.push(`${run.done} ${KIND} proposals at c=${CONCURRENCY} in ${fmt(elapsed / 1000, 2)} s = ${fmt((run.done / elapsed) * 1000, 0)}/s (${run.errors} errors${TRACE ? '; under --cpu-prof' : ''})`);
  out.push(`until the last follow-up (card posted, or request at the executor) landed: ${fmt(drained / 1000, 2)} s = ${fmt((run.done / drained) * 1000, 0)}/s sustained`);
  out.push(`CPU per proposal: countersign ${fmt(((s1 - s0) / run.done) * 1000, 0)} µs, redis-server ${fmt(((r1 - r0) / run.done) * 1000, 0)} µs`);
  // Redis time by command (scripts by their first key, which names them well enough).
  const byCmd = new Map<string, { n: number; us: number }>();
  for (const [, , us, args] of slow) {
    const cmd = String(args[0]).toUpperCase();
    const key = cmd === 'EVALSHA' || cmd === 'EVAL' ? `${cmd} ${String(args[1]).slice(0, 8)} ${String(args[3] ?? '').replace(/p_[\w-]+|\d{3,}/g, '*')}` : cmd;
    const e = byCmd.get(key) ?? { n: 0, us: 0 };
    e.n += 1;
    e.us += us;
    byCmd.set(key, e);
  }
  out.push('', 'redis-server time (SLOWLOG, threshold 0): command, calls per proposal, µs per call, µs per proposal');
  for (const [k, e] of [...byCmd].sort((a, b) => b[1].us - a[1].us).slice(0, 20)) {
    out.push(`  ${k.padEnd(72)} ${fmt(e.n / run.done, 2).padStart(6)} ${fmt(e.us / e.n, 1).padStart(7)} ${fmt(e.us / run.done, 1).padStart(7)}`);
  }
  api.close();
  server.proc.disconnect();
  await new Promise<void>((r) => server.proc.once('exit', () => r()));
  if (TRACE) out.push('', ...hottest(profDir));
  const keep = process.env['PROFILE_OUT'];
  const file = TRACE ? readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
  if (keep !== undefined && file !== undefined) {
    copyFileSync(join(profDir, file), keep);
    out.push('', `CPU profile saved to ${keep} (open it in Chrome DevTools, Performance tab)`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  for (const c of children) if (c.proc.connected) c.proc.disconnect();
  await redis.quit().catch(() => undefined);
  await redisServer.stop();
  rmSync(dir, { recursive: true, force: true });
}
