import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPrivateRedis } from '../../adapters/redis/private-server.ts';

// Starts one throw-away redis-server (no persistence) for the whole run, so tests never
// touch a Redis someone else relies on. When redis-server is missing, unit tests still run:
// only the tests that ask for Redis fail, with the install hint.

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string | null;
    redisUnavailable: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-test-redis-'));
  try {
    const server = await startPrivateRedis({ dir, persist: false, searchPath: process.env['PATH'] ?? '' });
    project.provide('redisUrl', server.url);
    project.provide('redisUnavailable', null);
    return async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  } catch (err) {
    project.provide('redisUrl', null);
    project.provide('redisUnavailable', (err as Error).message);
    return async () => rmSync(dir, { recursive: true, force: true });
  }
}
