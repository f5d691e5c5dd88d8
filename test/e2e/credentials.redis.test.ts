import { beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { recordDecision } from '../../src/app/record-decision.ts';
import type { TestAgent } from '../helpers/agent.ts';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { cacheServer, credentialsPolicy, ordersDatabase, redisOutcome, sqlOutcome, taskBody, threadRecorder } from '../helpers/credential-downstreams.ts';
import { logSink, until } from '../helpers/observe.ts';

// Just-in-time credentials (issue 15) on the real server: an approved task's login on a real
// PostgreSQL and a real Redis, handed to the agent once with its execution token, good for
// exactly the policy's grants, and gone (sessions too) when the task ends, when its ttl is up
// and when the agent is revoked. What must not leak is checked in credentials-leaks.redis.test.ts.

const orders = ordersDatabase();
const cache = cacheServer();
const thread = threadRecorder();
let app: TestApp;

interface Credential {
  username: string;
  password: string;
  url: string;
  issuer: string;
  expires_at: string;
}

interface AuditEntry {
  type: string;
  data: Record<string, unknown>;
}

beforeAll(async () => {
  app = await startTestApp({
    policy: credentialsPolicy(),
    env: { ORDERS_DB_ADMIN_URL: orders.adminUrl, CACHE_ADMIN_URL: cache.adminUrl, LEGACY_DB_ADMIN_URL: 'postgres://nobody:unused@127.0.0.1:1/none' },
    // A reply that comes before its card is posted is retried: soon, here.
    start: { chatChannels: { console: thread.channel }, logStream: logSink().stream, tuning: { notifyBackoffMs: 20 }, execution: { sweepEveryMs: 100 } },
  });
});

async function proposeApproved(agent: TestAgent, body: Record<string, unknown>): Promise<string> {
  const { body: p } = await agent.propose(body);
  expect(p.status).toBe('pending');
  // Resolves once the approval's follow-ups ran: the token is recorded and the login made.
  await recordDecision(app.running.deps, { proposalId: p.id, person: 'alice', platform: 'console', vote: 'approve' });
  return p.id as string;
}

/** The agent's read that takes the token; the credential comes with it, and the next read has neither. */
async function take(agent: TestAgent, id: string): Promise<{ token: string; credential: Credential }> {
  const first = await agent.request('GET', `/v1/proposals/${id}`);
  expect(first.status).toBe(200);
  expect(first.body.execution_token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  const credential = first.body.credential as Credential;
  expect(Object.keys(credential).sort()).toEqual(['expires_at', 'issuer', 'password', 'url', 'username']);
  expect(credential.username).toBe(`cs_${id}`);
  const again = await agent.request('GET', `/v1/proposals/${id}`);
  expect(again.body.execution_token).toBeUndefined();
  expect(again.body.credential).toBeUndefined();
  return { token: first.body.execution_token as string, credential };
}

async function auditOf(id: string): Promise<AuditEntry[]> {
  return (await app.admin<{ events: AuditEntry[] }>(`/v1/audit?proposal_id=${id}&limit=200`)).body.events;
}

async function revocationOf(id: string): Promise<Record<string, unknown>> {
  const found = (await auditOf(id)).filter((e) => e.type === 'credential_revoked');
  expect(found).toHaveLength(1);
  return found[0]!.data;
}

async function reportOutcome(agent: TestAgent, id: string, token: string): Promise<void> {
  const res = await agent.request('POST', `/v1/proposals/${id}/outcome`, { token, status: 'succeeded' });
  expect(res.status).toBe(200);
  expect(res.body.status).toBe('succeeded');
}

async function adminPost(path: string): Promise<any> {
  const res = await fetch(`${app.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
  return res.json();
}

describe('a postgres login for an approved task', () => {
  it('is handed over once with the token (sealed until then), and can do exactly the granted statements', async () => {
    const id = await proposeApproved(app.billing, taskBody('postgres', 'migrate'));
    const key = redisKeys(app.prefix).credential(id);
    const sealed = await app.running.redis.hget(key, 'pickup');
    expect(sealed).toEqual(expect.any(String));

    const { token, credential } = await take(app.billing, id);
    expect(credential.issuer).toBe('orders-db');
    expect(Date.parse(credential.expires_at)).toBeGreaterThan(Date.now() + 9 * 60_000);
    expect(sealed).not.toContain(credential.password);
    expect(await app.running.redis.hexists(key, 'pickup')).toBe(0);

    const session = await orders.connect(credential.url);
    expect(await sqlOutcome(session, 'SELECT count(*) FROM orders')).toBe('ok');
    expect(await sqlOutcome(session, "UPDATE orders SET status = 'shipped' WHERE id = 1")).toBe('ok');
    // 42501: insufficient_privilege.
    expect(await sqlOutcome(session, "INSERT INTO orders VALUES (3, 'sneaky')")).toBe('42501');
    expect(await sqlOutcome(session, 'DELETE FROM orders')).toBe('42501');
    expect(await sqlOutcome(session, 'SELECT * FROM customers')).toBe('42501');
    expect(await sqlOutcome(session, 'CREATE TABLE mine (x int)')).toBe('42501');
    expect(await orders.sessionsOf(credential.username)).toBe(1);

    const issued = (await auditOf(id)).find((e) => e.type === 'credential_issued')!;
    expect(issued.data).toEqual({ issuer: 'orders-db', handle: credential.username, expires_at: credential.expires_at });
    // The card is posted once a reply has come: the revocation's reply then needs no retry.
    const issuedReply = await thread.repliesFor(id, (r) => r.text.startsWith('Login for orders-db issued'));
    expect(issuedReply.text).toContain(credential.username);

    // The outcome report answers once the login is gone.
    await reportOutcome(app.billing, id, token);
    expect(await sqlOutcome(session, 'SELECT 1')).not.toBe('ok');
    expect(await orders.sessionsOf(credential.username)).toBe(0);
    expect(await orders.loginOutcome(credential.url)).not.toBe('ok');
    expect(await orders.roleExists(credential.username)).toBe(false);
    expect(await revocationOf(id)).toEqual({ issuer: 'orders-db', handle: credential.username, reason: 'task_finished' });
    const revokedReply = await thread.repliesFor(id, (r) => r.text.startsWith('Login for orders-db revoked'));
    expect(revokedReply.text).toBe(`Login for orders-db revoked (${credential.username}): task finished`);
  });

  it('is revoked by the sweep when its ttl is up, its open session ended', async () => {
    const id = await proposeApproved(app.billing, taskBody('postgres', 'peek'));
    const { credential } = await take(app.billing, id);
    const session = await orders.connect(credential.url);
    expect(await sqlOutcome(session, 'SELECT count(*) FROM orders')).toBe('ok');

    await until(() => auditOf(id), (events) => events.some((e) => e.type === 'credential_revoked'));
    expect(await revocationOf(id)).toMatchObject({ handle: credential.username, reason: 'expired' });
    expect(await sqlOutcome(session, 'SELECT 1')).not.toBe('ok');
    expect(await orders.sessionsOf(credential.username)).toBe(0);
    expect(await orders.roleExists(credential.username)).toBe(false);
    // Only the login ended: the task itself waits for the agent's report.
    expect((await app.admin(`/v1/proposals/${id}`)).body.status).toBe('executing');
  });

  it('is issued at once for a rule that allows the task: the first read gets it', async () => {
    const { body } = await app.billing.propose(taskBody('postgres', 'read'));
    expect(body.status).toBe('approved');
    const { token, credential } = await take(app.billing, body.id);
    const session = await orders.connect(credential.url);
    expect(await sqlOutcome(session, 'SELECT status FROM orders WHERE id = 2')).toBe('ok');
    await reportOutcome(app.billing, body.id, token);
    expect(await orders.roleExists(credential.username)).toBe(false);
    expect(await revocationOf(body.id)).toMatchObject({ reason: 'task_finished' });
  });

  it('cannot be made when the database is unreachable: the task ends not run, the agent gets no token', async () => {
    const { body } = await app.billing.propose(taskBody('legacy-db', 'read'));
    const read = await app.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(read.body).toMatchObject({ status: 'failed', execution: { outcome: 'not_run', reason: 'credential_unavailable' } });
    expect(read.body.execution_token).toBeUndefined();
    expect(read.body.credential).toBeUndefined();
    const types = (await auditOf(body.id)).map((e) => e.type);
    expect(types).not.toContain('credential_issued');
    expect(types).toContain('execution_finished');
  });
});

describe('a redis-acl login for an approved task', () => {
  it('can GET and SET orders:* only, and is gone with its connection once the outcome is reported', async () => {
    const id = await proposeApproved(app.billing, taskBody('cache', 'warm'));
    const { token, credential } = await take(app.billing, id);
    expect(credential.issuer).toBe('cache');
    const client = cache.connect(credential.url);
    await client.connect();
    expect(await redisOutcome(() => client.set('orders:42', 'packed'))).toBe('OK');
    expect(await redisOutcome(() => client.get('orders:42'))).toBe('packed');
    expect(await redisOutcome(() => client.get('customers:1'))).toBe('NOPERM');
    expect(await redisOutcome(() => client.set('customers:1', 'x'))).toBe('NOPERM');
    expect(await redisOutcome(() => client.del('orders:42'))).toBe('NOPERM');
    expect(await cache.clientsOf(credential.username)).toBe(1);
    // The card is posted once a reply has come: the revocation's reply then needs no retry.
    await thread.repliesFor(id, (r) => r.text.startsWith('Login for cache issued'));

    // The outcome report answers once the login is gone, its connection killed.
    await reportOutcome(app.billing, id, token);
    expect(await cache.clientsOf(credential.username)).toBe(0);
    expect(await redisOutcome(() => client.get('orders:42'))).not.toBe('packed');
    expect(await cache.users()).not.toContain(credential.username);
    // A fresh connection without the URL's login (URL.origin is "null" for redis: URLs).
    const probe = cache.connect(`redis://${new URL(credential.url).host}`);
    await probe.connect();
    expect(await redisOutcome(() => probe.call('AUTH', credential.username, credential.password))).toBe('WRONGPASS');
    expect(await revocationOf(id)).toEqual({ issuer: 'cache', handle: credential.username, reason: 'task_finished' });
    await thread.repliesFor(id, (r) => r.text === `Login for cache revoked (${credential.username}): task finished`);
  });
});

