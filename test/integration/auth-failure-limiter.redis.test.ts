import { describe, expect, it } from 'vitest';
import { createRedisFailureLimiter } from '../../adapters/redis/auth-failure-limiter.ts';
import { authFailureLimiterContract } from '../contracts/auth-failure-limiter.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The Redis auth-failure limiter: the port's contract, and what only Redis shows: the counter
// of a minute is named by the injected clock's minute (not the wall clock's), as before
// (`{prefix}:authfail:<address>:<minute>`), and always has an expiry.

const { redis, prefix, newPrefix } = testRedis();
const node = redis as import('ioredis').Redis;

authFailureLimiterContract((clock, perMinute) => createRedisFailureLimiter(redis, prefix, clock, perMinute));

describe('Redis auth-failure limiter', () => {
  it("counts under the injected clock's minute, never the wall clock's, in a counter that expires", async () => {
    const p = newPrefix();
    // 2001-09-09T01:46:40Z: a minute the wall clock will not be in.
    let now = 1_000_000_000_000;
    const minute = Math.floor(now / 60_000);
    const limiter = createRedisFailureLimiter(redis, p, { now: () => now }, 2);
    expect(await limiter.allow('192.0.2.7')).toBe(true);
    expect(await limiter.allow('192.0.2.7')).toBe(true);
    expect(await limiter.allow('192.0.2.7')).toBe(false);
    expect(await node.keys(`{${p}}:*`)).toEqual([`{${p}}:authfail:192.0.2.7:${minute}`]);
    const ttl = await node.ttl(`{${p}}:authfail:192.0.2.7:${minute}`);
    expect(ttl).toBeGreaterThan(60);
    expect(ttl).toBeLessThanOrEqual(120);
    // The clock moves a minute (the wall clock has not): a fresh count, in the next minute's counter.
    now += 60_000;
    expect(await limiter.allow('192.0.2.7')).toBe(true);
    expect(await node.get(`{${p}}:authfail:192.0.2.7:${minute + 1}`)).toBe('1');
    // And back: the old minute is still used up.
    now -= 60_000;
    expect(await limiter.allow('192.0.2.7')).toBe(false);
  });

  it('without a clock it goes by the system clock, as main.ts calls it today', async () => {
    const p = newPrefix();
    const before = Math.floor(Date.now() / 60_000);
    expect(await createRedisFailureLimiter(redis, p).allow('198.51.100.1')).toBe(true);
    const after = Math.floor(Date.now() / 60_000);
    const keys = await node.keys(`{${p}}:*`);
    expect([`{${p}}:authfail:198.51.100.1:${before}`, `{${p}}:authfail:198.51.100.1:${after}`]).toContain(keys[0]);
    expect(keys).toHaveLength(1);
  });

  it('an address that is not shaped like one is counted under its digest, never spelled into a key', async () => {
    const p = newPrefix();
    const limiter = createRedisFailureLimiter(redis, p, { now: () => 0 }, 1);
    const odd = `1.2.3.4}:x:{${prefix} *`;
    expect(await limiter.allow(odd)).toBe(true);
    expect(await limiter.allow(odd)).toBe(false);
    const [key, ...rest] = await node.keys(`{${p}}:*`);
    expect(rest).toEqual([]);
    expect(key).toMatch(new RegExp(`^\\{${p}\\}:authfail:#[0-9a-f]{64}:0$`));
  });
});
