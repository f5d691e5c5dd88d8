import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';

// Small helpers shared by the benchmark processes: a wall clock comparable across processes
// on this machine, percentiles, a bounded worker pool and a keep-alive HTTP client that is
// lighter than fetch (the load generator shares the machine with what it measures).

/** Milliseconds since the epoch, sub-millisecond, comparable between processes on one host. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(samples: number[]): Summary {
  if (samples.length === 0) return { count: 0, p50: NaN, p99: NaN, p999: NaN, max: NaN };
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  return { count: s.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: s[s.length - 1]! };
}

/**
 * Runs `task(i)` for i in [0, total) with `concurrency` in flight; stops starting new tasks
 * once `deadlineMs` (wall clock) has passed. Returns how many completed and the elapsed time.
 */
export async function pool(total: number, concurrency: number, task: (i: number) => Promise<void>, deadlineMs = Infinity): Promise<{ done: number; elapsedMs: number; errors: number; firstError: unknown }> {
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: unknown = null;
  const started = wallNow();
  const lane = async () => {
    while (next < total && wallNow() < deadlineMs) {
      const i = next++;
      try {
        await task(i);
        done += 1;
      } catch (e) {
        errors += 1;
        firstError ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  return { done, elapsedMs: wallNow() - started, errors, firstError };
}

export interface HttpResult {
  status: number;
  body: string;
}

export class HttpClient {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(baseUrl: string, maxSockets = 256) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
      const h: Record<string, string | number> = { ...headers };
      if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
      const req = request({ host: this.host, port: this.port, method, path, headers: h, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`timeout ${method} ${path}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** CPU time redis-server has used so far (user + system), ms. */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
}
