import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import { recordDecision } from '../../src/app/record-decision.ts';
import { CountersignClient } from '../../src/client/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

// The agent client against the real countersign, for a rule that issues a just-in-time login:
// wait() returns the approved proposal with its execution token AND the credential, once; the
// login works on the downstream (a redis-server of its own, standing in for a cache) with
// exactly the policy's ACL, and is gone once the agent reports the outcome.

const ADMIN_PASSWORD = 'client-test-adm1n-5b2e91';

const POLICY = `
version: 1
agents:
  - id: billing-agent
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
  alice: { slack: U0ALICE }
groups:
  finance: [alice]
channels:
  finance: { console: true }
credentials:
  cache:
    kind: redis-acl
    admin_url: { env: CACHE_ADMIN_URL }
    acl: "~orders:* +get +set"
rules:
  - name: cache-write
    when: action.tool == "cache" && action.operation == "write"
    effect: approve
    route: finance
    approvers: finance
    credentials: { issuer: cache, ttl: 5m }
  - name: cache-read
    when: action.tool == "cache" && action.operation == "read"
    effect: allow
    credentials: { issuer: cache, ttl: 1m }
default: { effect: deny }
`;

let downstream: PrivateRedis;
let dir: string;
let root: Redis;
let app: TestApp;
let client: CountersignClient;
const opened: Redis[] = [];

/** A connection as the agent opens one: no reconnects, so a revoked login stays visibly refused. */
function connectAs(url: string): Redis {
  const c = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, disableClientInfo: true, enableReadyCheck: false });
  c.on('error', () => undefined);
  opened.push(c);
  return c;
}

const aclUsers = async () => (await root.call('ACL', 'USERS')) as string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'countersign-client-cache-'));
  downstream = await startPrivateRedis({ dir, persist: false, searchPath: process.env['PATH'] ?? '' });
  root = new Redis(downstream.url, { disableClientInfo: true });
  await root.call('ACL', 'SETUSER', 'csadmin', 'reset', 'on', `>${ADMIN_PASSWORD}`, '-@all', '+acl|setuser', '+acl|deluser', '+client|kill');
  app = await startTestApp({ policy: POLICY, env: { CACHE_ADMIN_URL: `redis://csadmin:${ADMIN_PASSWORD}@127.0.0.1:${downstream.port}/0` } });
  // Short long polls: wait() is started just before the approval, which may land between its
  // first read and its first long poll (see longPollSeconds).
  client = new CountersignClient({ url: app.url, agent: 'billing-agent', secret: app.secrets.billing, longPollSeconds: 2 });
});

afterEach(() => {
  for (const c of opened.splice(0)) c.disconnect();
});

afterAll(async () => {
  root?.disconnect();
  await downstream?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('CountersignClient with just-in-time credentials', () => {
  it('wait() returns the approved proposal with its token and a working login, once; the report revokes it', async () => {
    const submitted = await client.propose({ intent: 'Mark order 7 shipped in the cache', action: { tool: 'cache', operation: 'write', target: 'orders:7' } });
    expect(submitted.status).toBe('pending');
    // The agent waits; a person approves while it does.
    const waiting = client.wait(submitted.id, { timeout: 60 });
    await recordDecision(app.running.deps, { proposalId: submitted.id, person: 'alice', platform: 'console', vote: 'approve' });
    const p = await waiting;

    expect(p.status).toBe('approved');
    expect(p.execution_token?.split('.')).toHaveLength(3);
    const cred = p.credential;
    expect(cred).toBeDefined();
    if (cred === undefined) return;
    expect(Object.keys(cred).sort()).toEqual(['expires_at', 'issuer', 'password', 'url', 'username']);
    expect(cred.issuer).toBe('cache');
    expect(cred.username).toBe(`cs_${submitted.id}`);
    const ttlLeft = Date.parse(cred.expires_at) - Date.now();
    expect(ttlLeft).toBeGreaterThan(4 * 60_000);
    expect(ttlLeft).toBeLessThanOrEqual(5 * 60_000);
    expect(await aclUsers()).toContain(cred.username);

    // Exactly the policy's ACL: orders:* with GET and SET, nothing else.
    const agent = connectAs(cred.url);
    await agent.connect();
    expect(await agent.set('orders:7', 'shipped')).toBe('OK');
    expect(await agent.get('orders:7')).toBe('shipped');
    await expect(agent.get('customers:1')).rejects.toThrow(/NOPERM/);
    await expect(agent.del('orders:7')).rejects.toThrow(/NOPERM/);

    // Handed over once: neither a later read nor another wait() carries it again.
    const again = await client.wait(submitted.id, { timeout: 0 });
    expect(again.status).toBe('executing');
    expect(again.execution_token).toBeUndefined();
    expect(again.credential).toBeUndefined();

    // The task ends: the login is removed and its open session ended.
    const done = await client.reportOutcome(submitted.id, p.execution_token ?? '', { status: 'succeeded', detail: 'orders:7 shipped' });
    expect(done.status).toBe('succeeded');
    expect(await aclUsers()).not.toContain(cred.username);
    await expect(agent.get('orders:7')).rejects.toThrow();
    const probe = connectAs(downstream.url);
    expect(String(await probe.call('AUTH', cred.username, cred.password).catch((e: unknown) => (e as Error).message))).toMatch(/^WRONGPASS/);

    // The agent's audit shows the handle and expiry, never the password.
    const audit = await client.searchAudit({ proposal_id: submitted.id, limit: 100 });
    const types = audit.events.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['credential_issued', 'credential_revoked']));
    expect(JSON.stringify(audit)).not.toContain(cred.password);
  });

  it('an allowed rule with credentials: the first wait() carries the token and the login', async () => {
    const submitted = await client.propose({ intent: 'Read order 8 from the cache', action: { tool: 'cache', operation: 'read', target: 'orders:8' } });
    expect(submitted.status).toBe('approved');
    const p = await client.wait(submitted.id, { timeout: 30, until: 'final' });
    expect(p.execution_token).toEqual(expect.any(String));
    expect(p.credential?.username).toBe(`cs_${submitted.id}`);
    const agent = connectAs(p.credential?.url ?? '');
    await agent.connect();
    expect(await agent.get('orders:8')).toBeNull();
    await client.reportOutcome(submitted.id, p.execution_token ?? '', { status: 'succeeded' });
    expect(await aclUsers()).not.toContain(p.credential?.username);
  });
});
