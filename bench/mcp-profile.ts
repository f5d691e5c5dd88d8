import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedisConnection } from '../adapters/redis/connection.ts';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import { buildCountersign } from './children.ts';
import { costGroups, hottest, inclusiveAll, monotonicUs, type CostGroup } from './cpu-profile.ts';
import { fmt } from './lib.ts';
import { mcpGatewayLatency, startMcpSetup } from './mcp-gateway.ts';

// `PROFILE_KIND=mcp npm run bench:profile`: where an allowed MCP tools/call spends in
// countersign. The phase-10 setup (bench/mcp-gateway.ts) with countersign under --cpu-prof,
// PROFILE_COUNT calls per side (default 6000) at PROFILE_CONCURRENCY (16); prints the calls'
// latency, Redis per call by command (SLOWLOG at threshold 0) and the profile of the measured
// window only (start-up and warm-up left out): inclusive time of every layer, then self time.
// PROFILE_OUT=file.cpuprofile keeps the profile. Profiling slows countersign down: the figures
// say where the time goes, not how long a call takes.

const COUNT = Number(process.env['PROFILE_COUNT'] ?? '6000');
const CONCURRENCY = Number(process.env['PROFILE_CONCURRENCY'] ?? '16');
const TRACE = process.env['PROFILE_CPU'] !== '0';

// The layers an allowed call goes through, to split countersign's busy time by (innermost wins).
const has = (...parts: string[]) => (f: { url: string }) => parts.some((p) => f.url.includes(p));
const LAYERS: CostGroup[] = [
  { name: "Ajv (the SDK Server's JSON Schema validator, built with each request's Server)", match: has('/node_modules/ajv', '/json-schema-traverse/', '/fast-uri/', '/fast-deep-equal/') },
  { name: 'zod (the SDK validating every JSON-RPC message; countersign parsing inputs)', match: has('/node_modules/zod/') },
  { name: 'Redis client (ioredis writing commands, parsing replies)', match: has('/node_modules/ioredis/', '/redis-parser/', '/@ioredis/') },
  { name: "@hono/node-server (the SDK's Node transport: IncomingMessage -> Request, Response -> ServerResponse)", match: has('/@hono/node-server/') },
  { name: 'fetch (undici) for the call to the upstream', match: has('undici') },
  { name: 'MCP SDK Client (countersign -> upstream)', match: has('/@modelcontextprotocol/sdk/dist/esm/client/') },
  { name: 'MCP SDK Server, Protocol, web-standard transport (one per request)', match: has('/@modelcontextprotocol/sdk/') },
  { name: 'audit digests (canonicalize)', match: has('/node_modules/canonicalize/') },
  { name: 'audit sealer and search indexer (background, per event)', match: has('/seal-audit.', '/audit-index', '/audit-sealer', '/core/audit.') },
  { name: 'policy (CEL) and the proposal draft', match: has('/cel-js/', '/core/policy/', '/submit-proposal.') },
  { name: 'countersign: HTTP layer, call-tool, stores, commit flow', match: has('/dist/src/', '/dist/adapters/') },
];

