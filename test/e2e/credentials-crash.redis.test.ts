import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { testAgent } from '../helpers/agent.ts';
import { credentialsPolicy, ordersDatabase, sqlOutcome, taskBody } from '../helpers/credential-downstreams.ts';
import { until } from '../helpers/observe.ts';
import { exited, startApp } from '../helpers/app-child.ts';

// countersign SIGKILLed while a task's login is live: nothing of the dead process can revoke
// it, so after a restart on the same prefix the credential ledger's sweep must drop it (its
// open session too) once its ttl is up.

const ADMIN_TOKEN = 'crash-admin-token-0123456789abcdef';
const orders = ordersDatabase();
describe('countersign killed while a credential is live', () => {
  const redisUrl = inject('redisUrl');
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  const redis = redisUrl === null ? null : createRedisConnection({ url: redisUrl, role: 'command' });
  afterAll(async () => {
    if (redis === null) return;
    const keys = await (redis as Redis).keys(`{${prefix}}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('drops it after the restart, when its ttl is up', async () => {
    if (redisUrl === null || redis === null) throw new Error('no test Redis');
    const dir = mkdtempSync(join(tmpdir(), 'countersign-cred-crash-'));
    const policyFile = join(dir, 'policy.yaml');
    // The allowed rule's login lives 3s: long enough to be read and killed live, short enough to wait for.
    writeFileSync(policyFile, credentialsPolicy({ readTtl: '3s' }));
    const secret = randomBytes(24).toString('hex');
    const env = {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      COUNTERSIGN_PREFIX: prefix,
      COUNTERSIGN_DATA_DIR: dir,
      POLICY_FILE: policyFile,
      COUNTERSIGN_ADMIN_TOKEN: ADMIN_TOKEN,
      AGENT_BILLING_SECRET: secret,
      AGENT_OPS_SECRET: randomBytes(24).toString('hex'),
      ORDERS_DB_ADMIN_URL: orders.adminUrl,
      CACHE_ADMIN_URL: 'redis://nobody:unused@127.0.0.1:1/0',
      LEGACY_DB_ADMIN_URL: 'postgres://nobody:unused@127.0.0.1:1/none',
      LOG_LEVEL: 'silent',
      COUNTERSIGN_TEST_EXECUTION: JSON.stringify({ sweepEveryMs: 100 }),
    };

    const first = await startApp(env);
    const agent = testAgent(first.url, 'billing-agent', secret);
    const submitted = await agent.propose(taskBody('postgres', 'read'));
    expect(submitted.body.status).toBe('approved');
    const id = submitted.body.id as string;
    const read = await agent.request('GET', `/v1/proposals/${id}`);
    const credential = read.body.credential as { username: string; url: string };
    expect(credential.username).toBe(`cs_${id}`);
    const session = await orders.connect(credential.url);
    expect(await sqlOutcome(session, 'SELECT count(*) FROM orders')).toBe('ok');

    first.child.kill('SIGKILL');
    await exited(first.child);
    // Nothing of the dead process can revoke it now: the login and its session outlive it.
    expect(await orders.roleExists(credential.username)).toBe(true);
    expect(await sqlOutcome(session, 'SELECT 1')).toBe('ok');

    const second = await startApp(env);
    const audit = async () =>
      ((await (await fetch(`${second.url}/v1/audit?proposal_id=${id}&limit=100`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { events: { type: string; data: Record<string, unknown> }[] }).events;
    const events = await until(audit, (es) => es.some((e) => e.type === 'credential_revoked'));
    expect(events.filter((e) => e.type === 'credential_revoked').map((e) => e.data)).toEqual([{ issuer: 'orders-db', handle: credential.username, reason: 'expired' }]);
    expect(await orders.roleExists(credential.username)).toBe(false);
    expect(await orders.sessionsOf(credential.username)).toBe(0);
    expect(await sqlOutcome(session, 'SELECT 1')).not.toBe('ok');

    second.child.kill('SIGTERM');
    await exited(second.child);
  });
});
