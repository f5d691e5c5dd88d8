import { describe, expect, it } from 'vitest';
import type { CreateLimits } from '../../src/core/policy/fatigue.ts';
import type { ProposalStore } from '../../src/core/ports.ts';
import { bump, event, proposal } from './fixtures.ts';

// Approval fatigue in the store (policy/fatigue.ts, create-proposal.lua): the agent's limits
// checked in the create step, and the aggregate groups' windows, on Redis
// (proposal-store.contract.redis.test.ts) and on the memory fake.

const NO_LIMITS: CreateLimits = { per_minute: 0, pending: 0, rule_per_minute: 0, rule_pending: 0, rule: 'payments' };

export function proposalStoreFatigueContract(name: string, make: () => Promise<{ store: ProposalStore }>): void {
  describe(`ProposalStore contract, approval fatigue: ${name}`, () => {
    it("refuses a pending proposal over the agent's per-minute limit, storing nothing; allowed ones, and other agents, go on", async () => {
      const { store } = await make();
      const limits = { ...NO_LIMITS, per_minute: 3 };
      const now = Date.now();
      for (let i = 0; i < 3; i++) expect(await store.create(proposal({ created_at: now + i }), [], undefined, undefined, { limits })).toEqual({ created: true });
      const over = proposal({ created_at: now + 10 });
      const refused = await store.create(over, [event(over, 'proposal_received')], undefined, undefined, { limits });
      expect(refused).toMatchObject({ created: false, refused: 'rate_limited', limit: 'proposals_per_minute', max: 3 });
      // Room again when the first of the three leaves the minute.
      expect((refused as { retry_after_ms: number }).retry_after_ms).toBe(60_000 - 10);
      expect(await store.get(over.id)).toBeNull();
      expect((await store.countByStatus()).pending).toBe(3);
      const allowed = proposal({ created_at: now + 11, status: 'approved', expires_at: null });
      expect(await store.create(allowed, [], undefined, undefined, { limits })).toEqual({ created: true });
      expect(await store.create(proposal({ agent: 'support-agent', created_at: now + 12 }), [], undefined, undefined, { limits })).toEqual({ created: true });
      // A minute later the window has room.
      expect(await store.create(proposal({ created_at: now + 60_001 }), [], undefined, undefined, { limits })).toEqual({ created: true });
    });

    it('counts pending proposals per agent (and per rule) until they leave pending, then has room again', async () => {
      const { store } = await make();
      const now = Date.now();
      const limits = { ...NO_LIMITS, pending: 2, rule_pending: 1, rule: 'payments' };
      const a = proposal({ created_at: now, expires_at: now + 5_000 });
      expect(await store.create(a, [], undefined, undefined, { limits })).toEqual({ created: true });
      // The rule's own limit: one pending for `payments`; another rule's proposal still fits the agent's two.
      expect(await store.create(proposal({ created_at: now + 1 }), [], undefined, undefined, { limits })).toMatchObject({ refused: 'rate_limited', limit: 'rule.pending', max: 1, retry_after_ms: 4_999 });
      const other = proposal({ created_at: now + 2, decision: { ...a.decision, rule: 'default' } });
      expect(await store.create(other, [], undefined, undefined, { limits: { ...limits, rule: 'default' } })).toEqual({ created: true });
      expect(await store.create(proposal({ created_at: now + 3, decision: { ...a.decision, rule: 'default' } }), [], undefined, undefined, { limits: { ...limits, rule_pending: 0, rule: 'default' } })).toMatchObject({
        refused: 'rate_limited',
        limit: 'pending',
        max: 2,
      });
      // `a` is denied: it no longer counts, for the agent or for its rule.
      expect(await store.commit(bump(a, { status: 'denied', resolution: { status: 'denied', by: 'bob', reason: null, at: now } }), 1, [])).toBe('ok');
      expect(await store.create(proposal({ created_at: now + 4 }), [], undefined, undefined, { limits })).toEqual({ created: true });
    });

    it('keeps an aggregate group: live proposals in the window, newest first; a create on an old version is refused as stale', async () => {
      const { store } = await make();
      const now = Date.now();
      const group = `g-${now}-${Math.random()}`;
      const window_ms = 60_000;
      const first = await store.readAggregate(group, now, window_ms);
      expect(first.entries).toEqual([]);
      const a = proposal({ created_at: now });
      expect(await store.create(a, [], undefined, undefined, { aggregate: { group, version: first.version, amount: 9_999, window_ms } })).toEqual({ created: true });
      const stale = proposal({ created_at: now + 1 });
      expect(await store.create(stale, [], undefined, undefined, { aggregate: { group, version: first.version, amount: 9_999, window_ms } })).toEqual({ created: false, refused: 'stale_aggregate' });
      expect(await store.get(stale.id)).toBeNull();

      const second = await store.readAggregate(group, now + 1, window_ms);
      expect(second.version).not.toBe(first.version);
      expect(second.entries).toEqual([{ id: a.id, amount: 9_999 }]);
      const b = proposal({ created_at: now + 2, status: 'approved', expires_at: null });
      expect(await store.create(b, [], undefined, undefined, { aggregate: { group, version: second.version, amount: 0.5, window_ms } })).toEqual({ created: true });
      // A denied proposal never joins (and does not change the version).
      const third = await store.readAggregate(group, now + 3, window_ms);
      const rejected = proposal({ created_at: now + 3, status: 'rejected', expires_at: null });
      expect(await store.create(rejected, [], undefined, undefined, { aggregate: { group, version: third.version, amount: 5, window_ms } })).toEqual({ created: true });
      const fourth = await store.readAggregate(group, now + 3, window_ms);
      expect(fourth).toEqual({ version: third.version, entries: [{ id: b.id, amount: 0.5 }, { id: a.id, amount: 9_999 }] });

      // `a` expires: its commit takes it out (the version stays); past the window `b` stops counting too.
      expect(await store.commit(bump(a, { status: 'expired', resolution: { status: 'expired', by: null, reason: null, at: now } }), 1, [], { counted: { group, member: `${a.id}|9999` } })).toBe('ok');
      expect(await store.readAggregate(group, now + 4, window_ms)).toEqual({ version: third.version, entries: [{ id: b.id, amount: 0.5 }] });
      expect((await store.readAggregate(group, now + 2 + window_ms + 1, window_ms)).entries).toEqual([]);
    });

    it("moves a revision's place in its aggregate groups in the revision's commit: the revised amount counts, both versions move; a group changed since the edit read it is a conflict", async () => {
      const { store } = await make();
      const now = Date.now();
      const group = `g-${now}-${Math.random()}`;
      const other = `${group}-other`;
      const window_ms = 60_000;
      const a = proposal({ created_at: now });
      expect(await store.create(a, [], undefined, undefined, { aggregate: { group, version: (await store.readAggregate(group, now, window_ms)).version, amount: 300, window_ms } })).toEqual({ created: true });
      const before = await store.readAggregate(group, now, window_ms);
      const revised = bump(a, { context: { ...a.context, value: { amount: 900, currency: 'EUR' } } });
      const move = (version: string, to = group) => ({ from: { group, member: `${a.id}|300` }, to: { group: to, member: `${a.id}|900`, score: now, version }, window_ms });
      // Decided on a version the group no longer has: nothing written.
      expect(await store.commit(revised, 1, [], { aggregate: move('stale-version') })).toBe('conflict');
      expect(await store.readAggregate(group, now, window_ms)).toEqual(before);
      expect(await store.commit(revised, 1, [], { aggregate: move(before.version) })).toBe('ok');
      const after = await store.readAggregate(group, now, window_ms);
      expect(after.entries).toEqual([{ id: a.id, amount: 900 }]);
      expect(after.version).not.toBe(before.version);
      // A create decided on the amounts before the revision is refused as stale.
      expect(await store.create(proposal({ created_at: now + 1 }), [], undefined, undefined, { aggregate: { group, version: before.version, amount: 1, window_ms } })).toEqual({ created: false, refused: 'stale_aggregate' });
      // An edit of the target moves it to another group.
      const moved = bump(revised, { action: { ...revised.action, target: 'elsewhere' } });
      expect(await store.commit(moved, 2, [], { aggregate: { ...move('', other), from: { group, member: `${a.id}|900` } } })).toBe('ok');
      expect((await store.readAggregate(group, now, window_ms)).entries).toEqual([]);
      expect((await store.readAggregate(other, now, window_ms)).entries).toEqual([{ id: a.id, amount: 900 }]);
    });

    it('keeps counting a proposal whose execution failed with an unknown outcome (the request left: the money may have moved), not one that failed outright', async () => {
      const { store } = await make();
      const now = Date.now();
      const group = `g-${now}-${Math.random()}`;
      const window_ms = 60_000;
      const made: string[] = [];
      for (const outcome of ['unknown', 'failed'] as const) {
        const p = proposal({ created_at: now + made.length, status: 'approved', expires_at: null });
        expect(await store.create(p, [], undefined, undefined, { aggregate: { group, version: (await store.readAggregate(group, now, window_ms)).version, amount: 100, window_ms } })).toEqual({ created: true });
        const execution = { token_id: 't_1', started_at: now, deadline: now + 1000, finished_at: now + 1, status_code: null, outcome, reason: 'timeout', duration_ms: 1, excerpt: null };
        expect(await store.commit(bump(p, { status: 'failed', execution } as never), 1, [], { counted: { group, member: `${p.id}|100` } })).toBe('ok');
        made.push(p.id);
      }
      expect((await store.readAggregate(group, now + 5, window_ms)).entries).toEqual([{ id: made[0], amount: 100 }]);
    });

    it("keeps a proposal in its group while its status counts, or when its commit does not say where it counts (a replica from before: a stricter sum until the window passes)", async () => {
      const { store } = await make();
      const now = Date.now();
      const group = `g-${now}-${Math.random()}`;
      const window_ms = 60_000;
      const make1 = async (at: number) => {
        const p = proposal({ created_at: at });
        expect(await store.create(p, [], undefined, undefined, { aggregate: { group, version: (await store.readAggregate(group, now, window_ms)).version, amount: 70, window_ms } })).toEqual({ created: true });
        return p;
      };
      const approved = await make1(now);
      const old = await make1(now + 1);
      const cancelled = await make1(now + 2);
      const other = await make1(now + 3);
      const place = (p: { id: string }) => ({ group, member: `${p.id}|70` });
      // Approved still counts: the place given, nothing taken out.
      expect(await store.commit(bump(approved, { status: 'approved', expires_at: null }), 1, [], { counted: place(approved) })).toBe('ok');
      // Denied by an older replica: no place given, so it stays.
      expect(await store.commit(bump(old, { status: 'denied', expires_at: null, resolution: { status: 'denied', by: 'bob', reason: null, at: now } }), 1, [])).toBe('ok');
      // A place naming another member, or another group, takes out nothing else.
      expect(await store.commit(bump(cancelled, { status: 'cancelled', expires_at: null }), 1, [], { counted: { group: `${group}-x`, member: `${cancelled.id}|70` } })).toBe('ok');
      expect(await store.commit(bump(other, { status: 'cancelled', expires_at: null }), 1, [], { counted: place(other) })).toBe('ok');
      expect((await store.readAggregate(group, now + 4, window_ms)).entries.map((e) => e.id)).toEqual([cancelled.id, old.id, approved.id]);
    });
  });
}
