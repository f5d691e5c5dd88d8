import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { freePort } from '../../adapters/redis/private-server.ts';

// A PostgreSQL cluster of our own for tests (initdb in a temp dir, a free port, password
// auth for everyone so VALID UNTIL and wrong passwords behave as in production), never a
// server someone else relies on. One per run (global-postgres.ts); each test file gets its
// own database on it (testPostgres()).

export const POSTGRES_NOT_INSTALLED =
  'PostgreSQL is not installed: install it (Debian/Ubuntu: apt-get install postgresql) or put initdb and postgres on PATH';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 3;
const SUPERUSER = 'postgres';

export interface PrivatePostgres {
  /** The superuser's URL (database `postgres`). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directory holding initdb and postgres: PATH first, then Debian's /usr/lib/postgresql/<version>/bin (newest first). */
export function findPostgresBinDir(searchPath: string): string | null {
  const dirs = searchPath.split(delimiter).filter((d) => d !== '');
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    dirs.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // no Debian packages
  }
  return dirs.find((d) => executable(join(d, 'initdb')) && executable(join(d, 'postgres'))) ?? null;
}

// initdb and postgres refuse to run as root: then the cluster belongs to `nobody`.
function runAs(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
    const [, , uid, gid] = line?.split(':') ?? [];
    if (uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  } catch {
    // fall through to the usual ids
  }
  return { uid: 65534, gid: 65534 };
}

function collectOutput(child: ChildProcess): () => string {
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return () => output;
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

function lastLines(output: string): string {
  return output.trim().split('\n').slice(-3).join('; ') || 'no output';
}

async function initdb(binDir: string, dir: string, password: string, user: { uid: number; gid: number } | null): Promise<void> {
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (user !== null) chownSync(pwfile, user.uid, user.gid);
  const child = spawn(
    join(binDir, 'initdb'),
    ['-D', join(dir, 'data'), '-U', SUPERUSER, '--pwfile', pwfile, '--auth=scram-sha-256', '--locale=C', '--encoding=UTF8', '--no-sync'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', LC_ALL: 'C' }, ...(user ?? {}) },
  );
  const output = collectOutput(child);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  rmSync(pwfile, { force: true });
  if (code !== 0) throw new Error(`initdb failed (exit ${code}): ${lastLines(output())}`);
}

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function launch(binDir: string, dir: string, password: string, user: { uid: number; gid: number } | null, port: number): Promise<PrivatePostgres> {
  const child = spawn(
    join(binDir, 'postgres'),
    // Durability is worthless for a throw-away cluster; skipping it keeps tests fast.
    ['-D', join(dir, 'data'), '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', LC_ALL: 'C' }, ...(user ?? {}) },
  );
  const output = collectOutput(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  let spawnError: Error | null = null;
  void spawnFailed.then((e) => (spawnError = e));

  const url = `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let delay = 20;
  for (;;) {
    if (spawnError !== null) throw spawnError;
    if (exited) throw Object.assign(new Error(`postgres on port ${port} exited during start-up: ${lastLines(output())}`), { output: output() });
    if (await accepts(url)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`postgres on port ${port} did not accept connections within ${START_TIMEOUT_MS / 1000}s: ${lastLines(output())}`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
  }

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // SIGINT is postgres' "fast" shutdown: ends sessions, checkpoints, exits.
      for (const signal of ['SIGINT', 'SIGQUIT', 'SIGKILL'] as const) {
        if (exited) return;
        child.kill(signal);
        if (await waitForExit(child, STOP_TIMEOUT_MS)) return;
      }
    })();
    return stopping;
  };
  return { url, port, stop };
}

/** Starts a fresh cluster; stop() ends it and removes its files. */
export async function startPrivatePostgres(searchPath = process.env['PATH'] ?? ''): Promise<PrivatePostgres> {
  const binDir = findPostgresBinDir(searchPath);
  if (binDir === null) throw new Error(POSTGRES_NOT_INSTALLED);
  const dir = mkdtempSync(join(tmpdir(), 'countersign-test-pg-'));
  const user = runAs();
  if (user !== null) chownSync(dir, user.uid, user.gid);
  const password = randomBytes(18).toString('hex');
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });
  try {
    await initdb(binDir, dir, password, user);
    // Someone may take the port between our probe and postgres' bind.
    let lastError: unknown = null;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      try {
        const server = await launch(binDir, dir, password, user, await freePort());
        return {
          ...server,
          stop: async () => {
            await server.stop();
            cleanUp();
          },
        };
      } catch (err) {
        lastError = err;
        if (!/address already in use/i.test((err as { output?: string }).output ?? '')) throw err;
      }
    }
    throw lastError;
  } catch (err) {
    cleanUp();
    throw err;
  }
}

export interface TestPostgres {
  /** The superuser's URL for this file's own database (after beforeAll). */
  readonly url: string;
  readonly database: string;
  /** A superuser connection to that database (after beforeAll), closed after the file. */
  readonly admin: pg.Client;
}

/**
 * Call at the top of a test file: a database of the file's own on the run's private cluster,
 * made before the file's tests and dropped after them. Roles are cluster-wide: name yours
 * uniquely.
 */
export function testPostgres(): TestPostgres {
  const database = `t_${randomBytes(6).toString('hex')}`;
  let root: pg.Client | null = null;
  let admin: pg.Client | null = null;
  let url: string | null = null;
  beforeAll(async () => {
    const serverUrl = inject('postgresUrl');
    if (serverUrl === null) throw new Error(inject('postgresUnavailable') ?? 'no test PostgreSQL');
    root = new pg.Client({ connectionString: serverUrl });
    await root.connect();
    await root.query(`CREATE DATABASE ${database}`);
    const u = new URL(serverUrl);
    u.pathname = `/${database}`;
    url = u.toString();
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end().catch(() => undefined);
    await root?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await root?.end();
  });
  const ready = <T>(value: T | null): T => {
    if (value === null) throw new Error('testPostgres(): used before its beforeAll ran');
    return value;
  };
  return {
    database,
    get url() {
      return ready(url);
    },
    get admin() {
      return ready(admin);
    },
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string | null;
    postgresUnavailable: string | null;
  }
}
