import { describe, expect, it } from 'vitest';
import { newId } from '../../src/core/ids.ts';
import type { ChangeFeed } from '../../src/core/ports.ts';

// What every ChangeFeed must do, run against the Redis adapter
// (test/integration/change-feed.contract.redis.test.ts) and the memory fake
// (test/unit/change-feed.memory.test.ts). `make` gives two replicas' feeds of one
// installation: a change published on either wakes the long-polls waiting on both.

export type ChangeFeedSubject = { feed: ChangeFeed; other: ChangeFeed };

export function changeFeedContract(name: string, make: () => Promise<ChangeFeedSubject>): void {
  describe(`ChangeFeed contract: ${name}`, () => {
    const pid = () => newId('p', Date.now());

    it('wakes a waiter with the status published for its proposal', async () => {
      const { feed } = await make();
      const p = pid();
      const waiting = feed.waitForChange(p, 10_000);
      await feed.publish(p, 'approved');
      expect(await waiting).toBe('approved');
    });

    it('wakes a waiter on another replica, and every waiter of the proposal', async () => {
      const { feed, other } = await make();
      const p = pid();
      const here = feed.waitForChange(p, 10_000);
      const there = other.waitForChange(p, 10_000);
      const alsoThere = other.waitForChange(p, 10_000);
      await feed.publish(p, 'denied');
      expect(await Promise.all([here, there, alsoThere])).toEqual(['denied', 'denied', 'denied']);
    });

    it("is not woken by another proposal's change", async () => {
      const { feed, other } = await make();
      const [mine, theirs] = [pid(), pid()];
      const waiting = feed.waitForChange(mine, 10_000);
      await other.publish(theirs, 'approved');
      await other.publish(mine, 'cancelled');
      expect(await waiting).toBe('cancelled');
    });

    it('resolves null when the timeout passes with no change', async () => {
      const { feed } = await make();
      expect(await feed.waitForChange(pid(), 20)).toBeNull();
    });

    it('resolves null when the signal aborts, and at once when it had aborted already', async () => {
      const { feed } = await make();
      const p = pid();
      const controller = new AbortController();
      const waiting = feed.waitForChange(p, 60_000, controller.signal);
      controller.abort();
      expect(await waiting).toBeNull();
      expect(await feed.waitForChange(p, 60_000, AbortSignal.abort())).toBeNull();
      // A wait that ended leaves nothing behind: the next change reaches the next waiter only.
      const next = feed.waitForChange(p, 10_000);
      await feed.publish(p, 'expired');
      expect(await next).toBe('expired');
    });
  });
}
