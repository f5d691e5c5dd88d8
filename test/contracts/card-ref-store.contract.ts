import { describe, expect, it } from 'vitest';
import type { CardRef } from '../../src/core/card.ts';
import { newId } from '../../src/core/ids.ts';
import type { CardRefStore } from '../../src/core/ports.ts';

// What every CardRefStore must do, run against the Redis adapter
// (test/integration/card-ref-store.contract.redis.test.ts) and the memory fake
// (test/unit/card-ref-store.memory.test.ts). A claim lapsing after its TTL needs time to pass:
// it is tested on the fake alone, where the clock can be moved.

export function cardRefStoreContract(name: string, make: () => Promise<{ cards: CardRefStore }>): void {
  describe(`CardRefStore contract: ${name}`, () => {
    const pid = () => newId('p', Date.now());

    it('lists the references of a proposal in platform:conversation order, none for an unknown one', async () => {
      const { cards } = await make();
      const p = pid();
      await cards.save(p, { platform: 'teams', conversation: '19:abc', message: 'act-1' });
      await cards.save(p, { platform: 'slack', conversation: 'C2', message: '1.2' });
      await cards.save(p, { platform: 'slack', conversation: 'C1', message: '1.1' });
      await cards.save(pid(), { platform: 'slack', conversation: 'C9', message: '9.9' });
      expect(await cards.list(p)).toEqual([
        { platform: 'slack', conversation: 'C1', message: '1.1' },
        { platform: 'slack', conversation: 'C2', message: '1.2' },
        { platform: 'teams', conversation: '19:abc', message: 'act-1' },
      ]);
      expect(await cards.list(pid())).toEqual([]);
    });

    it('replaces the reference when a card is posted to the same conversation again', async () => {
      const { cards } = await make();
      const p = pid();
      await cards.save(p, { platform: 'slack', conversation: 'C1', message: 'first' });
      await cards.save(p, { platform: 'slack', conversation: 'C1', message: 'retried' });
      await cards.save(p, { platform: 'console', conversation: 'C1', message: 'console-1' });
      expect(await cards.list(p)).toEqual([
        { platform: 'console', conversation: 'C1', message: 'console-1' },
        { platform: 'slack', conversation: 'C1', message: 'retried' },
      ]);
    });

    it('keeps only what a CardRef holds', async () => {
      const { cards } = await make();
      const p = pid();
      const withExtras: CardRef & { token: string } = { platform: 'slack', conversation: 'C1', message: '1.1', token: 'xoxb-secret' };
      await cards.save(p, withExtras);
      expect(await cards.list(p)).toEqual([{ platform: 'slack', conversation: 'C1', message: '1.1' }]);
    });

    it("lets one poster at a time claim a proposal's platform, until it releases", async () => {
      const { cards } = await make();
      const p = pid();
      const claims = await Promise.all([cards.claimPost(p, 'slack', 60), cards.claimPost(p, 'slack', 60), cards.claimPost(p, 'slack', 60)]);
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await cards.claimPost(p, 'teams', 60)).toBe(true);
      expect(await cards.claimPost(pid(), 'slack', 60)).toBe(true);
      await cards.releasePost(p, 'slack');
      expect(await cards.claimPost(p, 'slack', 60)).toBe(true);
      expect(await cards.claimPost(p, 'slack', 60)).toBe(false);
      expect(await cards.claimPost(p, 'teams', 60)).toBe(false);
    });
  });
}
