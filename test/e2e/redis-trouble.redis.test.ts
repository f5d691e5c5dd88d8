import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisConnection, failFast } from '../../adapters/redis/connection.ts';
import { startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import { UnavailableError } from '../../src/core/errors.ts';
import { start } from '../../src/main.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';

// Issue 12, item 7: Redis down, full, or evicting. This file stops, fills and reconfigures a
// redis-server of its own (never the run's shared one, never 6379).

const dir = mkdtempSync(join(tmpdir(), 'countersign-redis-trouble-'));
let server: PrivateRedis;
let admin: Redis | Cluster;
let app: TestApp;
let stopped = false;

const launch = (port?: number) => startPrivateRedis({ dir, persist: true, searchPath: process.env['PATH'] ?? '', ...(port === undefined ? {} : { port }) });

async function down(connections: (Redis | Cluster)[]): Promise<void> {
  stopped = true;
  await server.stop();
  // Wait until each connection has seen it (an event, not a sleep).
  await Promise.all(connections.map((c) => (c.status === 'ready' ? once(c, 'close') : undefined)));
}

async function up(connections: (Redis | Cluster)[]): Promise<void> {
  server = await launch(server.port);
  stopped = false;
  await Promise.all(connections.map((c) => (c.status === 'ready' ? undefined : once(c, 'ready'))));
}

beforeAll(async () => {
  server = await launch();
  admin = createRedisConnection({ url: server.url, role: 'command' });
  admin.on('error', () => undefined);
  app = await startTestApp({ env: { REDIS_URL: server.url } });
});

// A test that failed half-way must not leave the next one without its Redis.
afterEach(async () => {
  if (stopped) await up([app.running.redis, admin]);
});

afterAll(async () => {
  // Stopped while its Redis still answers (its workers wait for Redis to close cleanly).
  await app.running.stop();
  admin.disconnect();
  await server.stop();
});

async function storedCount(): Promise<number> {
  const counts = await app.running.deps.store.countByStatus();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

describe('Redis down', () => {
  it('agent requests and /readyz fail fast with 503 and Retry-After, and work again once it is back', async () => {
    const first = await app.billing.propose(proposalBody());
    expect(first.status).toBe(201);
    await down([app.running.redis, admin]);

    const began = Date.now();
    const res = await app.billing.propose(proposalBody());
    const took = Date.now() - began;
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: 'unavailable' });
    expect(res.headers.get('retry-after')).toBe('2');
    // Generous: it used to hang until the client's retries ran out (~10 s), then 500.
    expect(took).toBeLessThan(3000);
    const read = await app.billing.request('GET', `/v1/proposals/${first.body.id}`);
    expect(read.status).toBe(503);
    expect(read.headers.get('retry-after')).toBe('2');
    const ready = await fetch(`${app.url}/readyz`);
    expect(ready.status).toBe(503);

    await up([app.running.redis, admin]);
    const again = await app.billing.propose(proposalBody());
    expect(again.status).toBe(201);
    expect((await app.billing.request('GET', `/v1/proposals/${first.body.id}`)).status).toBe(200);
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
  });

  it('fails a request-path command at once while the connection is down; other callers wait for Redis to return', async () => {
    const conn = createRedisConnection({ url: server.url, role: 'command' });
    conn.on('error', () => undefined);
    try {
      await conn.set('trouble:k', 'v');
      await down([conn, admin]);
      let patient: 'pending' | 'resolved' | 'rejected' = 'pending';
      const waiting = conn.get('trouble:k').then(
        (v) => ((patient = 'resolved'), v),
        (e: unknown) => ((patient = 'rejected'), Promise.reject(e)),
      );
      // Redis is still down here: the request-path command does not wait for it.
      await expect(failFast(() => conn.get('trouble:k'))).rejects.toBeInstanceOf(UnavailableError);
      expect(patient).toBe('pending');
      await up([conn, admin]);
      await expect(waiting).resolves.toBe('v');
    } finally {
      conn.disconnect();
    }
  });
});

describe('Redis full (maxmemory reached, noeviction)', () => {
  it('answers 503 store_full with Retry-After, stores nothing, and accepts again once there is room', async () => {
    const before = await storedCount();
    await admin.call('CONFIG', 'SET', 'maxmemory', '1');
    try {
      const res = await app.billing.propose(proposalBody());
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'store_full' });
      expect(res.body.message).not.toMatch(/maxmemory|OOM/);
      expect(res.headers.get('retry-after')).toBe('30');
      expect(await storedCount()).toBe(before);
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory', '0');
    }
    const again = await app.billing.propose(proposalBody());
    expect(again.status).toBe(201);
    expect(await storedCount()).toBe(before + 1);
  });
});

