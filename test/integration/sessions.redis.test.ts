import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRedisSessionStore } from '../../adapters/redis/sessions.ts';
import { FAILED_SIGN_IN_WINDOW_SECONDS, MAX_FAILED_SIGN_INS, ONE_TIME_TTL_SECONDS, SESSION_TTL_SECONDS } from '../../src/core/ports.ts';
import { sessionStoreContract } from '../contracts/session-store.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The Redis session store: the port's contract, and what only Redis shows: the keys the
// console has written so far still work, only digests are stored, and the failure counter
// always expires.

const { redis, newPrefix } = testRedis();
const node = redis as import('ioredis').Redis;

/** Time passing, as Redis would see it: every expiring key of `p` comes `ms` closer to its end. */
async function advance(p: string, ms: number): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', `{${p}}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const left = await node.pttl(key);
      if (left < 0) continue;
      if (left <= ms) await node.del(key);
      else await node.pexpire(key, left - ms);
    }
  } while (cursor !== '0');
}

// Its own prefix: `advance` moves the time of every key under it.
const contractPrefix = newPrefix();
sessionStoreContract(() => createRedisSessionStore(redis, contractPrefix), { advance: (ms) => advance(contractPrefix, ms) });

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

// The names adapters/console/sessions.ts (createSessionStore) used, spelled out here so that
// this test keeps the format when that file goes.
const legacy = (p: string) => ({
  session: (id: string) => `{${p}}:console:session:${sha256(id)}`,
  once: (token: string) => `{${p}}:console:once:${sha256(token)}`,
  fail: (person: string) => `{${p}}:console:fail:${person}`,
});

async function ttl(key: string): Promise<number> {
  return node.ttl(key);
}

describe('Redis sessions', () => {
  it('a session, a sign-in link and a failure count the console wrote before read back', async () => {
    const p = newPrefix();
    const k = legacy(p);
    const id = 'Qm9vdHN0cmFwcGVkLXNlc3Npb24taWQtMDAwMDAwMDA';
    const session = { person: 'alice', csrf: 'Y3NyZi10b2tlbi1mb3ItYWxpY2UtMDAwMDAwMDAwMDA', created_at: 1_767_225_600_000 };
    await node.set(k.session(id), JSON.stringify(session), 'EX', SESSION_TTL_SECONDS);
    const link = 'bGluay10b2tlbi1mb3ItYm9iLTAwMDAwMDAwMDAwMDAwMA';
    await node.set(k.once(link), 'bob', 'EX', ONE_TIME_TTL_SECONDS);
    await node.set(k.fail('carol'), String(MAX_FAILED_SIGN_INS), 'EX', FAILED_SIGN_IN_WINDOW_SECONDS);

    const store = createRedisSessionStore(redis, p);
    expect(await store.get(id)).toEqual(session);
    expect(await store.consumeOneTime(link)).toBe('bob');
    expect(await node.exists(k.once(link))).toBe(0);
    expect(await store.isLockedOut('carol')).toBe(true);
    await store.destroy(id);
    expect(await node.exists(k.session(id))).toBe(0);
  });

  it('writes under the names the console used, with their expiries, and stores no secret', async () => {
    const p = newPrefix();
    const k = legacy(p);
    const store = createRedisSessionStore(redis, p);
    const { id, session } = await store.create('alice', 1_767_225_600_000);
    const link = await store.issueOneTime('bob');
    await store.recordFailure('carol');

    expect(JSON.parse((await node.get(k.session(id)))!)).toEqual(session);
    expect(await node.get(k.once(link))).toBe('bob');
    expect(await node.get(k.fail('carol'))).toBe('1');
    const keys = await node.keys(`{${p}}:*`);
    expect(keys.sort()).toEqual([k.fail('carol'), k.once(link), k.session(id)].sort());
    // Reading everything Redis holds gives no way in.
    for (const key of keys) {
      const value = (await node.get(key)) ?? '';
      for (const secret of [id, link]) expect(`${key} ${value}`).not.toContain(secret);
    }

    expect(await ttl(k.session(id))).toBeGreaterThan(SESSION_TTL_SECONDS - 60);
    expect(await ttl(k.session(id))).toBeLessThanOrEqual(SESSION_TTL_SECONDS);
    expect(await ttl(k.once(link))).toBeGreaterThan(ONE_TIME_TTL_SECONDS - 60);
    expect(await ttl(k.once(link))).toBeLessThanOrEqual(ONE_TIME_TTL_SECONDS);
  });

  it('the failure counter has its window from the first failure, and later failures do not extend it', async () => {
    const p = newPrefix();
    const key = legacy(p).fail('dave');
    const store = createRedisSessionStore(redis, p);
    await store.recordFailure('dave');
    const first = await ttl(key);
    expect(first).toBeGreaterThan(FAILED_SIGN_IN_WINDOW_SECONDS - 60);
    expect(first).toBeLessThanOrEqual(FAILED_SIGN_IN_WINDOW_SECONDS);
    // Shorten the window as if most of it had passed: a further failure must leave it so.
    await node.expire(key, 30);
    await store.recordFailure('dave');
    expect(await ttl(key)).toBeLessThanOrEqual(30);
    expect(await node.get(key)).toBe('2');
  });

  it('a counter an older version left without expiry (crash between INCR and EXPIRE) gets its window at the next failure', async () => {
    const p = newPrefix();
    const key = legacy(p).fail('erin');
    await node.set(key, String(MAX_FAILED_SIGN_INS + 5));
    const store = createRedisSessionStore(redis, p);
    expect(await store.isLockedOut('erin')).toBe(true);
    expect(await store.recordFailure('erin')).toBe(false);
    expect(await ttl(key)).toBeGreaterThan(0);
    expect(await ttl(key)).toBeLessThanOrEqual(FAILED_SIGN_IN_WINDOW_SECONDS);
  });

  it('refuses a person id that is not a policy id rather than put it in a key name', async () => {
    const p = newPrefix();
    const store = createRedisSessionStore(redis, p);
    for (const bad of ['', 'alice:x', 'a*', '{other}', 'alice bob', `-${'x'.repeat(10)}`, 'x'.repeat(101)]) {
      await expect(store.recordFailure(bad), bad).rejects.toThrow(/invalid person id/);
      await expect(store.isLockedOut(bad), bad).rejects.toThrow(/invalid person id/);
      await expect(store.clearFailures(bad), bad).rejects.toThrow(/invalid person id/);
    }
    expect(await node.keys(`{${p}}:*`)).toEqual([]);
  });

  it('a malformed session id or token is not even looked up', async () => {
    const p = newPrefix();
    const store = createRedisSessionStore(redis, p);
    // Stored under the digest of a value of the wrong shape, as nothing of ours would write it.
    await node.set(legacy(p).session('short'), JSON.stringify({ person: 'mallory', csrf: 'x', created_at: 0 }));
    await node.set(legacy(p).once('short'), 'mallory');
    expect(await store.get('short')).toBeNull();
    expect(await store.consumeOneTime('short')).toBeNull();
    expect(await node.exists(legacy(p).once('short'))).toBe(1);
  });
});
