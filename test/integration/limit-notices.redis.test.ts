import { describe, expect, it } from 'vitest';
import { createRedisLimitNoticeStore } from '../../adapters/redis/limit-notices.ts';
import type { CardRef } from '../../src/core/card.ts';
import { testRedis } from '../helpers/redis.ts';

// The notice store's claims on Redis (lua/limit-notice-*.lua), with explicit times instead of
// waits: one post per window, an update only once the throttle passed, each due update claimed
// once however many sweeps ask, and a window's last unshown count handed over at the roll-over.

const { redis, newPrefix } = testRedis();
const EVERY = 5_000;
const WINDOW = 60_000;
const T0 = Date.UTC(2026, 11, 1, 11, 2);
const REF: CardRef = { platform: 'slack', conversation: 'C0FIN', message: '1700000000.000100' };

function setup() {
  const store = createRedisLimitNoticeStore(redis, newPrefix());
  const refuse = (at: number, agent = 'billing-agent', route = 'finance') =>
    store.refused({ agent, route, limit: 'proposals_per_minute', max: 30, rule: 'default', at, windowMs: WINDOW, updateEveryMs: EVERY });
  return { store, refuse };
}

describe('Redis limit notice store', () => {
  it('posts at the first refusal, counts the rest, and updates only when the last update is old enough', async () => {
    const { store, refuse } = setup();
    const first = await refuse(T0);
    expect(first).toMatchObject({ kind: 'post', finish: null, notice: { agent: 'billing-agent', route: 'finance', count: 1, since: T0, ends: T0 + WINDOW, limit: 'proposals_per_minute', max: 30 } });
    // Still being posted: counted, nothing to update yet.
    expect(await refuse(T0 + 10)).toEqual({ kind: 'counted' });
    if (first.kind !== 'post') throw new Error('unreachable');
    await store.posted(first.notice, [REF], EVERY);
    expect(await refuse(T0 + 20)).toEqual({ kind: 'counted' });
    // Not due before the throttle passed.
    expect(await store.due(T0 + EVERY - 1, EVERY, 10)).toEqual([]);
    // Two sweeps at once (two replicas): one claims.
    const claims = (await Promise.all([store.due(T0 + EVERY, EVERY, 10), store.due(T0 + EVERY, EVERY, 10)])).flat();
    expect(claims).toHaveLength(1);
    expect(claims[0]).toEqual({ notice: expect.objectContaining({ count: 3 }), refs: [REF] });
    // Nothing new since: nothing due, and a refusal right after waits for the throttle.
    expect(await store.due(T0 + 2 * EVERY, EVERY, 10)).toEqual([]);
    expect(await refuse(T0 + EVERY + 1)).toEqual({ kind: 'counted' });
    // A refusal after the throttle updates at once, with the running count.
    const update = await refuse(T0 + 2 * EVERY + 1);
    expect(update).toEqual({ kind: 'update', update: { notice: expect.objectContaining({ count: 5, since: T0 }), refs: [REF] } });
    expect(await store.due(T0 + 10 * EVERY, EVERY, 10)).toEqual([]);
  });

  it("a new window posts again and hands over the old window's unshown count; the banner lists current windows, newest first", async () => {
    const { store, refuse } = setup();
    const first = await refuse(T0);
    if (first.kind !== 'post') throw new Error('expected a post');
    await store.posted(first.notice, [REF], EVERY);
    await refuse(T0 + 1);
    await refuse(T0 + 2);
    const other = await refuse(T0 + 100, 'ops-agent');
    expect(other.kind).toBe('post');
    expect((await store.current(T0 + 200)).map((n) => [n.agent, n.count])).toEqual([
      ['ops-agent', 1],
      ['billing-agent', 3],
    ]);
    // The window is over: the next refusal starts a new one, and finishes the old message at 3.
    const next = await refuse(T0 + WINDOW);
    expect(next).toMatchObject({ kind: 'post', notice: { count: 1, since: T0 + WINDOW }, finish: { notice: { count: 3, since: T0 }, refs: [REF] } });
    // The old window's count was claimed with the roll-over: the sweep has nothing left of it.
    expect(await store.due(T0 + WINDOW + EVERY, EVERY, 10)).toEqual([]);
    // A post that comes back after its window was replaced does not give the new window its message.
    if (next.kind !== 'post') throw new Error('unreachable');
    await store.posted(first.notice, [{ ...REF, message: 'stale' }], EVERY);
    expect(await refuse(T0 + WINDOW + EVERY)).toEqual({ kind: 'counted' });
    const fresh: CardRef = { ...REF, message: '1700000060.000100' };
    await store.posted(next.notice, [fresh], EVERY);
    expect(await store.due(T0 + WINDOW + EVERY, EVERY, 10)).toEqual([{ notice: expect.objectContaining({ count: 2, since: T0 + WINDOW }), refs: [fresh] }]);
    // Windows over leave the banner.
    expect((await store.current(T0 + WINDOW + 100)).map((n) => n.agent)).toEqual(['billing-agent']);
  });
});
