import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { redisTargetLabel } from '../../adapters/redis/outage-log.ts';
import { startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import { signedHeaders } from '../../src/core/signing.ts';
import { testAgent } from '../helpers/agent.ts';
import { actionBody, executionPolicy, waitForStatus } from '../helpers/execution.ts';
import { startFakeHttpServer } from '../helpers/executor-server.ts';

// countersign stopped the way Kubernetes and systemd stop it (SIGTERM), as a child process on a
// redis-server of the test's own, so that the test can kill Redis too. `bin/countersign.js
// start` where the defaults do; the fixture (the same serveUntilSignalled) where a test needs
// shorter timings. Exit codes and lines are the ones the README documents.

const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;
const SHUTDOWN_TIMEOUT_MS = 2000;
const children = new Set<ChildProcess>();
const redises = new Set<PrivateRedis>();
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const r of redises) await r.stop();
});

async function ownRedis(dir: string, persist = false, port?: number): Promise<PrivateRedis> {
  const r = await startPrivateRedis({ dir, persist, searchPath: process.env['PATH'] ?? '', ...(port === undefined ? {} : { port }) });
  redises.add(r);
  return r;
}

interface App {
  child: ChildProcess;
  url: string;
  out: string[];
  err: string[];
  /** Resolves with the first line of `stream` (already written or to come) that `match` accepts. */
  line(stream: 'out' | 'err', match: (line: string) => boolean): Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function launch(kind: 'bin' | 'fixture', env: Record<string, string>): Promise<App> {
  const args = kind === 'bin' ? [BIN, 'start'] : ['--import', 'tsx', 'test/fixtures/app-process.ts'];
  const child = spawn(process.execPath, args, { cwd: process.cwd(), env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      r({ code, signal, at: Date.now() });
    }),
  );
  const lines = { out: [] as string[], err: [] as string[] };
  const waiters: { stream: 'out' | 'err'; match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  for (const stream of ['out', 'err'] as const) {
    createInterface({ input: stream === 'out' ? child.stdout! : child.stderr! }).on('line', (l) => {
      lines[stream].push(l);
      for (const w of [...waiters]) {
        if (w.stream === stream && w.match(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
  }
  const line = (stream: 'out' | 'err', match: (l: string) => boolean) =>
    new Promise<string>((resolve) => {
      const seen = lines[stream].find(match);
      if (seen !== undefined) resolve(seen);
      else waiters.push({ stream, match, resolve });
    });
  const listening = (l: string) => {
    try {
      const j = JSON.parse(l) as { url?: string; msg?: string };
      return kind === 'bin' ? j.msg === 'countersign is listening' : j.url !== undefined && j.msg === undefined;
    } catch {
      return false;
    }
  };
  return Promise.race([
    line('out', listening).then((l) => ({ child, url: (JSON.parse(l) as { url: string }).url, out: lines.out, err: lines.err, line, exit })),
    exit.then(({ code }) => Promise.reject(new Error(`countersign exited (${code}) before it listened: ${lines.err.join('\n').slice(0, 2000)}`))),
  ]);
}

const json = (l: string): { level?: number; msg?: string } => {
  try {
    return JSON.parse(l) as { level?: number; msg?: string };
  } catch {
    return {};
  }
};
const logged = (text: string) => (l: string) => json(l).msg?.includes(text) === true;
/** The outage's first line (not the "still unreachable" ones). */
const outageStarted = (l: string) => /^Redis at \S+ unreachable since/.test(json(l).msg ?? '');
const abandonedLines = (app: App) => app.err.filter((l) => l.includes('exiting with'));

function setup(name: string, options: { executorUrl?: string; executorTimeout?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `countersign-shutdown-${name}-`));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, executionPolicy({ executorUrl: options.executorUrl ?? 'http://127.0.0.1:9', timeout: options.executorTimeout ?? '5s' }));
  const secret = randomBytes(24).toString('hex');
  const env = (redis: PrivateRedis, extra: Record<string, string> = {}): Record<string, string> => ({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    COUNTERSIGN_PREFIX: `t-${randomBytes(6).toString('hex')}`,
    COUNTERSIGN_DATA_DIR: dir,
    POLICY_FILE: policyFile,
    AGENT_BILLING_SECRET: randomBytes(24).toString('hex'),
    AGENT_OPS_SECRET: secret,
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS / 1000}s`,
    ...extra,
  });
  return { dir, secret, env };
}

describe('countersign stopped by SIGTERM', () => {
  it('names Redis by host:port only in its outage lines', () => {
    const target = { clusterNodes: [], sentinels: [], sentinelName: null };
    expect(redisTargetLabel(target, 'redis://user:hunter2-secret@redis.internal:6380/2')).toBe('redis.internal:6380');
    expect(redisTargetLabel(target, 'rediss://:pw@10.0.0.5')).toBe('10.0.0.5:6379');
  });

  it('exits within SHUTDOWN_TIMEOUT after Redis was killed, with the documented code', { timeout: 30_000 }, async () => {
    const { dir, env } = setup('redis-killed');
    const redis = await ownRedis(join(dir, 'redis'));
    const app = await launch('bin', env(redis));
    await redis.stop();
    await app.line('out', outageStarted);

    const sent = Date.now();
    app.child.kill('SIGTERM');
    const { code, signal, at } = await app.exit;
    expect(signal).toBeNull();
    expect(at - sent).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 1000);
    // 0: nothing was left; 1: the timeout cut something, and one line says what.
    expect([0, 1]).toContain(code);
    expect(abandonedLines(app)).toHaveLength(code === 1 ? 1 : 0);
    expect(app.err.some((l) => l.startsWith('SIGTERM: stopping'))).toBe(true);
    // Redis named by host:port; the outage said once, not per attempt and connection.
    expect(app.out.filter(outageStarted)).toHaveLength(1);
    expect(app.out.find(outageStarted)).toContain(`127.0.0.1:${redis.port}`);
  });

  it('lets an execution in flight finish when the executor answers within the timeout: run once, succeeded, exit 0', { timeout: 30_000 }, async () => {
    const executor = await startFakeHttpServer();
    const { dir, secret, env } = setup('finish', { executorUrl: executor.url });
    const redis = await ownRedis(join(dir, 'redis'));
    const e = env(redis);
    let app: App | null = null;
    executor.respond = (req) => {
      // The executor has the request: stop countersign, then answer once it is stopping.
      app!.child.kill('SIGTERM');
      void app!.line('err', (l) => l.startsWith('SIGTERM: stopping')).then(() => req.reply(200, '{"ok":true}'));
      return 'hold';
    };
    app = await launch('bin', e);
    const submitted = await testAgent(app.url, 'ops-agent', secret).propose(actionBody('deploy', 'finish-1'));
    expect(submitted.body.status).toBe('approved');

    const { code } = await app.exit;
    expect(code).toBe(0);
    expect(app.err).toContain('stopped');
    expect(abandonedLines(app)).toHaveLength(0);
    const redisClient = createRedisConnection({ url: redis.url, role: 'command' });
    const doc = JSON.parse((await redisClient.hget(`{${e['COUNTERSIGN_PREFIX']}}:proposal:${submitted.body.id as string}`, 'doc'))!) as { status: string };
    await redisClient.quit();
    expect(doc.status).toBe('succeeded');
    expect(executor.requests).toHaveLength(1);
  });

  it('leaves an execution the executor holds past the timeout to the sweep: exit 1, one line, settled after a restart, run once', { timeout: 60_000 }, async () => {
    const executor = await startFakeHttpServer();
    const { dir, secret, env } = setup('release', { executorUrl: executor.url, executorTimeout: '4s' });
    const redis = await ownRedis(join(dir, 'redis'));
    const e = env(redis, { COUNTERSIGN_TEST_EXECUTION: JSON.stringify({ leaseMarginMs: 200, lockDurationMs: 1000, sweepEveryMs: 250 }) });
    let first: App | null = null;
    executor.respond = () => {
      first!.child.kill('SIGTERM');
      return 'hold';
    };
    first = await launch('fixture', e);
    const submitted = await testAgent(first.url, 'ops-agent', secret).propose(actionBody('deploy', 'release-1'));
    expect(submitted.body.status).toBe('approved');
    const id = submitted.body.id as string;

    const { code } = await first.exit;
    expect(code).toBe(1);
    const [line] = abandonedLines(first);
    expect(abandonedLines(first)).toHaveLength(1);
    expect(line).toContain('1 job(s) running (1 execute)');
    expect(line).toMatch(/execution sweep settles it failed, outcome unknown/);
    const redisClient = createRedisConnection({ url: redis.url, role: 'command' });
    const stored = JSON.parse((await redisClient.hget(`{${e['COUNTERSIGN_PREFIX']}}:proposal:${id}`, 'doc'))!) as { status: string };
    expect(stored.status).toBe('executing');

    // Another process: BullMQ hands it the job again (its lock ran out); the claim stops it, and the sweep settles it.
    const second = await launch('fixture', e);
    const done = await waitForStatus(testAgent(second.url, 'ops-agent', secret), id, (s) => s !== 'executing');
    expect(done.status).toBe('failed');
    expect(done.execution).toMatchObject({ outcome: 'unknown', reason: 'interrupted' });
    const bull = { connection: createRedisConnection({ url: redis.url, role: 'worker' }), prefix: redisKeys(e['COUNTERSIGN_PREFIX']!).bull };
    const queue = new Queue('execute', bull);
    const events = new QueueEvents('execute', { ...bull, connection: createRedisConnection({ url: redis.url, role: 'worker' }) });
    await events.waitUntilReady();
    const job = await queue.getJob(id);
    await job!.waitUntilFinished(events, 15_000).catch(() => undefined);
    expect(['completed', 'failed']).toContain(await job!.getState());
    expect(executor.requests).toHaveLength(1);
    await events.close();
    await queue.close();
    await redisClient.quit();

    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('reports a Redis outage in a few lines: when it starts, while it lasts, when it ends', { timeout: 60_000 }, async () => {
    const { dir, secret, env } = setup('outage');
    const redisDir = join(dir, 'redis');
    const redis = await ownRedis(redisDir, true);
    // A shutdown timeout with room for a loaded machine: this test is about the outage's lines, and
    // its clean exit (0: nothing abandoned) must not depend on closing within 2 s.
    const app = await launch('fixture', env(redis, { COUNTERSIGN_TEST_OUTAGE_REPORT_MS: '1000', SHUTDOWN_TIMEOUT: '10s' }));
    const agent = testAgent(app.url, 'ops-agent', secret);
    expect((await agent.propose(actionBody('noop', 'before'))).status).toBe(201);

    const from = app.out.length;
    await redis.stop();
    await app.line('out', outageStarted);
    // Traffic meanwhile: each request answers 503 without a line of its own.
    for (let i = 0; i < 5; i++) expect((await agent.propose(actionBody('noop', `during-${i}`))).status).toBe(503);
    expect((await fetch(`${app.url}/readyz`)).status).toBe(503);
    // Lasts until it has been reported twice more (~2-3 s at this interval).
    await app.line('out', (l) => logged('still unreachable')(l) && app.out.filter(logged('still unreachable')).length >= 2);
    await ownRedis(redisDir, true, redis.port);
    await app.line('out', logged('reachable again'));
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    expect((await agent.propose(actionBody('noop', 'after'))).status).toBe(201);

    const during = app.out.slice(from).filter((l) => (json(l).level ?? 0) >= 30);
    // One "still unreachable" a second at this interval, however long a loaded machine takes to
    // bring Redis back; besides those (and the sealer's checkpoint lines), a handful in all.
    const reports = during.filter(logged('still unreachable'));
    const others = during.filter((l) => !logged('still unreachable')(l) && !logged('audit checkpoint')(l));
    const back = json(during.find(logged('reachable again')) ?? '{}') as { down_seconds?: number };
    const downSeconds = back.down_seconds ?? 0;
    expect(reports.length, reports.join('\n')).toBeLessThanOrEqual(Math.ceil(downSeconds) + 1);
    expect(others.length, others.join('\n')).toBeLessThanOrEqual(6);
    expect(during.filter(outageStarted)).toHaveLength(1);
    expect(during.filter(logged('reachable again'))).toHaveLength(1);
    expect(during.find(logged('reachable again'))).toMatch(/failed connection attempts/);
    app.child.kill('SIGTERM');
    expect((await app.exit).code).toBe(0);
  });

  it('answers a request in flight, refuses new ones and is not ready while it drains', { timeout: 30_000 }, async () => {
    const { dir, secret, env } = setup('drain');
    const redis = await ownRedis(join(dir, 'redis'));
    const app = await launch('bin', env(redis, { SHUTDOWN_TIMEOUT: '10s' }));
    const submitted = await testAgent(app.url, 'ops-agent', secret).propose(actionBody('deploy', 'drain-1', 'approve-me'));
    expect(submitted.body.status).toBe('pending');
    const id = submitted.body.id as string;

    // One kept-alive connection: a plain read, and behind it (pipelined) a long-poll that waits 2 s.
    const { port } = new URL(app.url);
    const socket = connect(Number(port), '127.0.0.1');
    const responses = readResponses(socket);
    const get = (path: string, signed: boolean) => {
      const headers = signed ? signedHeaders('ops-agent', secret, { method: 'GET', path, body: '' }, Date.now()) : {};
      return `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    };
    socket.write(get(`/v1/proposals/${id}`, true) + get(`/v1/proposals/${id}/wait?timeout=2`, true));
    expect((await responses.next()).status).toBe(200);

    // The long-poll is in flight (Node takes a pipelined request once the one before is answered).
    app.child.kill('SIGTERM');
    await app.line('err', (l) => l.startsWith('SIGTERM: stopping'));
    await expect(fetch(`${app.url}/healthz`)).rejects.toThrow();
    socket.write(get('/readyz', false));

    const polled = await responses.next();
    expect(polled.status).toBe(200);
    expect((JSON.parse(polled.body) as { status: string }).status).toBe('pending');
    const ready = await responses.next();
    expect(ready.status).toBe(503);
    expect(ready.headers['connection']).toBe('close');
    expect(JSON.parse(ready.body)).toMatchObject({ ok: false, error: 'unavailable' });

    const { code } = await app.exit;
    expect(code).toBe(0);
    expect(app.err).toContain('stopped');
  });
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** HTTP/1.1 responses read off one socket, in order (Content-Length or chunked bodies). */
function readResponses(socket: Socket): { next(): Promise<RawResponse> } {
  let buffer = Buffer.alloc(0);
  const ready: RawResponse[] = [];
  const waiting: ((r: RawResponse) => void)[] = [];
  /** The body from `at` and where it ends, or null while it is incomplete. */
  function body(headers: Record<string, string>, at: number): { text: string; end: number } | null {
    if (headers['transfer-encoding'] !== 'chunked') {
      const length = Number(headers['content-length'] ?? 0);
      return buffer.length < at + length ? null : { text: buffer.subarray(at, at + length).toString('utf8'), end: at + length };
    }
    const parts: Buffer[] = [];
    for (let i = at; ; ) {
      const eol = buffer.indexOf('\r\n', i);
      if (eol < 0) return null;
      const size = parseInt(buffer.subarray(i, eol).toString('latin1'), 16);
      if (buffer.length < eol + 2 + size + 2) return null;
      if (size === 0) return { text: Buffer.concat(parts).toString('utf8'), end: eol + 4 };
      parts.push(buffer.subarray(eol + 2, eol + 2 + size));
      i = eol + 2 + size + 2;
    }
  }
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...headerLines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(headerLines.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 1).trim().toLowerCase()]));
      const b = body(headers, end + 4);
      if (b === null) return;
      buffer = buffer.subarray(b.end);
      const response = { status: Number(statusLine!.split(' ')[1]), headers, body: b.text };
      const w = waiting.shift();
      if (w === undefined) ready.push(response);
      else w(response);
    }
  });
  return {
    next: () => {
      const r = ready.shift();
      return r === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(r);
    },
  };
}
