import { describe, expect, it } from 'vitest';
import { cardRefStoreContract, claimed } from '../contracts/card-ref-store.contract.ts';
import { proposal } from '../contracts/fixtures.ts';
import { createMemoryAuditLog } from '../helpers/memory/audit-log.ts';
import { createMemoryCardRefStore } from '../helpers/memory/card-ref-store.ts';
import { createManualClock, type ManualClock } from '../helpers/memory/clock.ts';
import { createMemoryProposalStore } from '../helpers/memory/proposal-store.ts';

function parts(clock: ManualClock = createManualClock()) {
  const audit = createMemoryAuditLog({ clock });
  const store = createMemoryProposalStore({ audit, clock });
  return { cards: createMemoryCardRefStore({ clock, store, audit }), store, audit };
}

cardRefStoreContract('memory', async () => parts());

describe('memory CardRefStore', () => {
  it('lets a posting claim lapse after its TTL on the clock, so a crashed poster blocks nobody for ever', async () => {
    const clock = createManualClock();
    const { cards, store } = parts(clock);
    const p = proposal();
    await store.create(p, []);
    const first = claimed(await cards.claimPost(p.id, 'slack', 30));
    expect(cards.claims()).toEqual([`${p.id} slack`]);
    clock.advance(29_999);
    expect((await cards.claimPost(p.id, 'slack', 30)).kind).toBe('busy');
    clock.advance(1);
    expect(cards.claims()).toEqual([]);
    const second = claimed(await cards.claimPost(p.id, 'slack', 30));
    // The first poster, back late, saves its card but leaves the claim that is now the second's.
    await cards.finishPost(first, { platform: 'slack', conversation: 'C1', message: 'late' }, []);
    expect(cards.claims()).toEqual([`${p.id} slack`]);
    await cards.releasePost(second);
    expect(cards.claims()).toEqual([]);
  });
});
