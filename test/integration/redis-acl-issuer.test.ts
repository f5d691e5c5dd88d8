import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisAclIssuer, redisAclCredentialKeys } from '../../adapters/credentials/redis-acl-issuer.ts';
import { redisAclUserFor } from '../../adapters/credentials/redis-acl-rules.ts';
import { freePort, startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import { CredentialIssueError, type CredentialIssuer, type CredentialSpec } from '../../src/core/credential-ports.ts';
import { newId } from '../../src/core/ids.ts';
import { createMemoryLogger, type MemoryLogger } from '../helpers/memory/logger.ts';

// The redis-acl issuer against a real redis-server of its own, standing in for the downstream
// cache (not the test run's Redis). countersign talks to it as a least-privilege admin user
// that may only change ACL users and kill clients; the test's own root connection inspects.

const ADMIN_PASSWORD = 'adm1n-Pw-7f3c9e21';
const ADMIN_ENV = 'CACHE_ADMIN_URL';

let downstream: PrivateRedis;
let dir: string;
let root: Redis;
let adminUrl: string;
const opened: Redis[] = [];

function spec(acl: string, env = ADMIN_ENV): CredentialSpec {
  return { name: 'cache', kind: 'redis-acl', settings: { admin_url: { env }, acl } };
}

function request(proposalId = newId('p', Date.now())) {
  return { proposal_id: proposalId, agent: 'deploy-bot', expires_at: Date.now() + 600_000 };
}

/** A client as the agent would open one; it does not reconnect, so a killed session stays visibly closed. */
function connectAs(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, disableClientInfo: true });
  client.on('error', () => undefined);
  opened.push(client);
  return client;
}

/** What AUTH with these login details answers, on a fresh connection. */
async function authAs(username: string, password: string): Promise<string> {
  const probe = connectAs(downstream.url);
  return String(await probe.call('AUTH', username, password).catch((e: unknown) => (e as Error).message));
}

async function aclUsers(): Promise<string[]> {
  return (await root.call('ACL', 'USERS')) as string[];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'countersign-acl-downstream-'));
  downstream = await startPrivateRedis({ dir, persist: false, searchPath: process.env['PATH'] ?? '' });
  root = new Redis(downstream.url, { disableClientInfo: true });
  await root.call('ACL', 'SETUSER', 'csadmin', 'reset', 'on', `>${ADMIN_PASSWORD}`, '-@all', '+acl|setuser', '+acl|deluser', '+client|kill');
  adminUrl = `redis://csadmin:${ADMIN_PASSWORD}@127.0.0.1:${downstream.port}/0`;
});

