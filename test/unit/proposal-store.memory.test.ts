import { describe, expect, it } from 'vitest';
import { proposalStoreContract } from '../contracts/proposal-store.contract.ts';
import { proposalStoreFatigueContract } from '../contracts/proposal-store-fatigue.contract.ts';
import { counts, event, proposal } from '../contracts/fixtures.ts';
import { createMemoryAuditLog } from '../helpers/memory/audit-log.ts';
import { createMemoryAwayStore } from '../helpers/memory/away-store.ts';
import { createManualClock } from '../helpers/memory/clock.ts';
import { IDEMPOTENCY_TTL_SECONDS, createMemoryProposalStore } from '../helpers/memory/proposal-store.ts';
import { createMemoryTokenLedger } from '../helpers/memory/token-ledger.ts';

function memory() {
  const clock = createManualClock();
  const audit = createMemoryAuditLog({ clock });
  const ledger = createMemoryTokenLedger({ clock });
  const away = createMemoryAwayStore({ audit });
  return { clock, audit, ledger, away, store: createMemoryProposalStore({ audit, clock, revocations: ledger, absences: (person) => away.stored(person) }) };
}

proposalStoreContract('memory', async () => memory());
proposalStoreFatigueContract('memory', async () => memory());

// What only the fake can show: time passing on its clock, and a store that fails on demand.
describe('memory ProposalStore', () => {
  it("forgets an agent's idempotency key after 30 days on its clock", async () => {
    const { clock, store } = memory();
    const first = proposal({ idempotency_key: 'k' });
    await store.create(first, []);
    clock.advance(IDEMPOTENCY_TTL_SECONDS * 1000 - 1);
    expect(await store.create(proposal({ idempotency_key: 'k' }), [])).toEqual({ created: false, existing: first });
    clock.advance(1);
    expect(await store.create(proposal({ idempotency_key: 'k' }), [])).toEqual({ created: true });
  });

  it('forgets an implicit key after its own TTL, and keeps none when the TTL is 0', async () => {
    const { clock, store } = memory();
    const first = proposal();
    await store.create(first, [], { key: 'digest', ttlSeconds: 60 });
    clock.advance(59_999);
    expect(await store.create(proposal(), [], { key: 'digest', ttlSeconds: 60 })).toEqual({ created: false, existing: first });
    clock.advance(1);
    expect(await store.create(proposal(), [], { key: 'digest', ttlSeconds: 60 })).toEqual({ created: true });
    await store.create(proposal(), [], { key: 'no-ttl', ttlSeconds: 0 });
    expect(await store.create(proposal(), [], { key: 'no-ttl', ttlSeconds: 0 })).toEqual({ created: true });
  });

  it('fails the next write on demand, changing nothing, then works again', async () => {
    const { store, audit } = memory();
    const p = proposal();
    store.failNext(new Error('connection lost'));
    await expect(store.create(p, [event(p, 'proposal_received')])).rejects.toThrow('connection lost');
    expect(await store.get(p.id)).toBeNull();
    expect(await audit.head()).toBeNull();
    expect(await store.create(p, [event(p, 'proposal_received')])).toEqual({ created: true });
    store.failNext();
    await expect(store.commit({ ...p, status: 'cancelled', version: 2 }, 1, [])).rejects.toThrow(/unavailable/);
    expect(store.all()).toEqual([p]);
    expect(await store.countByStatus()).toEqual(counts({ pending: 1 }));
  });

  it('tells the audit log each proposal\'s current status as it commits', async () => {
    const { store, audit } = memory();
    const p = proposal();
    await store.create(p, [event(p, 'proposal_received')]);
    await store.commit({ ...p, status: 'approved', version: 2 }, 1, []);
    expect((await audit.search({ words: [], status: 'approved', limit: 10 })).events.map((e) => e.proposal_id)).toEqual([p.id]);
    expect((await audit.search({ words: [], status: 'pending', limit: 10 })).events).toEqual([]);
  });
});
