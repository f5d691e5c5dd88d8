import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Redis } from 'ioredis';
import { spawnChild, startFlags, type Child } from './children.ts';
import { fmt, redisCpuMs, summarize, wallNow, type Summary } from './lib.ts';

// 10. The MCP gateway's added latency: the SDK Client calling `echo` on a real SDK upstream
// (its own child process) directly, and the same Client code calling `bench__echo` on
// countersign's POST /mcp with an agent key, where the policy allows echo (so the call runs
// at once in the agent's request: src/app/call-tool.ts runAllowed). Both in the same run, in
// alternating chunks, one Client per caller, each caller making its calls one after another.
// countersign runs in a child of its own for this phase (own prefix, policy, data dir) and is
// stopped after it, so nothing else it does (queues, intake's cards) is in the figures.

export const MCP_SERVER = 'bench';
const MCP_PREFIX = 'benchmcp';
const ROUNDS = 6;

export interface McpSetup {
  server: Child;
  upstream: Child;
  /** countersign's /mcp. */
  gatewayUrl: URL;
  /** The upstream's own endpoint. */
  upstreamUrl: URL;
  key: string;
  stop(): Promise<void>;
}

function mcpPolicy(upstreamUrl: string, key: string): string {
  return `
version: 1
agents:
  - id: bench-mcp-agent
    mcp_key_sha256: ${createHash('sha256').update(key).digest('hex')}
mcp:
  servers:
    ${MCP_SERVER}:
      url: ${upstreamUrl}
      tools:
        echo: { context: { reversible: true, destination: internal } }
rules:
  - name: echo-runs-at-once
    when: action.operation == "echo"
    effect: allow
    risk: low
default: { effect: deny, reason: only echo is benchmarked }
`;
}

const stopChild = (c: Child) =>
  new Promise<void>((resolve) => {
    if (c.proc.exitCode !== null) return resolve();
    c.proc.once('exit', () => resolve());
    c.proc.disconnect?.();
  });

/** The upstream child and a countersign child fronting it; `execArgv` is added to countersign's flags (e.g. --cpu-prof). */
export async function startMcpSetup(o: { redisUrl: string; dir: string; execArgv?: string[] }): Promise<McpSetup> {
  const upstream = await spawnChild('./mcp-upstream-child.js', {});
  const key = `bench-mcp-key-${randomBytes(24).toString('hex')}`;
  const policyFile = join(o.dir, 'mcp-policy.yaml');
  writeFileSync(policyFile, mcpPolicy(String(upstream.ready['url']), key));
  let server: Child;
  try {
    server = await spawnChild(
      './server-child.js',
      {
        PORT: '0',
        HOST: '127.0.0.1',
        REDIS_URL: o.redisUrl,
        COUNTERSIGN_PREFIX: MCP_PREFIX,
        COUNTERSIGN_DATA_DIR: join(o.dir, 'mcp-data'),
        POLICY_FILE: policyFile,
        COUNTERSIGN_ADMIN_TOKEN: randomBytes(24).toString('hex'),
        LOG_LEVEL: 'silent',
        NODE_ENV: 'development',
        BENCH_TIMING: '0',
      },
      [...startFlags(), ...(o.execArgv ?? [])],
    );
  } catch (e) {
    await stopChild(upstream);
    throw e;
  }
  return {
    server,
    upstream,
    gatewayUrl: new URL('/mcp', String(server.ready['url'])),
    upstreamUrl: new URL(String(upstream.ready['url'])),
    key,
    // countersign first: it holds a connection to the upstream.
    stop: async () => {
      await stopChild(server);
      await stopChild(upstream);
    },
  };
}

async function connect(url: URL, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'bench-agent', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return client;
}

/** One `tools/call` of echo; anything but its own text back is an error. */
async function echo(client: Client, tool: string, n: number): Promise<void> {
  const text = `call ${n}`;
  const result = await client.callTool({ name: tool, arguments: { text } });
  const first = (result.content as { type: string; text?: string }[] | undefined)?.[0];
  if (result.isError === true || first?.text === undefined || !first.text.includes(text)) throw new Error(`${tool}: unexpected result ${JSON.stringify(result).slice(0, 200)}`);
}