afterAll(async () => {
  root?.disconnect();
  await downstream?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('redis-acl issuer', () => {
  let logger: MemoryLogger;
  let issuer: CredentialIssuer;
  let env: Record<string, string>;
  const given: string[] = [];

  beforeAll(() => {
    logger = createMemoryLogger();
    env = { [ADMIN_ENV]: adminUrl };
    issuer = createRedisAclIssuer({ secrets: { get: (name) => env[name] }, logger });
  });

  afterEach(() => {
    for (const c of opened.splice(0)) c.disconnect();
  });

  afterAll(async () => {
    await issuer.close();
    // Nothing secret in any log line: neither a login's password nor the admin's.
    const logged = JSON.stringify(logger.lines);
    expect(given.length).toBeGreaterThan(0);
    for (const secret of [...given, ADMIN_PASSWORD]) expect(logged).not.toContain(secret);
  });

  it('issues a login that can do exactly what the acl grants', async () => {
    const req = request();
    const cred = await issuer.issue(spec('~orders:* +get +set'), req);
    given.push(cred.secret['password'] ?? '');

    expect(cred.handle).toBe(`cs_${req.proposal_id}`);
    expect(cred.expires_at).toBe(req.expires_at);
    expect(cred.secret['username']).toBe(cred.handle);
    expect(cred.secret['password']).toMatch(/^[0-9a-f]{64}$/);
    const url = new URL(cred.secret['url'] ?? '');
    expect([url.protocol, url.hostname, url.port, url.pathname, url.username]).toEqual(['redis:', '127.0.0.1', String(downstream.port), '/0', cred.handle]);
    expect(decodeURIComponent(url.password)).toBe(cred.secret['password']);

    const agent = connectAs(cred.secret['url'] ?? '');
    await agent.connect();
    expect(await agent.set('orders:1', 'shipped')).toBe('OK');
    expect(await agent.get('orders:1')).toBe('shipped');
    await expect(agent.get('other:1')).rejects.toThrow(/NOPERM/);
    await expect(agent.del('orders:1')).rejects.toThrow(/NOPERM/);
    await expect(agent.call('ACL', 'SETUSER', 'backdoor', 'on', '>x', '+@all')).rejects.toThrow(/NOPERM/);

    await issuer.revoke(spec('~orders:* +get +set'), cred.handle);
  });

  it('revoke ends the open session, stops new logins, and can run twice', async () => {
    const s = spec('~orders:* +get');
    const cred = await issuer.issue(s, request());
    given.push(cred.secret['password'] ?? '');
    const agent = connectAs(cred.secret['url'] ?? '');
    await agent.connect();
    expect(await agent.get('orders:2')).toBeNull();
    const ended = once(agent, 'end');

    await issuer.revoke(s, cred.handle);

    await ended;
    expect(agent.status).toBe('end');
    expect(await aclUsers()).not.toContain(cred.handle);
    expect(await authAs(cred.handle, cred.secret['password'] ?? '')).toMatch(/^WRONGPASS/);

    await issuer.revoke(s, cred.handle);
    expect(await aclUsers()).not.toContain(cred.handle);
    expect(logger.lines.filter((l) => l.msg === 'credential revoked' && (l.obj as { handle?: string }).handle === cred.handle)).toHaveLength(2);
  });

  it('a second issue for the same proposal replaces the login (the earlier password stops working)', async () => {
    const s = spec('~orders:* +get');
    const req = request();
    const first = await issuer.issue(s, req);
    const second = await issuer.issue(s, req);
    given.push(first.secret['password'] ?? '', second.secret['password'] ?? '');
    expect(second.handle).toBe(first.handle);
    expect(second.secret['password']).not.toBe(first.secret['password']);
    expect(await authAs(first.handle, first.secret['password'] ?? '')).toMatch(/^WRONGPASS/);
    expect(await authAs(second.handle, second.secret['password'] ?? '')).toBe('OK');
    const agent = connectAs(second.secret['url'] ?? '');
    await agent.connect();
    expect(await agent.get('orders:3')).toBeNull();
    await issuer.revoke(s, second.handle);
  });

  it.each([
    ['~orders:* >pw', '>pw'],
    // Grants that would let the agent make itself a login that outlives the task.
    ['~orders:* +@all', '+@all'],
    ['~orders:* allcommands', 'allcommands'],
    ['~orders:* +acl', '+acl'],
    ['~orders:* +acl|setuser', '+acl|setuser'],
    ['~orders:* +@admin', '+@admin'],
    ['~orders:* +config|set', '+config|set'],
    ['~orders:* nopass', 'nopass'],
    ['on ~orders:* +get', 'on'],
    ['~orders:* +get off', 'off'],
    ['~orders:* reset', 'reset'],
    ['~orders:* resetpass', 'resetpass'],
    ['~orders:* <oldpw', '<oldpw'],
    ['#5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8', '#5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1'],
    ['(~x +get)', '(~x'],
    ['~orders:* +get|', '+get|'],
    ['   ', ''],
  ])('refuses acl %j before anything is created', async (acl, rule) => {
    const before = await aclUsers();
    const err = await issuer.issue(spec(acl), request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialIssueError);
    expect((err as Error).message).toContain('"cache"');
    if (rule !== '') expect((err as Error).message).toContain(`"${rule}`);
    expect(await aclUsers()).toEqual(before);
    // The policy schema refuses the same entry when the policy loads.
    expect(z.strictObject(redisAclCredentialKeys).safeParse({ admin_url: { env: ADMIN_ENV }, acl }).success).toBe(false);
  });

  it('the policy schema takes the rule shapes a cache entry needs', () => {
    const ok = z.strictObject(redisAclCredentialKeys).safeParse({ admin_url: { env: ADMIN_ENV }, acl: '~orders:* %R~cache:* &events:* +get +set +client|list -@dangerous +@read resetchannels' });
    expect(ok.success).toBe(true);
    expect(z.strictObject(redisAclCredentialKeys).safeParse({ admin_url: { env: ADMIN_ENV }, acl: '~a', connect_limit: 2 }).success).toBe(false);
  });

  it.each(['default', 'csadmin', 'cs_Upper', 'cs_a b', 'cs_', 'cs_a;DEL', ''])('revoke refuses handle %j', async (handle) => {
    const before = await aclUsers();
    await expect(issuer.revoke(spec('~orders:* +get'), handle)).rejects.toBeInstanceOf(CredentialIssueError);
    expect(await aclUsers()).toEqual(before);
  });

  it('the user name comes from the proposal id only, and is always a valid handle', () => {
    const id = newId('p', Date.now());
    expect(redisAclUserFor(id)).toBe(`cs_${id}`);
    const odd = redisAclUserFor('P-1 >pw nopass');
    expect(odd).toMatch(/^cs_h[0-9a-f]{32}$/);
    expect(redisAclUserFor('P-1 >pw nopass')).toBe(odd);
  });
});

describe('redis-acl issuer, admin trouble', () => {
  it('an unreachable admin fails with CredentialIssueError that carries no password', async () => {
    const logger = createMemoryLogger();
    const url = `redis://csadmin:${ADMIN_PASSWORD}@127.0.0.1:${await freePort()}/0`;
    const issuer = createRedisAclIssuer({ secrets: { get: (name) => (name === ADMIN_ENV ? url : undefined) }, logger });
    try {
      const issued = await issuer.issue(spec('~orders:* +get'), request()).catch((e: unknown) => e);
      expect(issued).toBeInstanceOf(CredentialIssueError);
      expect((issued as CredentialIssueError).issuer).toBe('cache');
      expect((issued as Error).message).toMatch(/could not be reached/);
      expect((issued as Error).message).not.toContain(ADMIN_PASSWORD);

      const revoked = await issuer.revoke(spec('~orders:* +get'), 'cs_p_abc').catch((e: unknown) => e);
      expect(revoked).toBeInstanceOf(CredentialIssueError);
      expect((revoked as Error).message).not.toContain(ADMIN_PASSWORD);
    } finally {
      await issuer.close();
    }
    expect(logger.at('warn').length).toBeGreaterThan(0);
    expect(JSON.stringify(logger.lines)).not.toContain(ADMIN_PASSWORD);
  });

  it('a wrong admin password is refused without echoing it', async () => {
    const logger = createMemoryLogger();
    const wrong = 'not-the-admin-pw-19af';
    const url = `redis://csadmin:${wrong}@127.0.0.1:${downstream.port}/0`;
    const issuer = createRedisAclIssuer({ secrets: { get: () => url }, logger });
    try {
      const before = await aclUsers();
      const err = await issuer.issue(spec('~orders:* +get'), request()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CredentialIssueError);
      expect((err as Error).message).not.toContain(wrong);
      expect(await aclUsers()).toEqual(before);
    } finally {
      await issuer.close();
    }
    expect(JSON.stringify(logger.lines)).not.toContain(wrong);
  });

  it('a missing admin_url variable is named, and nothing is sent', async () => {
    const issuer = createRedisAclIssuer({ secrets: { get: () => undefined }, logger: createMemoryLogger() });
    await expect(issuer.issue(spec('~orders:* +get', 'NO_SUCH_ADMIN_URL'), request())).rejects.toThrow(/NO_SUCH_ADMIN_URL is not set/);
    await issuer.close();
  });

  it('an admin_url that is not a URL is refused without quoting it', async () => {
    const value = 'hunter2-not-a-url';
    const issuer = createRedisAclIssuer({ secrets: { get: () => value }, logger: createMemoryLogger() });
    const err = await issuer.issue(spec('~orders:* +get'), request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialIssueError);
    expect((err as Error).message).toContain(ADMIN_ENV);
    expect((err as Error).message).not.toContain(value);
    await issuer.close();
  });
});
