import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToolUpstreams } from '../../adapters/mcp/upstreams.ts';
import { UpstreamUnavailableError, type ToolCallResult, type ToolUpstreams } from '../../src/core/mcp-ports.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { McpServerSpec, ToolCallDefaults, UpstreamTransport, UpstreamValue } from '../../src/core/policy/model.ts';
import { startHttpUpstream, type HttpUpstream } from '../helpers/mcp-upstream.ts';

// The upstream side of the MCP gateway against real SDK servers: one over Streamable HTTP, one a
// stdio child process. Every case runs against both.

const SECRET = 'sk-live-7c1e0d93b2';
const STDIO_SERVER = fileURLToPath(new URL('../helpers/mcp-stdio-upstream.mjs', import.meta.url));
const NO_DEFAULTS: ToolCallDefaults = {
  target_argument: null,
  data_sensitivity: null,
  destination: null,
  environment: null,
  reversible: null,
  value_argument: null,
  currency: null,
  currency_argument: null,
};

interface LogEntry {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A logger that keeps every entry and lets a test wait for one. */
function recordingLogger(): Logger & { entries: LogEntry[]; waitFor(ok: (e: LogEntry) => boolean): Promise<LogEntry> } {
  const entries: LogEntry[] = [];
  const waiters: { ok: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  const log = (level: string) => (obj: object, msg?: string) => {
    const entry = { level, obj: obj as Record<string, unknown>, msg };
    entries.push(entry);
    for (const w of [...waiters]) {
      if (w.ok(entry)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    }
  };
  return {
    entries,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    waitFor(ok) {
      const found = entries.find(ok);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ ok, resolve }));
    },
  };
}

function spec(transport: UpstreamTransport, timeout_ms = 10_000): McpServerSpec {
  return { name: 'files', transport, timeout_ms, defaults: NO_DEFAULTS, tools: new Map() };
}