buildCountersign();
const dir = mkdtempSync(join(tmpdir(), 'countersign-mcp-profile-'));
const profDir = join(dir, 'cpuprofile');
mkdirSync(profDir);
const redisServer = await startPrivateRedis({ dir: join(dir, 'redis'), persist: false, searchPath: process.env['PATH'] ?? '' });
const redis = createRedisConnection({ url: redisServer.url, role: 'command' }) as Redis;
try {
  const setup = await startMcpSetup({ redisUrl: redisServer.url, dir, execArgv: TRACE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] });
  const out: string[] = [];
  let calls = 0;
  let window = { fromUs: 0, toUs: 0 };
  try {
    // A short run first, for the warm-up and the JIT; then the measured one under SLOWLOG.
    await mcpGatewayLatency(setup, redis, [[CONCURRENCY, Math.min(COUNT, 1200)]], (l) => process.stderr.write(`${l}\n`));
    await redis.config('SET', 'slowlog-max-len', '1000000');
    if (TRACE) await redis.config('SET', 'slowlog-log-slower-than', '0');
    await redis.slowlog('RESET');
    const fromUs = monotonicUs();
    const [r] = await mcpGatewayLatency(setup, redis, [[CONCURRENCY, COUNT]], (l) => process.stderr.write(`${l}\n`));
    window = { fromUs, toUs: monotonicUs() };
    const slow = (await redis.slowlog('GET', -1)) as [number, number, number, string[], ...unknown[]][];
    await redis.config('SET', 'slowlog-log-slower-than', '10000');
    if (r === undefined) throw new Error('no measurement');
    const lat = (s: typeof r.direct) => `p50 ${fmt(s.lat.p50, 2)} / p99 ${fmt(s.lat.p99, 2)} ms, ${fmt(s.rps, 0)} calls/s`;
    out.push(`${r.through.lat.count} allowed tools/call per side at c=${CONCURRENCY}${TRACE ? ' (countersign under --cpu-prof)' : ''}`);
    out.push(`  direct ${lat(r.direct)}; through countersign ${lat(r.through)}`);
    out.push(`CPU per call through countersign: countersign ${fmt(r.through.cpu.countersign, 0)} µs, redis-server ${fmt(r.through.cpu.redis, 0)} µs, upstream ${fmt(r.through.cpu.upstream, 0)} µs (direct ${fmt(r.direct.cpu.upstream, 0)} µs)`);
    // Redis per through call (the direct chunks add only the background: sealer, queues).
    calls = r.through.lat.count;
    const byCmd = new Map<string, { n: number; us: number }>();
    for (const [, , us, args] of slow) {
      const cmd = String(args[0]).toUpperCase();
      const key = cmd === 'EVALSHA' || cmd === 'EVAL' ? `${cmd} ${String(args[1]).slice(0, 8)} ${String(args[3] ?? '').replace(/p_[\w-]+|\d{3,}/g, '*')}` : cmd;
      const e = byCmd.get(key) ?? { n: 0, us: 0 };
      e.n += 1;
      e.us += us;
      byCmd.set(key, e);
    }
    out.push('', 'redis-server time (SLOWLOG, threshold 0, both sides\' chunks): command, calls per through call, µs per call, µs per through call');
    for (const [k, e] of [...byCmd].sort((a, b) => b[1].n - a[1].n).slice(0, 25)) {
      out.push(`  ${k.padEnd(72)} ${fmt(e.n / calls, 2).padStart(6)} ${fmt(e.us / e.n, 1).padStart(7)} ${fmt(e.us / calls, 1).padStart(7)}`);
    }
  } finally {
    await setup.stop();
  }
  if (TRACE) {
    const groups = costGroups(profDir, LAYERS, window);
    const busy = groups.reduce((a, g) => a + g.us, 0);
    out.push('', `countersign's busy samples in the measured window (${fmt(busy / 1000, 0)} ms; both sides' chunks), by layer (innermost frame wins); sampled µs per through call`);
    for (const g of groups) out.push(`  ${fmt(g.share * 100, 1).padStart(5)}% ${fmt(g.us / Math.max(1, calls), 0).padStart(6)}  ${g.name === 'other' ? 'Node internals only (HTTP server, sockets, timers, promises)' : g.name}`);
    out.push('', ...inclusiveAll(profDir, 70, window), '', ...hottest(profDir, window));
  }
  const keep = process.env['PROFILE_OUT'];
  const file = TRACE ? readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
  if (keep !== undefined && file !== undefined) {
    copyFileSync(join(profDir, file), keep);
    out.push('', `CPU profile saved to ${keep} (open it in Chrome DevTools, Performance tab)`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await redis.quit().catch(() => undefined);
  await redisServer.stop();
  rmSync(dir, { recursive: true, force: true });
}
