import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { start } from '../../src/main.ts';
import { proposalBody, testAgent } from '../helpers/agent.ts';

// `npm start` with no REDIS_URL and nothing answering: countersign runs its own
// redis-server (AOF on) under the data dir, keeps data across restarts, stops it on exit.

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === 'object' && address !== null ? address.port : 1;
}

describe('private redis-server', () => {
  it('starts one under the data dir, keeps proposals across a restart, and stops it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-private-'));
    const env = { PORT: '0', COUNTERSIGN_DATA_DIR: dir, LOG_LEVEL: 'silent', COUNTERSIGN_DEMO_AGENT_SECRET: 'demo-secret-for-tests' };
    const lines: string[] = [];
    const options = { say: (l: string) => lines.push(l), localRedisUrl: `redis://127.0.0.1:${await closedPort()}` };

    const first = await start(env, options);
    expect(lines.join('\n')).toMatch(/started a private redis-server on redis:\/\/127\.0\.0\.1:\d+/);
    const url = readFileSync(join(dir, 'redis.url'), 'utf8').trim();
    const agent = testAgent(first.url, 'demo-agent', 'demo-secret-for-tests');
    const { status, body } = await agent.propose(proposalBody());
    expect(status).toBe(201);
    await first.stop();
    expect(existsSync(join(dir, 'redis.url'))).toBe(false);
    expect(existsSync(join(dir, 'redis', 'appendonlydir'))).toBe(true);
    // The child is gone: its port no longer answers.
    const { Redis } = await import('ioredis');
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();

    const second = await start(env, options);
    try {
      const again = testAgent(second.url, 'demo-agent', 'demo-secret-for-tests');
      const got = await again.request('GET', `/v1/proposals/${body.id}`);
      expect(got.status).toBe(200);
      expect(got.body.status).toBe('pending');
    } finally {
      await second.stop();
    }
  });
});
