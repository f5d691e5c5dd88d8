import { describe, expect, it } from 'vitest';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAwayStore } from '../../adapters/redis/away-store.ts';
import { awayStoreContract } from '../contracts/away-store.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The Redis away store: the port's contract (each test on a prefix of its own, so its audit
// stream starts empty), and what only Redis shows: the one hash under the prefix's tag, and
// entries that cannot be read are nobody away.

const { redis, newPrefix } = testRedis();

awayStoreContract(() => {
  const prefix = newPrefix();
  return { store: createRedisAwayStore(redis, { prefix }), audit: createRedisAuditLog(redis, { prefix }) };
});

describe('Redis away store', () => {
  it('keeps every absence in one hash, `{prefix}:away`, person -> JSON', async () => {
    const p = newPrefix();
    const a = { delegate: 'bob', until: Date.now() + 60_000, set_at: Date.now() };
    await createRedisAwayStore(redis, { prefix: p }).set('alice', a, Date.now(), []);
    expect(await (redis as import('ioredis').Redis).keys(`{${p}}:*`)).toEqual([`{${p}}:away`]);
    expect(JSON.parse((await redis.hget(`{${p}}:away`, 'alice'))!)).toEqual(a);
  });

  it('an entry that is not a readable absence reads as nobody away, and does not block naming that person', async () => {
    const p = newPrefix();
    const store = createRedisAwayStore(redis, { prefix: p });
    await redis.hset(`{${p}}:away`, { bob: 'not json', carol: '{"delegate":"x"}', dave: '[1]' });
    const now = Date.now();
    expect(await store.get('bob', now)).toBeNull();
    expect([...(await store.list(now))]).toEqual([]);
    expect(await store.set('alice', { delegate: 'bob', until: now + 60_000, set_at: now }, now, [])).toEqual({ kind: 'set' });
  });

  it('a key of the wrong type is refused before anything is written', async () => {
    const p = newPrefix();
    await redis.set(`{${p}}:away`, 'x');
    const now = Date.now();
    await expect(createRedisAwayStore(redis, { prefix: p }).set('alice', { delegate: 'bob', until: now + 1000, set_at: now }, now, [])).rejects.toThrow(/cannot record/);
    expect(await redis.get(`{${p}}:away`)).toBe('x');
  });
});