function text(result: ToolCallResult): string {
  if (result.kind !== 'result') throw new Error(`expected a result, got ${JSON.stringify(result)}`);
  const content = result.result.content as { type: string; text: string }[];
  return content.map((c) => c.text).join('');
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Fixture {
  /** The spec for a working upstream (a fresh call log for stdio). */
  working(): McpServerSpec;
  /** The spec whose credential comes from a secret that is not set. */
  missingSecret(): McpServerSpec;
  unreachable(): Promise<McpServerSpec>;
  /** The calls of `tool` that reached the upstream (for stdio, across restarts). */
  callsOf(s: McpServerSpec, tool: string): number;
}

let http: HttpUpstream;
beforeAll(async () => {
  http = await startHttpUpstream();
});
afterAll(async () => {
  await http.close();
});

const fixtures: Record<'http' | 'stdio', Fixture> = {
  http: {
    working: () =>
      spec({
        kind: 'http',
        url: http.url,
        headers: new Map<string, UpstreamValue>([
          ['Authorization', { env: 'FILES_TOKEN', prefix: 'Bearer ' }],
          ['X-Tenant', 'acme'],
        ]),
      }),
    missingSecret: () => spec({ kind: 'http', url: http.url, headers: new Map([['Authorization', { env: 'FILES_TOKEN_UNSET', prefix: 'Bearer ' }]]) }),
    unreachable: async () => spec({ kind: 'http', url: `http://127.0.0.1:${await closedPort()}/mcp`, headers: new Map() }),
    callsOf: (_s, tool) => http.calls.filter((c) => c.tool === tool).length,
  },
  stdio: {
    working: () =>
      spec({
        kind: 'stdio',
        command: process.execPath,
        args: [STDIO_SERVER],
        env: new Map<string, UpstreamValue>([
          ['FILES_TOKEN', { env: 'FILES_TOKEN', prefix: '' }],
          ['UPSTREAM_CALL_LOG', join(mkdtempSync(join(tmpdir(), 'mcp-upstream-')), 'calls.jsonl')],
        ]),
        cwd: null,
      }),
    missingSecret: () =>
      spec({ kind: 'stdio', command: process.execPath, args: [STDIO_SERVER], env: new Map([['FILES_TOKEN', { env: 'FILES_TOKEN_UNSET', prefix: '' }]]), cwd: null }),
    unreachable: async () => spec({ kind: 'stdio', command: join(tmpdir(), 'no-such-mcp-server-binary'), args: [], env: new Map(), cwd: null }),
    callsOf: (s, tool) => stdioCalls(s).filter((c) => c.tool === tool).length,
  },
};

function stdioCalls(s: McpServerSpec): { tool: string; pid: number }[] {
  if (s.transport.kind !== 'stdio') throw new Error('not stdio');
  const log = s.transport.env.get('UPSTREAM_CALL_LOG');
  if (typeof log !== 'string' || !existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { tool: string; pid: number });
}

describe.each(['http', 'stdio'] as const)('tool upstreams over %s', (kind) => {
  const fixture = fixtures[kind];
  let upstreams: ToolUpstreams | null = null;
  let logger: ReturnType<typeof recordingLogger>;

  const open = (s: McpServerSpec, listCacheMs?: number) => {
    logger = recordingLogger();
    upstreams = createToolUpstreams({
      servers: new Map([[s.name, s]]),
      secrets: { get: (name) => (name === 'FILES_TOKEN' ? SECRET : undefined) },
      logger,
      ...(listCacheMs === undefined ? {} : { listCacheMs }),
    });
    return upstreams;
  };

  afterEach(async () => {
    await upstreams?.close();
    upstreams = null;
    // Whatever happened, the secret never reached the log.
    expect(JSON.stringify(logger.entries)).not.toContain(SECRET);
  });

  it('lists the tools with their input schemas', async () => {
    const tools = await open(fixture.working()).listTools('files');
    expect(tools.map((t) => t.name).sort()).toEqual(['add_tool', 'crash', 'echo', 'fail', 'refund', 'slow']);
    const refund = tools.find((t) => t.name === 'refund');
    expect(refund?.description).toBe('Refunds an amount on a charge.');
    expect(refund?.inputSchema).toMatchObject({
      type: 'object',
      properties: { charge_id: { type: 'string' }, amount: { type: 'number' }, currency: { type: 'string' } },
      required: ['charge_id', 'amount'],
    });
  });

  it('injects the credential and redacts it from what the upstream echoes', async () => {
    const s = fixture.working();
    const caller = await open(s).connect('files');
    const result = await caller.call('echo', { show_credential: true, note: 'hi' }, { timeoutMs: 10_000 });
    expect(result).toMatchObject({ kind: 'result', is_error: false });
    const echoed = JSON.parse(text(result)) as { args: unknown; credential: unknown };
    // The upstream got exactly the injected value: it comes back whole as the marker.
    expect(echoed).toEqual({ args: { show_credential: true, note: 'hi' }, credential: '[redacted]' });
    expect(JSON.stringify(result)).not.toContain(SECRET);
    if (kind === 'http') {
      const call = http.calls.at(-1);
      expect(call?.headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(call?.headers['x-tenant']).toBe('acme');
    }
    const refund = await caller.call('refund', { charge_id: 'ch_1', amount: 25 }, { timeoutMs: 10_000 });
    expect(text(refund)).toBe('refunded 25 on ch_1');
  });

  it("reports the tool's own failure as an isError result", async () => {
    const result = await (await open(fixture.working()).connect('files')).call('fail', {}, { timeoutMs: 10_000 });
    expect(result).toMatchObject({ kind: 'result', is_error: true });
    expect(text(result)).toBe('the tool failed');
  });

  it('reports a JSON-RPC error (unknown tool) as kind error, with injected values redacted from its message', async () => {
    const caller = await open(fixture.working()).connect('files');
    const unknown = await caller.call('no_such_tool', {}, { timeoutMs: 10_000 });
    // The message as the upstream sent it (the SDK's server puts its own "MCP error" prefix on
    // the wire; the client's second one is not passed on).
    expect(unknown).toMatchObject({ kind: 'error', code: -32602, message: 'MCP error -32602: Unknown tool: no_such_tool' });
    const echoing = await caller.call(`tool-${SECRET}`, {}, { timeoutMs: 10_000 });
    expect(echoing).toMatchObject({ kind: 'error', code: -32602, message: 'MCP error -32602: Unknown tool: tool-[redacted]' });
  });

  it('reports no answer within the timeout as timeout, and keeps the connection', async () => {
    const s = fixture.working();
    const caller = await open(s).connect('files');
    const before = fixture.callsOf(s, 'slow');
    const result = await caller.call('slow', { ms: 30_000 }, { timeoutMs: 100 });
    expect(result.kind).toBe('timeout');
    expect(fixture.callsOf(s, 'slow')).toBe(before + 1);
    expect(text(await caller.call('echo', {}, { timeoutMs: 10_000 }))).toBe('{"args":{}}');
    expect(await upstreams!.connect('files')).toBe(caller);
  });

  it('reports a connection broken mid-call as lost, never sends it again, and reconnects for the next call', async () => {
    const s = fixture.working();
    const u = open(s);
    const first = await u.connect('files');
    const before = fixture.callsOf(s, 'crash');
    const result = await first.call('crash', {}, { timeoutMs: 10_000 });
    expect(result.kind).toBe('lost');
    expect(fixture.callsOf(s, 'crash')).toBe(before + 1);
    const second = await u.connect('files');
    expect(second).not.toBe(first);
    expect(text(await second.call('refund', { charge_id: 'ch_2', amount: 5 }, { timeoutMs: 10_000 }))).toBe('refunded 5 on ch_2');
    expect(fixture.callsOf(s, 'crash')).toBe(before + 1);
    if (kind === 'stdio') {
      const pids = new Set(stdioCalls(s).map((c) => c.pid));
      expect(pids.size).toBe(2);
    }
  });

  it('reports a call as lost when the connection breaks after its answer began', async () => {
    const s = fixture.working();
    const caller = await open(s).connect('files');
    const before = fixture.callsOf(s, 'crash');
    // Progress arrives on the call's own response stream (HTTP): it was open when it broke.
    const result = await caller.call('crash', {}, { timeoutMs: 15_000, onProgress: () => http.crashHeld() });
    expect(result.kind).toBe('lost');
    expect(fixture.callsOf(s, 'crash')).toBe(before + 1);
  });

  it('passes progress on to onProgress; a cancelled call is lost', async () => {
    const caller = await open(fixture.working()).connect('files');
    const abort = new AbortController();
    let reported!: (p: unknown) => void;
    const progress = new Promise((resolve) => (reported = resolve));
    const pending = caller.call('slow', { ms: 30_000 }, { timeoutMs: 10_000, signal: abort.signal, onProgress: (p) => reported(p) });
    expect(await progress).toEqual({ progress: 1, total: 2, message: 'halfway' });
    abort.abort();
    expect(await pending).toMatchObject({ kind: 'lost' });
  });

  it('shares one connect between concurrent first uses', async () => {
    const u = open(fixture.working());
    const sessionsBefore = http.sessions();
    const [a, b, c] = await Promise.all([u.connect('files'), u.connect('files'), u.connect('files')]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    if (kind === 'http') expect(http.sessions()).toBe(sessionsBefore + 1);
  });

  it('refuses to connect without the secret, naming the variable', async () => {
    const u = open(fixture.missingSecret());
    const error = await u.connect('files').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect((error as Error).message).toContain('FILES_TOKEN_UNSET');
    await expect(u.listTools('files')).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('refuses to connect to an upstream it cannot reach', async () => {
    const u = open(await fixture.unreachable());
    const error = await u.connect('files').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect((error as UpstreamUnavailableError).server).toBe('files');
  });

  it('refuses an upstream the policy does not name', async () => {
    await expect(open(fixture.working()).connect('other')).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  if (kind === 'stdio') {
    it("logs the server's stderr at debug, redacted", async () => {
      const u = open(fixture.working());
      await u.connect('files');
      const line = await logger.waitFor((e) => e.msg === 'upstream stderr');
      expect(line.level).toBe('debug');
      expect(line.obj.line).toBe('fake stdio upstream starting, token [redacted]');
    });

    it('reads the tool list again when the server says it changed', async () => {
      const u = open(fixture.working());
      expect((await u.listTools('files')).map((t) => t.name)).not.toContain('extra');
      expect(text(await (await u.connect('files')).call('add_tool', { name: 'extra' }, { timeoutMs: 10_000 }))).toBe('added extra');
      expect((await u.listTools('files')).map((t) => t.name)).toContain('extra');
    });

    it('stops the server process on close', async () => {
      const s = fixture.working();
      const u = open(s);
      await (await u.connect('files')).call('echo', {}, { timeoutMs: 10_000 });
      const pid = stdioCalls(s)[0]?.pid;
      expect(pid).toBeTypeOf('number');
      await u.close();
      expect(() => process.kill(pid!, 0)).toThrow(/ESRCH/);
    });
  }

  it('reuses the tool list until it expires', async () => {
    const u = open(fixture.working(), 60_000);
    const first = await u.listTools('files');
    expect(await u.listTools('files')).toBe(first);
  });
});
