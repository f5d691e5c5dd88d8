import { describe, expect, it } from 'vitest';
import { cardRefStoreContract } from '../contracts/card-ref-store.contract.ts';
import { createMemoryCardRefStore } from '../helpers/memory/card-ref-store.ts';
import { createManualClock } from '../helpers/memory/clock.ts';

cardRefStoreContract('memory', async () => ({ cards: createMemoryCardRefStore({ clock: createManualClock() }) }));

describe('memory CardRefStore', () => {
  it('lets a posting claim lapse after its TTL on the clock, so a crashed poster blocks nobody for ever', async () => {
    const clock = createManualClock();
    const cards = createMemoryCardRefStore({ clock });
    expect(await cards.claimPost('p_1', 'slack', 30)).toBe(true);
    expect(cards.claims()).toEqual(['p_1 slack']);
    clock.advance(29_999);
    expect(await cards.claimPost('p_1', 'slack', 30)).toBe(false);
    clock.advance(1);
    expect(cards.claims()).toEqual([]);
    expect(await cards.claimPost('p_1', 'slack', 30)).toBe(true);
  });
});