export interface Side {
  lat: Summary;
  errors: number;
  /** Calls per second over this side's chunks. */
  rps: number;
  /** CPU per call over this side's chunks, µs. */
  cpu: { countersign: number; upstream: number; redis: number; generator: number };
  /** Redis commands per call. */
  redisCommands: number;
}

export interface McpLatency {
  concurrency: number;
  direct: Side;
  through: Side;
}

interface Acc {
  lat: number[];
  errors: number;
  firstError: unknown;
  ms: number;
  cpu: { countersign: number; upstream: number; redis: number; generator: number };
  commands: number;
}

const redisCommands = async (redis: Redis) => Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1] ?? NaN);

/**
 * For each [concurrency, calls]: `concurrency` callers on each side (a Client each), a warm-up,
 * then ROUNDS rounds of a direct chunk and a through chunk (which goes first alternates), each
 * chunk `calls / ROUNDS` calls in all. CPU is read around each chunk from every process.
 * Bounded by `capMs` per concurrency, by whole rounds: a round begun is finished, so both
 * sides always have made as many calls.
 */
export async function mcpGatewayLatency(setup: McpSetup, redis: Redis, plan: readonly [number, number][], log: (line: string) => void, capMs = Infinity): Promise<McpLatency[]> {
  const cpuNow = async () => ({
    countersign: Number((await setup.server.ask('cpu'))['ms']),
    upstream: Number((await setup.upstream.ask('cpu'))['ms']),
    redis: await redisCpuMs(redis),
    generator: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  });
  const out: McpLatency[] = [];
  for (const [concurrency, calls] of plan) {
    const direct = await Promise.all(Array.from({ length: concurrency }, () => connect(setup.upstreamUrl, {})));
    const through = await Promise.all(Array.from({ length: concurrency }, () => connect(setup.gatewayUrl, { authorization: `Bearer ${setup.key}` })));
    try {
      const sides = {
        direct: { clients: direct, tool: 'echo' },
        through: { clients: through, tool: `${MCP_SERVER}__echo` },
      };
      let seq = 0;
      const chunk = async (side: keyof typeof sides, count: number, acc: Acc | null) => {
        const { clients, tool } = sides[side];
        let left = count;
        const before = acc === null ? null : { cpu: await cpuNow(), commands: await redisCommands(redis) };
        const t0 = wallNow();
        await Promise.all(
          clients.map(async (client) => {
            while (left > 0) {
              left -= 1;
              const t = wallNow();
              try {
                await echo(client, tool, ++seq);
                acc?.lat.push(wallNow() - t);
              } catch (e) {
                if (acc === null) throw e;
                acc.errors += 1;
                acc.firstError ??= e;
              }
            }
          }),
        );
        if (acc === null || before === null) return;
        acc.ms += wallNow() - t0;
        const after = await cpuNow();
        for (const k of ['countersign', 'upstream', 'redis', 'generator'] as const) acc.cpu[k] += after[k] - before.cpu[k];
        acc.commands += (await redisCommands(redis)) - before.commands;
      };
      // Warm-up: connections, the gateway's tool list and upstream connection, the JIT.
      const warm = Math.max(200, concurrency * 20);
      await chunk('direct', warm, null);
      await chunk('through', warm, null);
      const acc = (): Acc => ({ lat: [], errors: 0, firstError: null, ms: 0, cpu: { countersign: 0, upstream: 0, redis: 0, generator: 0 }, commands: 0 });
      const accs = { direct: acc(), through: acc() };
      const per = Math.max(concurrency, Math.round(calls / ROUNDS));
      const deadline = wallNow() + capMs;
      for (let round = 0; round < ROUNDS; round++) {
        if (wallNow() > deadline) {
          log(`  MCP c=${concurrency}: ${round} of ${ROUNDS} rounds within ${fmt(capMs / 1000, 0)} s`);
          break;
        }
        const order: (keyof typeof sides)[] = round % 2 === 0 ? ['direct', 'through'] : ['through', 'direct'];
        for (const side of order) await chunk(side, per, accs[side]);
      }
      const side = (a: Acc, name: string): Side => {
        if (a.errors > 0) log(`  MCP ${name} c=${concurrency}: ${a.errors} errors, first: ${String((a.firstError as Error)?.message ?? a.firstError)}`);
        const n = Math.max(1, a.lat.length);
        const us = (ms: number) => (ms / n) * 1000;
        return {
          lat: summarize(a.lat),
          errors: a.errors,
          rps: (a.lat.length / a.ms) * 1000,
          cpu: { countersign: us(a.cpu.countersign), upstream: us(a.cpu.upstream), redis: us(a.cpu.redis), generator: us(a.cpu.generator) },
          redisCommands: a.commands / n,
        };
      };
      out.push({ concurrency, direct: side(accs.direct, 'direct'), through: side(accs.through, 'through countersign') });
    } finally {
      await Promise.all([...direct, ...through].map((c) => c.close().catch(() => undefined)));
    }
  }
  return out;
}