describe('the kill switch', () => {
  it('revokes the login of a running task (agent_revoked) and of an approved one not started (cancelled)', async () => {
    const running = await proposeApproved(app.ops, taskBody('postgres', 'migrate'));
    const waiting = await proposeApproved(app.ops, taskBody('cache', 'warm'));
    const { credential } = await take(app.ops, running);
    const session = await orders.connect(credential.url);
    expect(await sqlOutcome(session, 'SELECT 1')).toBe('ok');
    // The waiting task's login was made at approval; nobody has read it yet.
    const waitingHandle = (await auditOf(waiting)).find((e) => e.type === 'credential_issued')!.data['handle'] as string;
    expect(await cache.users()).toContain(waitingHandle);

    const result = await adminPost('/v1/agents/ops-agent/revoke');
    expect(result).toMatchObject({ cancelled: [waiting], still_executing: [running] });
    expect(await sqlOutcome(session, 'SELECT 1')).not.toBe('ok');
    expect(await orders.sessionsOf(credential.username)).toBe(0);
    expect(await orders.roleExists(credential.username)).toBe(false);
    expect(await cache.users()).not.toContain(waitingHandle);
    expect(await revocationOf(running)).toMatchObject({ handle: credential.username, reason: 'agent_revoked' });
    expect(await revocationOf(waiting)).toMatchObject({ handle: waitingHandle, reason: 'cancelled' });
    const after = await app.admin(`/v1/proposals/${waiting}`);
    expect(after.body.status).toBe('cancelled');
    expect(after.body.credential).toBeUndefined();
    await adminPost('/v1/agents/ops-agent/restore');
  });
});
