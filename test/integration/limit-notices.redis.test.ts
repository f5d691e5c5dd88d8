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
// The store expires its keys at absolute times (PEXPIREAT): the test's times must be near the real clock.
const T0 = Math.floor(Date.now() / 60_000) * 60_000 + 60_000;
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

  it('a failed update is due again after the throttle, unless a later claim shows more, and only a few times per window', async () => {
    const { store, refuse } = setup();
    const first = await refuse(T0);
    if (first.kind !== 'post') throw new Error('expected a post');
    await store.posted(first.notice, [REF], EVERY);
    await refuse(T0 + 1);
    let [claim] = await store.due(T0 + EVERY, EVERY, 10);
    expect(claim?.notice.count).toBe(2);
    // Failed: due again one throttle later, with the same count.
    let at = T0 + EVERY;
    await store.failed(claim!.notice, at, EVERY);
    expect(await store.due(at + EVERY - 1, EVERY, 10)).toEqual([]);
    // Five tries again in all; then the window gives up on this count.
    for (let i = 0; i < 4; i++) {
      at += EVERY;
      [claim] = await store.due(at, EVERY, 10);
      expect(claim?.notice.count).toBe(2);
      await store.failed(claim!.notice, at, EVERY);
    }
    at += EVERY;
    [claim] = await store.due(at, EVERY, 10);
    expect(claim?.notice.count).toBe(2);
    await store.failed(claim!.notice, at, EVERY);
    expect(await store.due(at + 10 * EVERY, EVERY, 10)).toEqual([]);
    // A failure of an older update while a newer one shows more is not tried again.
    const { store: s2, refuse: r2 } = setup();
    const p2 = await r2(T0);
    if (p2.kind !== 'post') throw new Error('expected a post');
    await s2.posted(p2.notice, [REF], EVERY);
    await r2(T0 + 1);
    const [older] = await s2.due(T0 + EVERY, EVERY, 10);
    const newer = await r2(T0 + 2 * EVERY);
    expect(newer).toMatchObject({ kind: 'update', update: { notice: { count: 3 } } });
    await s2.failed(older!.notice, T0 + 2 * EVERY, EVERY);
    expect(await s2.due(T0 + 10 * EVERY, EVERY, 10)).toEqual([]);
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
