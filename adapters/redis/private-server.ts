import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { delimiter, join } from 'node:path';

// A redis-server of our own, as a child process: the zero-setup default when no Redis
// answers, and the one Redis the test suite uses (never the developer's 6379).

export const REDIS_NOT_INSTALLED =
  'redis-server is not installed: install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to a Redis you run';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 3;

export interface PrivateRedisOptions {
  /** Working directory (AOF files); created when missing. */
  dir: string;
  port?: number;
  persist: boolean;
  logFile?: string;
  /** Where to look for redis-server first (PATH, handed in by the configuration), before the usual install places. */
  searchPath: string;
}

export interface PrivateRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const WELL_KNOWN_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/sbin', '/opt/homebrew/bin', '/opt/local/bin'];

/** Absolute path of redis-server from `searchPath` (PATH) or the usual install places, or null. */
export function findRedisServerBinary(searchPath: string): string | null {
  const dirs = [...searchPath.split(delimiter).filter((d) => d !== ''), ...WELL_KNOWN_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** A port that was free a moment ago; the caller retries if someone else takes it first. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/**
 * Sends one inline command over a fresh socket; resolves with what arrived once `complete`
 * says the reply is whole (by default: its first line), or when the server closes.
 */
function rawCommand(
  port: number,
  command: string,
  complete: (received: string) => boolean = (r) => r.includes('\r\n'),
  timeoutMs = 1000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buffer = '';
    const done = (err: Error | null, line?: string) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    socket.setTimeout(timeoutMs, () => done(new Error('timed out')));
    socket.once('error', (err) => done(err));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (complete(buffer)) done(null, buffer);
    });
    // A server that closes the socket without a reply (SHUTDOWN) is an answer too.
    socket.once('end', () => done(null, buffer));
    socket.once('connect', () => socket.write(`${command}\r\n`));
  });
}

// Whoever answers on the port must be our child: another redis-server may have won the race
// for it, and ours is about to exit with "Address already in use".
async function isOurs(port: number, pid: number | undefined): Promise<boolean> {
  const info = await rawCommand(port, 'INFO server', (r) => /process_id:\d+\r\n/.test(r));
  return pid !== undefined && new RegExp(`process_id:${pid}\\r\\n`).test(info);
}

// Redis marks warnings with " # "; those lines say why it gave up (bind failed, bad dir).
function reasonFrom(output: string): string {
  const lines = output.trim().split('\n').filter((l) => l.trim() !== '');
  const warnings = lines.filter((l) => / # /.test(l));
  return (warnings.length > 0 ? warnings : lines).slice(-2).map((l) => l.replace(/^.*? # /, '').trim()).join('; ') || 'no output';
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function launch(binary: string, opts: PrivateRedisOptions, port: number): Promise<PrivateRedis> {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', opts.dir,
    '--appendonly', opts.persist ? 'yes' : 'no',
    '--save', '',
    '--daemonize', 'no',
  ];
  if (opts.logFile !== undefined) args.push('--logfile', opts.logFile);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });

  // Keep the tail of the output: it is the only explanation when the server will not start.
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => undefined);

  const deadline = Date.now() + START_TIMEOUT_MS;
  let delay = 5;
  for (;;) {
    if (exited) {
      throw Object.assign(new Error(`redis-server on port ${port} exited during start-up: ${reasonFrom(output)}`), { output });
    }
    try {
      const reply = await Promise.race([rawCommand(port, 'PING'), spawnError]);
      // "-LOADING": the AOF is still being read; keep waiting.
      if (reply.startsWith('+PONG') && (await isOurs(port, child.pid))) break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).syscall === 'spawn') throw err;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS / 1000}s`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      // NOSAVE: the AOF (when persisting) is already on disk; an RDB dump would only cost time.
      await rawCommand(port, 'SHUTDOWN NOSAVE').catch(() => undefined);
      if (await waitForExit(child, STOP_TIMEOUT_MS)) return;
      child.kill('SIGTERM');
      if (await waitForExit(child, STOP_TIMEOUT_MS)) return;
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
    })();
    return stopping;
  };
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateRedis> {
  const binary = findRedisServerBinary(opts.searchPath);
  if (binary === null) throw new Error(REDIS_NOT_INSTALLED);
  mkdirSync(opts.dir, { recursive: true });
  if (opts.port !== undefined) return launch(binary, opts, opts.port);
  // Another process may grab the port between our probe and redis-server's bind.
  let lastError: unknown = null;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    try {
      return await launch(binary, opts, await freePort());
    } catch (err) {
      lastError = err;
      const output = (err as { output?: string }).output ?? '';
      if (!/address already in use/i.test(output)) throw err;
    }
  }
  throw lastError;
}
