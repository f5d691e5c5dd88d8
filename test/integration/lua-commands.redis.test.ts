import type { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ReplyError } from 'ioredis';
import { countInWindow, runLuaWhenFull } from '../../adapters/redis/lua-commands.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { redisScripts } from '../../adapters/redis/scripts.ts';
import { seal } from '../../src/core/audit.ts';
import { createRedisSessionStore } from '../../adapters/redis/sessions.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { testRedis } from '../helpers/redis.ts';

// The one Lua loader (lua-commands.ts): every user of a client shares its definitions, and
// the counter that sessions and the auth-failure limiter count with.

const { redis, prefix, newPrefix, connect } = testRedis();
const node = redis as Redis;

describe('Lua commands', () => {
  it('defines each command once per client, whichever store asks first, and every store can run its scripts', async () => {
    const client = connect();
    const defined: string[] = [];
    const original = client.defineCommand.bind(client) as (name: string, def: { lua: string; numberOfKeys: number }) => void;
    (client as Cluster | Redis).defineCommand = ((name: string, def: { lua: string; numberOfKeys: number }) => {
      defined.push(name);
      original(name, def);
    }) as typeof client.defineCommand;

    const ledger = createRedisTokenLedger(client, { prefix });
    const scripts = redisScripts(client);
    const sessions = createRedisSessionStore(client, prefix);
    createRedisTokenLedger(client, { prefix: newPrefix() });
    redisScripts(client);

    expect(defined.length).toBeGreaterThan(0);
    expect(new Set(defined).size).toBe(defined.length);
    expect(defined).toEqual(expect.arrayContaining(['countersignCreateProposal', 'countersignTokenSave', 'countersignCountInWindow']));
    // The audit scripts and the token scripts run side by side on the one client.
    const k = redisKeys(prefix);
    expect(await scripts.appendEvents({ audit: k.audit, auditHead: k.auditHead }, [seal({ type: 'auth_failed', at: new Date().toISOString(), proposal_id: null, agent: null, actor: 'system', data: {} })])).toBe(1);
    expect(await ledger.redeem('t_never_issued')).toBe(false);
    expect(await sessions.recordFailure('alice')).toBe(true);
  });

  it('count-in-window: counts, gives the counter its window at the first count, and does not extend it', async () => {
    const key = `{${prefix}}:test:count`;
    expect(await countInWindow(redis, key, 300)).toBe(1);
    const first = await node.pttl(key);
    expect(first).toBeGreaterThan(299_000);
    expect(first).toBeLessThanOrEqual(300_000);
    await node.pexpire(key, 5_000);
    expect(await countInWindow(redis, key, 300)).toBe(2);
    expect(await node.pttl(key)).toBeLessThanOrEqual(5_000);
  });

  it('count-in-window: a counter found without expiry gets one, keeping its count', async () => {
    const key = `{${prefix}}:test:stuck`;
    await node.set(key, '41');
    expect(await countInWindow(redis, key, 60)).toBe(42);
    expect(await node.ttl(key)).toBeGreaterThan(0);
  });

  it('count-in-window: concurrent counts from many connections all land, and the counter expires', async () => {
    const key = `{${prefix}}:test:race`;
    const clients = Array.from({ length: 4 }, () => connect());
    const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => countInWindow(clients[i % 4]!, key, 60)));
    expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(await node.ttl(key)).toBeGreaterThan(0);
  });

  it('a Redis that cannot read the kill switch\'s allow-oom line (before 7.0) runs the plain script; other errors surface', async () => {
    const client = connect();
    const ledger = createRedisTokenLedger(client, { prefix });
    const key = `{${prefix}}:revoked-agent:old-redis`;
    // What Redis 6 answers to a script that starts with a shebang.
    const compileError = new ReplyError("ERR Error compiling script (new function): user_script:1: unexpected symbol near '#'");
    const commands = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const used: string[] = [];
    for (const name of ['countersignAgentRevokeWhenFull', 'countersignAgentRevoke'] as const) {
      const real = commands[name]!;
      commands[name] = (...args) => (used.push(name), name.endsWith('WhenFull') ? Promise.reject(compileError) : real.apply(client, args));
    }
    await ledger.markAgentRevoked('old-redis', 1234);
    expect(used).toEqual(['countersignAgentRevokeWhenFull', 'countersignAgentRevoke']);
    expect(await node.get(key)).toBe('1234');
    // Any other error is the caller's to see.
    commands['countersignTokenRevokeWhenFull'] = () => Promise.reject(new ReplyError('OOM command not allowed when used memory > maxmemory'));
    await expect(runLuaWhenFull(client, 'countersignTokenRevokeWhenFull', ['a', 'b', 'c', 'd', 'jti', 'revoked'])).rejects.toThrow(/OOM/);
  });
});