describe('the kill switch while Redis is full', () => {
  // The agent to stop may be the one filling Redis: revoke writes even then, and only revoke does.
  it('revoke succeeds (pending and approved work cancelled, tokens revoked), the agent is refused; an ordinary approval is still 503 store_full', async () => {
    const full = await startTestApp({ policy: CONSOLE_POLICY, env: { ...CONSOLE_ENV, REDIS_URL: server.url } });
    const alice = await signInWithKey(full.url, 'alice', CONSOLE_KEYS.alice);
    const tag = { intent: 'Tag ticket 1', action: { tool: 'crm', operation: 'tag', target: 'ticket:1', parameters: {} }, context: { reversible: true, destination: 'internal' } };
    const allowed = await full.ops.propose(tag);
    expect(allowed.body.status).toBe('approved');
    const pending = await full.ops.propose({ intent: 'Update contact 1', action: { tool: 'crm', operation: 'update', target: 'contact:1', parameters: {} } });
    expect(pending.body.status).toBe('pending');
    const other = await full.billing.propose(proposalBody());
    expect(other.body.status).toBe('pending');
    const jti = (await full.admin(`/v1/proposals/${allowed.body.id}`)).body.execution.token_id as string;

    await admin.call('CONFIG', 'SET', 'maxmemory', '1');
    let revoked: Response;
    try {
      const approve = await fetch(`${full.url}/console/proposals/${other.body.id}/decide`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: alice.cookie, origin: full.url },
        body: new URLSearchParams({ csrf: alice.csrf, vote: 'approve' }).toString(),
      });
      expect(approve.status).toBe(503);
      expect(await approve.json()).toMatchObject({ error: 'store_full' });

      revoked = await fetch(`${full.url}/v1/agents/ops-agent/revoke`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      expect(revoked.status).toBe(200);
      // Refused while Redis is still full: the refusal needs no room.
      const refused = await full.ops.propose(tag);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('agent_revoked');
      expect((await full.billing.propose(proposalBody())).status).toBe(503);
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory', '0');
    }
    expect(await revoked.json()).toMatchObject({ agent: 'ops-agent', tokens_revoked: 1, cancelled: expect.arrayContaining([allowed.body.id, pending.body.id]) });
    const statusOf = async (id: string) => (await full.admin(`/v1/proposals/${id}`)).body.status as string;
    expect(await statusOf(allowed.body.id)).toBe('cancelled');
    expect(await statusOf(pending.body.id)).toBe('cancelled');
    expect(await statusOf(other.body.id)).toBe('pending');
    expect(await createRedisTokenLedger(full.running.redis, { prefix: full.prefix }).state(jti)).toBe('revoked');
    const audit = (await full.admin<{ events: { type: string }[] }>('/v1/audit?agent=ops-agent&limit=100')).body.events.map((e) => e.type);
    expect(audit).toContain('agent_revoked');
    expect(audit.filter((t) => t === 'cancelled')).toHaveLength(2);
    // Still refused once there is room again.
    expect((await full.ops.propose(tag)).status).toBe(403);
    await full.running.stop();
  });
});

describe('a Redis that evicts keys', () => {
  const env = (extra: Record<string, string> = {}) => ({
    PORT: '0',
    REDIS_URL: server.url,
    COUNTERSIGN_PREFIX: 'evict-check',
    COUNTERSIGN_DATA_DIR: mkdtempSync(join(tmpdir(), 'countersign-evict-')),
    COUNTERSIGN_DEMO_AGENT_SECRET: 'demo-secret-for-tests',
    LOG_LEVEL: 'warn',
    ...extra,
  });

  it.each(['allkeys-lru', 'volatile-ttl', 'allkeys-random'])('is refused at start (%s), in one line naming the policy and the fix', async (policy) => {
    await admin.call('CONFIG', 'SET', 'maxmemory-policy', policy);
    try {
      const refused = start(env(), { say: () => undefined, logStream: new Writable({ write: (_c, _e, done) => done() }) });
      await expect(refused).rejects.toThrow(new RegExp(`maxmemory-policy is ${policy}`));
      const message = await refused.catch((e: Error) => e.message);
      expect(message).not.toContain('\n');
      expect(message).toMatch(/noeviction/);
      expect(message).toMatch(/REDIS_ALLOW_EVICTION=true/);
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('is not ready once the policy is changed to evict after start, and is again when it is put back', async () => {
    const running = await start(env(), { say: () => undefined, logStream: new Writable({ write: (_c, _e, done) => done() }) });
    try {
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
      expect((await fetch(`${running.url}/readyz`)).status).toBe(503);
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      await running.stop();
    }
  });

  it('starts with REDIS_ALLOW_EVICTION=true, and says so in the log', async () => {
    await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    const lines: string[] = [];
    try {
      const running = await start(env({ REDIS_ALLOW_EVICTION: 'true' }), {
        say: () => undefined,
        logStream: new Writable({
          write(chunk, _enc, done) {
            lines.push(String(chunk));
            done();
          },
        }),
      });
      await running.stop();
    } finally {
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
    const warning = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => /maxmemory-policy/.test(l.msg));
    expect(warning?.level).toBe(40);
    expect(warning?.msg).toMatch(/allkeys-lru/);
  });
});
