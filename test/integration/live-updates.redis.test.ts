import { describe, expect, it } from 'vitest';
import { createRedisChangeFeed } from '../../adapters/redis/change-feed.ts';
import { createRedisLiveUpdates } from '../../adapters/redis/live-updates.ts';
import type { LiveNotice, LiveUpdates } from '../../src/core/ports.ts';
import { liveUpdatesContract } from '../contracts/live-updates.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// Live updates over Redis pub/sub: the port's contract (each replica on a subscriber
// connection of its own, as each process has), and what only Redis shows: the channel's
// name, and that a subscriber connection shared with the change feed and with other
// installations hears only this installation's well-formed notices.

const { redis, prefix, newPrefix, connect } = testRedis();

liveUpdatesContract(() => createRedisLiveUpdates(redis, connect(), prefix));

/** Resolves with the first `count` notices `updates` hears. */
function hear(updates: LiveUpdates, count: number): Promise<LiveNotice[]> {
  const heard: LiveNotice[] = [];
  return new Promise((resolve) => {
    const off = updates.subscribe((n) => {
      heard.push(n);
      if (heard.length === count) {
        off();
        resolve(heard);
      }
    });
  });
}

describe('Redis live updates', () => {
  it('a notice is "<id> <change>" on {prefix}:console:changes, both ways', async () => {
    const p = newPrefix();
    const subscriber = connect();
    const updates = await createRedisLiveUpdates(redis, subscriber, p);
    const raw = connect();
    const published = new Promise<[string, string]>((resolve) => raw.once('message', (ch: string, m: string) => resolve([ch, m])));
    await raw.subscribe(`{${p}}:console:changes`);
    const heard = hear(updates, 2);
    await updates.publish({ id: 'p_3d4e5f', change: 'reply' });
    expect(await published).toEqual([`{${p}}:console:changes`, 'p_3d4e5f reply']);
    // What another replica (of this version or the one before) publishes.
    await redis.publish(`{${p}}:console:changes`, 'p_0a1b2c updated');
    expect(await heard).toEqual([
      { id: 'p_3d4e5f', change: 'reply' },
      { id: 'p_0a1b2c', change: 'updated' },
    ]);
    await updates.close();
  });

  it("on a connection shared with the change feed and another installation, hears only its own channel's well-formed notices", async () => {
    const [p, other] = [newPrefix(), newPrefix()];
    const shared = connect();
    const feed = await createRedisChangeFeed(redis, shared, p);
    const updates = await createRedisLiveUpdates(redis, shared, p);
    const neighbour = await createRedisLiveUpdates(redis, shared, other);
    const heard = hear(updates, 2);
    const woke = feed.waitForChange('p_feed', 10_000);
    const channel = `{${p}}:console:changes`;
    // Published in this order; one connection receives them in this order, so by the time the
    // last one is heard, every one before it has been looked at.
    await redis.publish(`{${p}}:changes`, 'p_feed approved'); // the change feed's, not ours
    await redis.publish(`{${other}}:console:changes`, 'p_neighbour posted'); // another installation's
    for (const malformed of ['', 'p_x', 'p_x posted extra', ' posted', 'p_x Posted', 'p_x deleted', 'p_x  posted', '{"id":"p_x"}']) {
      await redis.publish(channel, malformed);
    }
    await redis.publish(channel, 'p_first posted');
    await redis.publish(channel, 'p_last reply');
    expect(await heard).toEqual([
      { id: 'p_first', change: 'posted' },
      { id: 'p_last', change: 'reply' },
    ]);
    // The others still hear their own: sharing the connection took nothing from them.
    expect(await woke).toBe('approved');
    const neighbourHeard = hear(neighbour, 1);
    await redis.publish(`{${other}}:console:changes`, 'p_n2 updated');
    expect(await neighbourHeard).toEqual([{ id: 'p_n2', change: 'updated' }]);
    // Closing one user of the connection leaves the others' channels subscribed.
    await updates.close();
    const woke2 = feed.waitForChange('p_feed2', 10_000);
    await redis.publish(`{${p}}:changes`, 'p_feed2 rejected');
    expect(await woke2).toBe('rejected');
    await Promise.all([neighbour.close(), feed.close()]);
  });
});
