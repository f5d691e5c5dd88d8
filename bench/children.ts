import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The benchmark's child processes (countersign, the fixtures, the bare server) and the
// IPC they report on. `file` is relative to this folder.

export type Msg = { kind: string; [k: string]: any };

export interface Child {
  proc: ChildProcess;
  ready: Msg;
  on(kind: string, fn: (m: Msg) => void): void;
  ask(kind: string): Promise<Msg>;
}

export async function spawnChild(file: string, env: Record<string, string>, execArgv: string[] = []): Promise<Child> {
  const proc = fork(fileURLToPath(new URL(file, import.meta.url)), [], {
    env: { ...process.env, ...env },
    // TypeScript children go through tsx; JavaScript ones (countersign itself) run bare.
    execArgv: [...(file.endsWith('.ts') ? ['--import', 'tsx'] : []), ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const handlers = new Map<string, ((m: Msg) => void)[]>();
  proc.on('message', (m: Msg) => {
    for (const fn of handlers.get(m.kind) ?? []) fn(m);
  });
  const child: Child = {
    proc,
    ready: { kind: 'none' },
    on(kind, fn) {
      handlers.set(kind, [...(handlers.get(kind) ?? []), fn]);
    },
    ask(kind) {
      return new Promise((resolve) => {
        const fn = (m: Msg) => {
          handlers.set(kind, (handlers.get(kind) ?? []).filter((f) => f !== fn));
          resolve(m);
        };
        child.on(kind, fn);
        proc.send({ kind });
      });
    },
  };
  child.ready = await new Promise<Msg>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${file} exited with ${String(code)} before it was ready`)));
    child.on('ready', resolve);
  });
  return child;
}

/** Per-id timestamps reported by children, with waiters. */
export class Timeline {
  private readonly seen = new Map<string, number>();
  private readonly waiters = new Map<string, (t: number) => void>();
  record(id: string, t: number): void {
    this.seen.set(id, t);
    const w = this.waiters.get(id);
    if (w !== undefined) {
      this.waiters.delete(id);
      w(t);
    }
  }
  get(id: string): number | undefined {
    return this.seen.get(id);
  }
  wait(id: string, timeoutMs: number): Promise<number | null> {
    const t = this.seen.get(id);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(id, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
  }
}


/** Compiles countersign to dist/ (bin/build.js): the benchmarks measure the code `npm start` runs. */
export function buildCountersign(): void {
  const run = spawnSync(process.execPath, [fileURLToPath(new URL('../bin/build.js', import.meta.url))], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (run.status !== 0) throw new Error('npm run build failed: the benchmark needs the compiled code in dist/');
}

/** The Node flags `npm start` gives countersign (package.json), so the benchmark runs it the same way. */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const words = (pkg.scripts['start'] ?? '').split(/\s+/);
  return words.slice(1, words.indexOf('bin/countersign.js')).filter((w) => w.startsWith('--'));
}