/** The gateway's target (issue 14): at c=16, added p50 <= 1 ms and p99 <= 5 ms. */
export const MCP_TARGET = { concurrency: 16, p50: 1, p99: 5 };

export function mcpGatewayRows(results: readonly McpLatency[], row: (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void): void {
  const lat = (s: Summary) => `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} / max ${fmt(s.max, 2)} ms`;
  for (const r of results) {
    const { direct: d, through: t } = r;
    const added = { p50: t.lat.p50 - d.lat.p50, p99: t.lat.p99 - d.lat.p99 };
    const errs = (s: Side) => (s.errors > 0 ? `, ${s.errors} errors` : '');
    row(`10. MCP tools/call c=${r.concurrency}, direct to the upstream (${d.lat.count} calls)`, `${fmt(d.rps, 0)} calls/s, ${lat(d.lat)}${errs(d)}`);
    const target =
      r.concurrency === MCP_TARGET.concurrency
        ? `${added.p50 <= MCP_TARGET.p50 && added.p99 <= MCP_TARGET.p99 && t.errors === 0 ? 'met' : 'MISSED'}: added p50 <= ${MCP_TARGET.p50} ms, p99 <= ${MCP_TARGET.p99} ms`
        : '';
    row(
      `10. MCP tools/call c=${r.concurrency}, through countersign /mcp, allowed (${t.lat.count} calls)`,
      `${fmt(t.rps, 0)} calls/s, ${lat(t.lat)}${errs(t)}`,
      `direct p50 ${fmt(d.lat.p50, 2)} / p99 ${fmt(d.lat.p99, 2)} ms`,
      `added p50 +${fmt(added.p50, 2)} / p99 +${fmt(added.p99, 2)} ms`,
      target,
    );
    row(
      `10. MCP CPU per call c=${r.concurrency}, µs (through / direct)`,
      `countersign ${fmt(t.cpu.countersign, 0)}; redis-server ${fmt(t.cpu.redis, 0)} (${fmt(t.redisCommands, 1)} commands); upstream ${fmt(t.cpu.upstream, 0)} / ${fmt(d.cpu.upstream, 0)}; load generator ${fmt(t.cpu.generator, 0)} / ${fmt(d.cpu.generator, 0)}`,
      `direct: redis-server ${fmt(d.cpu.redis, 0)} (${fmt(d.redisCommands, 1)} commands), countersign ${fmt(d.cpu.countersign, 0)} (idle)`,
    );
  }
}

/** The MCP phase of `npm run bench`: its own countersign and upstream children, stopped after. */
export async function mcpGatewayPhase(o: { redisUrl: string; dir: string; redis: Redis; plan: readonly [number, number][]; capMs: number; log: (line: string) => void }): Promise<McpLatency[]> {
  const setup = await startMcpSetup({ redisUrl: o.redisUrl, dir: o.dir });
  try {
    return await mcpGatewayLatency(setup, o.redis, o.plan, o.log, o.capMs);
  } finally {
    await setup.stop();
  }
}
