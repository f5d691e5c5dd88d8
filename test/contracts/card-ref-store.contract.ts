import { describe, expect, it } from 'vitest';
import type { CardRef } from '../../src/core/card.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import type { AuditLog, CardRefStore, ClaimedPost, PostClaim, ProposalStore } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { bump, proposal } from './fixtures.ts';

// What every CardRefStore must do, run against the Redis adapter
// (test/integration/card-ref-store.contract.redis.test.ts) and the memory fake
// (test/unit/card-ref-store.memory.test.ts), each with the proposal store and audit log it reads
// and writes beside. A claim lapsing after its TTL needs time to pass: it is tested on the fake
// alone, where the clock can be moved.

export interface CardRefStoreParts {
  cards: CardRefStore;
  store: ProposalStore;
  audit: AuditLog;
}

/** The claim, which the test expects to be one. */
export function claimed(c: PostClaim | undefined): ClaimedPost {
  if (c?.kind !== 'claimed') throw new Error(`expected a claim, got ${c?.kind ?? 'nothing'}`);
  return c;
}

export function cardRefStoreContract(name: string, make: () => Promise<CardRefStoreParts>): void {
  describe(`CardRefStore contract: ${name}`, () => {
    const pid = () => newId('p', Date.now());
    const pending = async (store: ProposalStore): Promise<Proposal> => {
      const p = proposal();
      expect(await store.create(p, [])).toEqual({ created: true });
      return p;
    };

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

    it("lets one poster at a time claim a proposal's platform, hands it the proposal, until it releases", async () => {
      const { cards, store } = await make();
      const p = await pending(store);
      const claims = await Promise.all([cards.claimPost(p.id, 'slack', 60), cards.claimPost(p.id, 'slack', 60), cards.claimPost(p.id, 'slack', 60)]);
      expect(claims.map((c) => c.kind).sort()).toEqual(['busy', 'busy', 'claimed']);
      const mine = claimed(claims.find((c) => c.kind === 'claimed'));
      expect(mine).toMatchObject({ platform: 'slack', proposal: p });
      expect((await cards.claimPost(p.id, 'teams', 60)).kind).toBe('claimed');
      await cards.releasePost(mine);
      const again = claimed(await cards.claimPost(p.id, 'slack', 60));
      expect((await cards.claimPost(p.id, 'slack', 60)).kind).toBe('busy');
      // A release by a poster whose claim is over ends nobody else's.
      await cards.releasePost(mine);
      expect((await cards.claimPost(p.id, 'slack', 60)).kind).toBe('busy');
      await cards.releasePost(again);
      expect((await cards.claimPost(p.id, 'slack', 60)).kind).toBe('claimed');
    });

    it('says why a card is not to be posted: one exists on the platform, the proposal is decided or gone', async () => {
      const { cards, store } = await make();
      const p = await pending(store);
      await cards.save(p.id, { platform: 'slack', conversation: 'C1', message: '1.1' });
      expect((await cards.claimPost(p.id, 'slack', 60)).kind).toBe('posted');
      expect((await cards.claimPost(p.id, 'teams', 60)).kind).toBe('claimed');
      expect((await cards.claimPost(pid(), 'slack', 60)).kind).toBe('missing');
      const decided = await pending(store);
      expect(await store.commit(bump(decided, { status: 'denied', expires_at: null }), decided.version, [])).toBe('ok');
      expect((await cards.claimPost(decided.id, 'slack', 60)).kind).toBe('settled');
    });

    it("keeps one card per platform and escalation step: a step's card on the rule's platform is claimed and posted apart", async () => {
      const { cards, store } = await make();
      const p = await pending(store);
      // A reference saved without a step (as every one before escalation steps was) is the rule's card.
      await cards.save(p.id, { platform: 'slack', conversation: 'C0FINANCE', message: '1.1' });
      expect((await cards.claimPost(p.id, 'slack', 60)).kind).toBe('posted');
      const step = claimed(await cards.claimPost(p.id, 'slack', 60, 1));
      expect(step).toMatchObject({ platform: 'slack', step: 1 });
      expect((await cards.claimPost(p.id, 'slack', 60, 1)).kind).toBe('busy');
      // Its own claim: step 2's card on the same platform is not held up by step 1's.
      expect((await cards.claimPost(p.id, 'slack', 60, 2)).kind).toBe('claimed');
      await cards.finishPost(step, { platform: 'slack', conversation: 'C0ONCALL', message: '2.1', step: 1 }, []);
      expect((await cards.claimPost(p.id, 'slack', 60, 1)).kind).toBe('posted');
      // In field order (`slack#1:…` before `slack:…`): what matters is that both are there.
      expect(await cards.list(p.id)).toEqual([
        { platform: 'slack', conversation: 'C0ONCALL', message: '2.1', step: 1 },
        { platform: 'slack', conversation: 'C0FINANCE', message: '1.1' },
      ]);

    });

    it('finishes a post in one step: the reference saved, card_posted audited, the claim ended, the version now', async () => {

      const { cards, store, audit } = await make();
      const p = await pending(store);
      const claim = claimed(await cards.claimPost(p.id, 'slack', 60));
      const ref = { platform: 'slack', conversation: 'C1', message: '1.1' };
      const posted = { type: 'card_posted' as const, at: iso(Date.now()), proposal_id: p.id, agent: p.agent, actor: 'system', data: { ...ref } };
      expect(await cards.finishPost(claim, ref, [posted])).toBe(p.version);
      expect(await cards.list(p.id)).toEqual([ref]);
      expect((await audit.search({ words: [], proposalId: p.id, limit: 10 })).events.map((e) => [e.type, e.data])).toEqual([['card_posted', ref]]);
      // Ended, and the card exists: the next poster is told so instead of waiting on a claim.
      expect((await cards.claimPost(p.id, 'slack', 60)).kind).toBe('posted');

      // A proposal that moved on while its card was on the way answers its new version.
      const q = await pending(store);
      const onTheWay = claimed(await cards.claimPost(q.id, 'slack', 60));
      expect(await store.commit(bump(q, { status: 'denied', expires_at: null }), q.version, [])).toBe('ok');
      expect(await cards.finishPost(onTheWay, { ...ref, message: '2.2' }, [])).toBe(q.version + 1);
    });
  });
}
