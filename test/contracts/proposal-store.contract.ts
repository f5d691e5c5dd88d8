import { describe, expect, it } from 'vitest';
import { ChainVerifier } from '../../src/core/audit.ts';
import type { AuditLog, AwayStore, ProposalStore, TokenLedger } from '../../src/core/ports.ts';
import { bump, counts, entryCount, event, proposal, scanAll } from './fixtures.ts';

// What every ProposalStore must do, run against the Redis adapter
// (test/integration/proposal-store.contract.redis.test.ts) and the memory fake
// (test/unit/proposal-store.memory.test.ts). `make` gives a fresh, empty store and the audit
// log its create/commit write to, the token ledger that pulls and lifts agents' kill
// switches the store reads at intake, and the away store whose absences a delegate's vote is
// committed against. Cases about Redis itself (Lua, concurrency across
// connections, key names and TTLs) stay in test/integration/proposal-store.redis.test.ts.

export type ProposalStoreSubject = { store: ProposalStore; audit: AuditLog; ledger: TokenLedger; away: AwayStore };

export function proposalStoreContract(name: string, make: () => Promise<ProposalStoreSubject>): void {
  describe(`ProposalStore contract: ${name}`, () => {
    it('returns an equal proposal after create, and null for an unknown id', async () => {
      const { store } = await make();
      const p = proposal({ idempotency_key: 'refund-4711' });
      expect(await store.create(p, [event(p, 'proposal_received')])).toEqual({ created: true });
      expect(await store.get(p.id)).toEqual(p);
      expect(await store.get('p_doesnotexist0000000000000000')).toBeNull();
    });

    it('returns the first proposal for the same agent and idempotency key, and stores nothing', async () => {
      const { store, audit } = await make();
      const first = proposal({ idempotency_key: 'same-key' });
      const again = proposal({ idempotency_key: 'same-key', intent: 'a retry' });
      const before = await entryCount(audit);
      expect(await store.create(first, [event(first, 'proposal_received')])).toEqual({ created: true });
      expect(await store.create(again, [event(again, 'proposal_received')])).toEqual({ created: false, existing: first });
      expect(await store.get(again.id)).toBeNull();
      expect(await entryCount(audit)).toBe(before + 1);

      const otherAgent = proposal({ idempotency_key: 'same-key', agent: 'support-agent' });
      expect(await store.create(otherAgent, [])).toEqual({ created: true });
      expect(await store.get(otherAgent.id)).toEqual(otherAgent);
    });

    it('lets only one of concurrent creates with one idempotency key win', async () => {
      const { store } = await make();
      const racers = Array.from({ length: 5 }, () => proposal({ idempotency_key: 'race' }));
      const results = await Promise.all(racers.map((p) => store.create(p, [])));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const winner = racers[results.findIndex((r) => r.created)]!;
      for (const r of results.filter((x) => !x.created)) expect(r).toEqual({ created: false, existing: winner });
    });

    it("dedupes by the implicit key per agent, apart from the agent's own keys", async () => {
      const { store, audit } = await make();
      const implicit = { key: 'request-digest-1', ttlSeconds: 600 };
      const first = proposal();
      expect(await store.create(first, [event(first, 'proposal_received')], implicit)).toEqual({ created: true });
      const replay = proposal({ intent: 'the same request again' });
      expect(await store.create(replay, [event(replay, 'proposal_received')], implicit)).toEqual({ created: false, existing: first });
      expect(await store.get(replay.id)).toBeNull();
      expect(await entryCount(audit)).toBe(1);
      // An agent-chosen key with the same text lives in another namespace; so does another agent.
      const ownKey = proposal({ idempotency_key: 'request-digest-1' });
      expect(await store.create(ownKey, [], implicit)).toEqual({ created: true });
      const other = proposal({ agent: 'support-agent' });
      expect(await store.create(other, [], implicit)).toEqual({ created: true });
      // A proposal with its own key is deduped by that key, not the implicit one.
      const ownAgain = proposal({ idempotency_key: 'request-digest-1' });
      expect(await store.create(ownAgain, [], { key: 'another-digest', ttlSeconds: 600 })).toEqual({ created: false, existing: ownKey });
    });

    it('forgets an implicit key only while it names the given proposal; the next create is new', async () => {
      const { store } = await make();
      const implicit = { key: 'mcp:call-digest', ttlSeconds: 600 };
      const first = proposal();
      expect(await store.create(first, [], implicit)).toEqual({ created: true });
      // Another proposal's id, or another agent: nothing is forgotten.
      await store.forgetImplicitKey(first.agent, implicit.key, 'p_someoneelse0000000000000000');
      await store.forgetImplicitKey('support-agent', implicit.key, first.id);
      expect(await store.create(proposal(), [], implicit)).toEqual({ created: false, existing: first });
      await store.forgetImplicitKey(first.agent, implicit.key, first.id);
      const second = proposal();
      expect(await store.create(second, [], implicit)).toEqual({ created: true });
      // The first one's id no longer names the key: forgetting it again keeps the second.
      await store.forgetImplicitKey(first.agent, implicit.key, first.id);
      expect(await store.create(proposal(), [], implicit)).toEqual({ created: false, existing: second });
    });

    it("refuses a revoked agent's proposal, storing nothing, until it is restored; other agents go on", async () => {
      const { store, audit, ledger } = await make();
      const before = proposal({ idempotency_key: 'made-before' });
      await store.create(before, [event(before, 'proposal_received')]);
      const revokedAt = Date.now();
      await ledger.markAgentRevoked('billing-agent', revokedAt);
      expect(await store.revokedAgents(['billing-agent', 'support-agent'])).toEqual(new Map([['billing-agent', revokedAt]]));

      const entries = await entryCount(audit);
      const refused = proposal({ created_at: revokedAt + 1, idempotency_key: 'while-revoked' });
      expect(await store.create(refused, [event(refused, 'proposal_received')])).toEqual({ created: false, refused: 'agent_revoked', revoked_at: revokedAt });
      // Refused before the idempotency key is looked at: the agent's earlier proposal is not handed back either.
      const retry = proposal({ created_at: revokedAt + 1, idempotency_key: 'made-before' });
      expect(await store.create(retry, [])).toEqual({ created: false, refused: 'agent_revoked', revoked_at: revokedAt });
      expect(await store.get(refused.id)).toBeNull();
      expect(await entryCount(audit)).toBe(entries);
      expect(await store.countByStatus()).toEqual(counts({ pending: 1 }));
      const other = proposal({ agent: 'support-agent' });
      expect(await store.create(other, [])).toEqual({ created: true });

      await ledger.markAgentRestored('billing-agent', revokedAt + 10);
      expect(await store.revokedAgents(['billing-agent'])).toEqual(new Map());
      // Made at or before the revocation (a slow request, a replica's clock behind): it could never get a token.
      const stale = proposal({ created_at: revokedAt });
      expect(await store.create(stale, [])).toEqual({ created: false, refused: 'agent_revoked', revoked_at: revokedAt });
      const fresh = proposal({ created_at: revokedAt + 20, idempotency_key: 'while-revoked' });
      expect(await store.create(fresh, [event(fresh, 'proposal_received')])).toEqual({ created: true });
      expect(await store.get(fresh.id)).toEqual(fresh);
    });

    it('refuses a second proposal with an id already stored, and changes nothing', async () => {
      const { store, audit } = await make();
      const p = proposal();
      await store.create(p, [event(p, 'proposal_received')]);
      const twin = { ...p, intent: 'another proposal that drew the same id' };
      await expect(store.create(twin, [event(twin, 'proposal_received')])).rejects.toThrow(/already exists/);
      expect(await store.get(p.id)).toEqual(p);
      expect(await entryCount(audit)).toBe(1);
      expect(await store.countByStatus()).toEqual(counts({ pending: 1 }));
    });

    it('refuses a version that does not follow the one expected', async () => {
      const { store } = await make();
      const p = proposal();
      await expect(store.create({ ...p, version: 2 }, [])).rejects.toThrow(/version 1/);
      await store.create(p, []);
      await expect(store.commit({ ...p, status: 'cancelled', version: 3 }, 1, [])).rejects.toThrow(/version 3 against expected version 1/);
      expect(await store.get(p.id)).toEqual(p);
    });

    it('refuses a commit against a stale version and changes nothing', async () => {
      const { store, audit } = await make();
      const p = proposal();
      await store.create(p, [event(p, 'proposal_received')]);
      const v2 = bump(p, { approvals: [{ person: 'alice', platform: 'slack', vote: 'approve', reason: null, at: Date.now() }] });
      expect(await store.commit(v2, 1, [event(p, 'approval_recorded')])).toBe('ok');

      const auditBefore = await entryCount(audit);
      const countsBefore = await store.countByStatus();
      const stale = bump(p, { status: 'denied' });
      expect(await store.commit(stale, 1, [event(p, 'decided', { status: 'denied' })])).toBe('conflict');
      expect(await store.get(p.id)).toEqual(v2);
      expect(await entryCount(audit)).toBe(auditBefore);
      expect(await store.countByStatus()).toEqual(countsBefore);
      expect((await store.listPending(100)).map((x) => x.id)).toContain(p.id);

      const missing = proposal();
      expect(await store.commit(bump(missing, {}), 1, [])).toBe('conflict');
      expect(await store.get(missing.id)).toBeNull();
    });

    it("commits a delegate's vote only while the absence it was cast under names that delegate at its time", async () => {
      const { store, audit, away } = await make();
      const p = proposal();
      await store.create(p, []);
      const now = Date.now();
      const absence = { delegate: 'erin', until: now + 60_000, set_at: now };
      expect(await away.set('alice', absence, now, [])).toEqual({ kind: 'set' });
      const vote = (from: typeof p) => bump(from, { approvals: [...from.approvals, { person: 'alice', delegate: 'erin', platform: 'slack', vote: 'approve', reason: null, at: now }] });
      const v2 = vote(p);
      expect(await store.commit(v2, 1, [event(p, 'approval_recorded')], { delegation: { person: 'alice', delegate: 'erin', at: now } })).toBe('ok');
      const before = await entryCount(audit);
      // Another delegate, the absence over at the vote's time, another absent person: nothing changes.
      expect(await store.commit(vote(v2), 2, [event(p, 'approval_recorded')], { delegation: { person: 'alice', delegate: 'bob', at: now } })).toBe('conflict');
      expect(await store.commit(vote(v2), 2, [event(p, 'approval_recorded')], { delegation: { person: 'alice', delegate: 'erin', at: absence.until } })).toBe('conflict');
      expect(await store.commit(vote(v2), 2, [event(p, 'approval_recorded')], { delegation: { person: 'carol', delegate: 'erin', at: now } })).toBe('conflict');
      // Alice back: erin's vote for her no longer commits; a vote of nobody's delegate does.
      expect(await away.clear('alice', absence, [])).toBe(true);
      expect(await store.commit(vote(v2), 2, [event(p, 'approval_recorded')], { delegation: { person: 'alice', delegate: 'erin', at: now } })).toBe('conflict');
      expect(await store.get(p.id)).toEqual(v2);
      expect(await entryCount(audit)).toBe(before);
      expect(await store.commit(bump(v2, {}), 2, [])).toBe('ok');
    });

    it('lets exactly one of many concurrent commits from the same version win', async () => {
      const { store, audit } = await make();
      const p = proposal();
      await store.create(p, []);
      const attempts = Array.from({ length: 20 }, (_, i) => {
        const next = bump(p, { status: 'approved', resolution: { status: 'approved', by: `person-${i}`, reason: null, at: Date.now() } });
        return store.commit(next, 1, [event(p, 'decided', { by: `person-${i}` })]).then((r) => ({ r, next }));
      });
      const results = await Promise.all(attempts);
      const winners = results.filter((x) => x.r === 'ok');
      expect(winners).toHaveLength(1);
      expect(await store.get(p.id)).toEqual(winners[0]!.next);
      expect((await scanAll(audit)).map((e) => e.data)).toEqual([{ by: winners[0]!.next.resolution!.by }]);
    });

    it('keeps the pending set and the status counts in step with the status', async () => {
      const { store: own } = await make();
      const now = Date.now();
      const late = proposal({ expires_at: now + 60_000 });
      const soon = proposal({ expires_at: now + 1_000 });
      const allowed = proposal({ status: 'approved', expires_at: null });
      for (const p of [late, soon, allowed]) expect(await own.create(p, [])).toEqual({ created: true });

      expect(await own.countByStatus()).toEqual(counts({ pending: 2, approved: 1 }));
      expect((await own.listPending(10)).map((p) => p.id)).toEqual([soon.id, late.id]);
      expect(await own.listPending(1)).toEqual([soon]);
      expect(await own.pendingDueBy(now + 1_000, 10)).toEqual([soon.id]);
      expect(await own.pendingDueBy(now + 60_000, 1)).toEqual([soon.id]);
      expect(await own.pendingDueBy(now, 10)).toEqual([]);

      // Still pending after a vote: stays listed, counts unchanged.
      const voted = bump(soon, { approvals: [{ person: 'bob', platform: 'teams', vote: 'approve', reason: null, at: now }] });
      expect(await own.commit(voted, 1, [])).toBe('ok');
      expect(await own.countByStatus()).toEqual(counts({ pending: 2, approved: 1 }));

      const expired = bump(voted, { status: 'expired', resolution: { status: 'expired', by: null, reason: 'late', at: now } });
      expect(await own.commit(expired, 2, [])).toBe('ok');
      expect(await own.countByStatus()).toEqual(counts({ pending: 1, approved: 1, expired: 1 }));
      expect((await own.listPending(10)).map((p) => p.id)).toEqual([late.id]);

      const executing = bump(allowed, { status: 'executing' });
      expect(await own.commit(executing, 1, [])).toBe('ok');
      expect(await own.commit(bump(executing, { status: 'succeeded' }), 2, [])).toBe('ok');
      expect(await own.countByStatus()).toEqual(counts({ pending: 1, expired: 1, succeeded: 1 }));
      expect(await own.pendingDueBy(Number.MAX_SAFE_INTEGER, 10)).toEqual([late.id]);
    });

    it('keeps the escalation set with the proposal: its next step or reminder is listed when due, a decided one never', async () => {
      const { store } = await make();
      const now = Date.now();
      const decision = { ...proposal().decision, escalate: [{ after_ms: 1_000, route: 'oncall', approvers: 'oncall' }], remind_ms: 700 };
      const a = proposal({ created_at: now, expires_at: now + 10_000, decision });
      const plain = proposal({ created_at: now, expires_at: now + 10_000 });
      for (const p of [a, plain]) expect(await store.create(p, [])).toEqual({ created: true });
      const due = async (at: number) => (await store.nudgesDueBy(at, 1000)).filter((id) => id === a.id || id === plain.id);
      expect(await due(now + 699)).toEqual([]);
      expect(await due(now + 700)).toEqual([a.id]);
      // The reminder taken: the step at 1 s is next.
      const reminded = bump(a, { reminders: { count: 1, at: now + 700 } });
      expect(await store.commit(reminded, 1, [])).toBe('ok');
      expect(await due(now + 999)).toEqual([]);
      expect(await due(now + 1_000)).toEqual([a.id]);
      // A place set from a version read before that commit changes nothing.
      await store.rescheduleNudge(a.id, 1, null);
      expect(await due(now + 1_000)).toEqual([a.id]);
      expect(await store.commit(bump(reminded, { status: 'denied', expires_at: null }), 2, [])).toBe('ok');
      expect(await due(Number.MAX_SAFE_INTEGER)).toEqual([]);
    });

    it('lists pending proposals by deadline, a moved deadline included, and nothing for a limit of 0', async () => {

      const { store } = await make();
      const now = Date.now();
      const a = proposal({ expires_at: now + 5_000 });
      const b = proposal({ expires_at: now + 9_000 });
      await store.create(a, []);
      await store.create(b, []);
      expect(await store.commit(bump(a, { expires_at: now + 20_000 }), 1, [])).toBe('ok');
      expect((await store.listPending(10)).map((p) => p.id)).toEqual([b.id, a.id]);
      expect(await store.pendingDueBy(now + 10_000, 10)).toEqual([b.id]);
      expect(await store.listPending(0)).toEqual([]);
      expect(await store.pendingDueBy(Number.MAX_SAFE_INTEGER, 0)).toEqual([]);
    });

    it('refuses a commit the state machine forbids: a decided proposal never changes its decision', async () => {
      const { store: own } = await make();
      const p = proposal({ status: 'denied', expires_at: null });
      await own.create(p, []);
      await expect(own.commit(bump(p, { status: 'approved' }), 1, [])).rejects.toThrow(/may not go from denied to approved/);
      await expect(own.commit(bump(p, { status: 'pending' }), 1, [])).rejects.toThrow(/may not go from denied to pending/);
      expect((await own.get(p.id))?.status).toBe('denied');
      expect((await own.countByStatus()).denied).toBe(1);
    });

    it('records the events of create and commit in one verifiable chain', async () => {
      const { store: own, audit } = await make();
      const p = proposal();
      await own.create(p, [event(p, 'proposal_received', { url: 'https://x/y', text: 'ß' }), event(p, 'policy_decided')]);
      await own.commit(bump(p, { status: 'cancelled' }), 1, [event(p, 'cancelled', { reason: null })]);
      const verifier = new ChainVerifier();
      const seen: string[] = [];
      for await (const e of audit.scan()) {
        expect(verifier.check(e)).toBeNull();
        seen.push(e.type);
      }
      expect(seen).toEqual(['proposal_received', 'policy_decided', 'cancelled']);
      expect((await audit.head())?.seq).toBe(3);
    });

    it('changes neither the proposal nor the log when an event cannot be recorded', async () => {
      const { store, audit } = await make();
      const p = proposal();
      const bad = { ...event(p, 'proposal_received'), agent: '' };
      await expect(store.create(p, [event(p, 'proposal_received'), bad])).rejects.toThrow(/null, not empty/);
      expect(await store.get(p.id)).toBeNull();
      await store.create(p, [event(p, 'proposal_received')]);
      await expect(store.commit(bump(p, { status: 'cancelled' }), 1, [bad])).rejects.toThrow(/null, not empty/);
      expect(await store.get(p.id)).toEqual(p);
      expect(await entryCount(audit)).toBe(1);
      expect(await store.countByStatus()).toEqual(counts({ pending: 1 }));
    });

    it("keeps what was stored, whatever the caller does with its objects afterwards", async () => {
      const { store } = await make();
      const p = proposal();
      const original = structuredClone(p);
      await store.create(p, []);
      p.approvals.push({ person: 'mallory', platform: 'slack', vote: 'approve', reason: null, at: 0 });
      p.status = 'approved';
      const read = (await store.get(p.id))!;
      expect(read).toEqual(original);
      read.action.parameters['amount'] = 1;
      expect(await store.get(p.id)).toEqual(original);
    });
  });
}
