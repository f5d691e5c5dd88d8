import { describe, expect, it } from 'vitest';
import { applyVote, canDecide, cancel, canTransition, expire, quorumHolds, signInFreshEnough, type Authority } from '../../src/core/lifecycle.ts';
import { refusalSentence } from '../../src/core/card.ts';
import { threadReply, timelineEntry } from '../../src/core/event-text.ts';
import type { Proposal } from '../../src/core/proposal.ts';

const T0 = Date.parse('2026-11-24T10:00:00Z');

function pending(overrides: Partial<Proposal> = {}, decision: Partial<Proposal['decision']> = {}): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'refund',
    action: { tool: 'payments', operation: 'refund', target: 'cus_1', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision: { effect: 'approve', risk: 'medium', rule: 'payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 2, ttl_ms: 60_000, ...decision },
    status: 'pending',
    created_at: T0,
    expires_at: T0 + 60_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...overrides,
  };
}

const authority: Authority = {
  personExists: (p) => ['alice', 'bob', 'dana', 'erin'].includes(p),
  isApprover: (p, g) => g === 'finance' && ['alice', 'bob', 'dana'].includes(p),
  isSponsor: (p, a) => a === 'billing-agent' && p === 'dana',
  agentExists: (a) => ['billing-agent', 'ops-agent'].includes(a),
};

const vote = (person: string, v: 'approve' | 'deny' = 'approve', reason: string | null = null) => ({ person, platform: 'slack' as const, vote: v, reason, authenticatedAt: null });
/** No agent is revoked. */
const NONE: ReadonlyMap<string, number> = new Map();

describe('applyVote', () => {
  it('counts an approval below the quorum and bumps the version', () => {
    const step = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE);
    expect(step.outcome).toEqual({ kind: 'counted', approvals: 1, required: 2, approvers: ['alice'] });
    expect(step.next?.status).toBe('pending');
    expect(step.next?.version).toBe(2);
    expect(step.events.map((e) => e.type)).toEqual(['approval_recorded']);
  });

  it('approves when distinct people meet the quorum', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const step = applyVote(once, vote('bob'), authority, T0 + 2, NONE);
    expect(step.outcome).toMatchObject({ kind: 'decided', status: 'approved', approvals: 2 });
    expect(step.next?.resolution).toMatchObject({ status: 'approved', by: 'bob' });
    expect(step.events.map((e) => e.type)).toEqual(['approval_recorded', 'decided']);
  });

  it('counts the same person once, whatever the platform', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const step = applyVote(once, { ...vote('alice'), platform: 'teams' }, authority, T0 + 2, NONE);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'already_voted' });
    expect(step.next).toBeNull();
  });

  it('ends the proposal on one deny', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const step = applyVote(once, vote('bob', 'deny', 'wrong customer'), authority, T0 + 2, NONE);
    expect(step.outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(step.next?.resolution).toMatchObject({ status: 'denied', by: 'bob', reason: 'wrong customer' });
  });

  it.each([
    ['erin', 'not_an_approver'],
    ['dana', 'sponsor'],
    ['mallory', 'unknown_person'],
  ])('refuses %s (%s) and records the refusal', (person, why) => {
    const step = applyVote(pending(), vote(person), authority, T0 + 1, NONE);
    expect(step.outcome).toMatchObject({ kind: 'refused', why });
    expect(step.next).toBeNull();
    expect(step.events).toHaveLength(1);
    expect(step.events[0]).toMatchObject({ type: 'approval_refused', data: { why } });
  });

  it('requires a reason to deny high and critical risk', () => {
    const p = pending({}, { risk: 'critical' });
    expect(applyVote(p, vote('alice', 'deny', '  '), authority, T0 + 1, NONE).outcome).toMatchObject({ kind: 'refused', why: 'reason_required' });
    expect(applyVote(p, vote('alice', 'deny', 'no'), authority, T0 + 1, NONE).outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(applyVote(pending(), vote('alice', 'deny'), authority, T0 + 1, NONE).outcome).toMatchObject({ kind: 'decided', status: 'denied' });
  });

  it('expires instead of counting a vote that arrives at or after the deadline', () => {
    const step = applyVote(pending(), vote('alice'), authority, T0 + 60_000, NONE);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'expired', status: 'expired' });
    expect(step.next?.status).toBe('expired');
    expect(step.events.map((e) => e.type)).toEqual(['expired', 'approval_refused']);
  });

  it('never changes a decided proposal', () => {
    const decided = pending({ status: 'denied' });
    const step = applyVote(decided, vote('alice'), authority, T0 + 1, NONE);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'not_pending', status: 'denied' });
    expect(step.next).toBeNull();
  });
});

describe('approvals under the policy in force', () => {
  // The policy after a change and a restart: alice is gone, bob left finance, carol sponsors the agent now.
  const changed: Authority = {
    personExists: (p) => ['bob', 'carol', 'dana', 'erin', 'frank'].includes(p),
    isApprover: (p, g) => g === 'finance' && ['carol', 'dana', 'erin', 'frank'].includes(p),
    isSponsor: (p, a) => a === 'billing-agent' && ['carol', 'dana'].includes(p),
    agentExists: () => true,
  };
  const approvedBy = (...people: string[]) =>
    pending({
      status: 'approved',
      approvals: people.map((person, i) => ({ person, platform: 'console', vote: 'approve' as const, reason: null, at: T0 + i })),
      resolution: { status: 'approved', by: people.at(-1)!, reason: null, at: T0 + 2 },
    });

  it('quorumHolds names each approval that no longer qualifies, and why', () => {
    expect(quorumHolds(approvedBy('erin', 'frank'), changed)).toEqual({ holds: true });
    expect(quorumHolds(approvedBy('alice', 'frank'), changed)).toEqual({ holds: false, approvals: 1, required: 2, void: [{ person: 'alice', platform: 'console', why: 'unknown_person' }] });
    expect(quorumHolds(approvedBy('bob', 'carol'), changed)).toMatchObject({
      holds: false,
      approvals: 0,
      void: [
        { person: 'bob', why: 'not_an_approver' },
        { person: 'carol', why: 'sponsor' },
      ],
    });
    // Under the policy they were given in, the same approvals hold.
    expect(quorumHolds(approvedBy('alice', 'bob'), authority)).toEqual({ holds: true });
  });

  it('quorumHolds leaves a proposal the policy itself allowed alone: nobody approved it', () => {
    const allowed = pending({ status: 'approved', resolution: { status: 'approved', by: null, reason: null, at: T0 } }, { effect: 'allow', approvers: null, route: null, approvals_required: 0 });
    expect(quorumHolds(allowed, { personExists: () => false, isApprover: () => false, isSponsor: () => true, agentExists: () => true })).toEqual({ holds: true });
  });

  it('a vote drops earlier approvals that no longer qualify, in the same step, and audits each', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const step = applyVote(once, vote('erin'), changed, T0 + 2, NONE);
    expect(step.outcome).toEqual({ kind: 'counted', approvals: 1, required: 2, approvers: ['erin'] });
    expect(step.next).toMatchObject({ status: 'pending', approvals: [{ person: 'erin' }] });
    expect(step.events.map((e) => e.type)).toEqual(['approval_void', 'approval_recorded']);
    expect(step.events[0]).toMatchObject({ actor: 'policy', data: { person: 'alice', platform: 'slack', why: 'unknown_person', approvals: 0, required: 2 } });
    expect(step.events[1]).toMatchObject({ data: { person: 'erin', approvals: 1, required: 2 } });
    // The next qualifying approval completes the quorum.
    const done = applyVote(step.next!, vote('frank'), changed, T0 + 3, NONE);
    expect(done.outcome).toMatchObject({ kind: 'decided', status: 'approved', approvers: ['erin', 'frank'] });
    expect(done.events.map((e) => e.type)).toEqual(['approval_recorded', 'decided']);
  });

  it('a sponsor since, or someone out of the group, no longer completes a quorum', () => {
    const byCarol = pending({ approvals: [{ person: 'carol', platform: 'teams', vote: 'approve', reason: null, at: T0 }] });
    const step = applyVote(byCarol, vote('erin'), changed, T0 + 1, NONE);
    expect(step.outcome).toMatchObject({ kind: 'counted', approvals: 1 });
    expect(step.events[0]).toMatchObject({ type: 'approval_void', data: { person: 'carol', why: 'sponsor' } });
    const byBob = pending({ approvals: [{ person: 'bob', platform: 'slack', vote: 'approve', reason: null, at: T0 }] });
    expect(applyVote(byBob, vote('erin'), changed, T0 + 1, NONE).events[0]).toMatchObject({ type: 'approval_void', data: { person: 'bob', why: 'not_an_approver' } });
  });

  it('changes nothing while every earlier approval still qualifies, and a refused click voids nothing', () => {
    const once = applyVote(pending(), vote('erin'), changed, T0 + 1, NONE).next!;
    expect(applyVote(once, vote('frank'), changed, T0 + 2, NONE).events.map((e) => e.type)).toEqual(['approval_recorded', 'decided']);
    const byAlice = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const refused = applyVote(byAlice, vote('bob'), changed, T0 + 2, NONE);
    expect(refused.outcome).toMatchObject({ kind: 'refused', why: 'not_an_approver' });
    expect(refused.next).toBeNull();
    expect(refused.events.map((e) => e.type)).toEqual(['approval_refused']);
  });

  it('the console note (canDecide) says the same as the vote about someone who no longer qualifies', () => {
    const byCarol = applyVote(pending(), vote('carol'), { ...changed, isSponsor: () => false }, T0 + 1, NONE).next!;
    expect(canDecide(byCarol, 'carol', changed, T0 + 2, NONE)).toMatchObject({ ok: false, why: 'sponsor' });
    expect(applyVote(byCarol, vote('carol'), changed, T0 + 2, NONE).outcome).toMatchObject({ kind: 'refused', why: 'sponsor' });
    expect(canDecide(byCarol, 'erin', changed, T0 + 2, NONE)).toEqual({ ok: true });
  });

  it('says in the thread and the timeline whose approval no longer counts, and why', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const [voided] = applyVote(once, vote('erin'), changed, T0 + 2, NONE).events;
    expect(threadReply(once, voided!)).toMatchObject({ kind: 'notice', text: "alice's approval no longer counts: alice is no longer a person in the policy (0 of 2 approvals count)" });
    expect(timelineEntry(once, voided!)).toMatchObject({ type: 'approval_void', tone: 'warn', text: expect.stringContaining('no longer a person in the policy') });
  });
});

describe('step-up and the kill switch at the click', () => {
  const stepUp = () => pending({ expires_at: T0 + 60 * 60_000 }, { step_up: true, approvals_required: 1 });
  const at = (authenticatedAt: number | null, v: 'approve' | 'deny' = 'approve', reason: string | null = null) => ({ ...vote('alice', v, reason), platform: 'console', authenticatedAt });

  it('a step_up proposal counts an approval only with a sign-in of the last 5 minutes, and says which sign-in it judged', () => {
    const now = T0 + 10 * 60_000;
    for (const signedIn of [null, now - 5 * 60_000 - 1]) {
      const step = applyVote(stepUp(), at(signedIn), authority, now, NONE);
      expect(step.outcome).toMatchObject({ kind: 'refused', why: 'step_up_required' });
      expect(step.next).toBeNull();
      expect(step.events).toEqual([expect.objectContaining({ type: 'approval_refused', data: { person: 'alice', platform: 'console', vote: 'approve', why: 'step_up_required', signed_in_at: signedIn === null ? null : new Date(signedIn).toISOString() } })]);
      expect(refusalSentence({ why: 'step_up_required', message: (step.outcome as { message: string }).message })).toBe(
        'Not counted: approvals of this proposal count only in the console, from someone who signed in there within the last 5 minutes.',
      );
      expect(timelineEntry(stepUp(), step.events[0]!).text).toBe('alice tried to approve via console and was refused: had not signed in to the console within the last 5 minutes (this rule needs a fresh sign-in to approve)');
    }
    const ok = applyVote(stepUp(), at(now - 5 * 60_000), authority, now, NONE);
    expect(ok.outcome).toMatchObject({ kind: 'decided', status: 'approved' });
    expect(ok.events[0]).toMatchObject({ type: 'approval_recorded', data: { signed_in_at: new Date(now - 5 * 60_000).toISOString() } });
  });

  it('a deny needs no fresh sign-in, and other rules never look at sign-ins', () => {
    expect(applyVote(stepUp(), at(null, 'deny', 'not now'), authority, T0 + 1, NONE).outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    const plain = applyVote(pending({}, { approvals_required: 1 }), at(null), authority, T0 + 1, NONE);
    expect(plain.outcome).toMatchObject({ kind: 'decided', status: 'approved' });
    expect(plain.events[0]!.data).not.toHaveProperty('signed_in_at');
    expect(signInFreshEnough(pending(), null, T0)).toBe(true);
  });

  it("refuses any vote on a revoked agent's proposal, after the authorisation checks, and says so", () => {
    const revoked = new Map([['billing-agent', T0 + 10]]);
    const step = applyVote(pending(), vote('alice'), authority, T0 + 20, revoked);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'agent_revoked', message: 'agent "billing-agent" is revoked, so none of its proposals will run' });
    expect(step.events).toEqual([expect.objectContaining({ type: 'approval_refused', data: expect.objectContaining({ why: 'agent_revoked' }) })]);
    expect(applyVote(pending(), vote('bob', 'deny', 'no'), authority, T0 + 20, revoked).outcome).toMatchObject({ why: 'agent_revoked' });
    expect(canDecide(pending(), 'alice', authority, T0 + 20, revoked)).toMatchObject({ ok: false, why: 'agent_revoked' });
    // A stranger or a sponsor hears about themselves first; another agent is not affected.
    expect(canDecide(pending(), 'mallory', authority, T0 + 20, revoked)).toMatchObject({ why: 'unknown_person' });
    expect(canDecide(pending(), 'dana', authority, T0 + 20, revoked)).toMatchObject({ why: 'sponsor' });
    expect(canDecide(pending({ agent: 'ops-agent' }), 'alice', { ...authority, isApprover: () => true }, T0 + 20, revoked)).toEqual({ ok: true });
    expect(timelineEntry(pending(), step.events[0]!).text).toBe('alice tried to approve via slack and was refused: was too late: the agent is revoked');
  });

  it("refuses any vote on the proposal of an agent the policy no longer names, its former sponsor's included", () => {
    // The agent's sponsors went with it: the sponsor rule cannot be checked, so nothing counts.
    const removed: Authority = { ...authority, agentExists: (a) => a !== 'billing-agent' };
    const step = applyVote(pending(), vote('dana'), removed, T0 + 1, NONE);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'agent_unknown', message: 'agent "billing-agent" is no longer in the policy, so none of its proposals will run' });
    expect(step.next).toBeNull();
    expect(step.events).toEqual([expect.objectContaining({ type: 'approval_refused', data: expect.objectContaining({ person: 'dana', why: 'agent_unknown' }) })]);
    expect(applyVote(pending(), vote('bob', 'deny', 'no'), removed, T0 + 1, NONE).outcome).toMatchObject({ why: 'agent_unknown' });
    expect(canDecide(pending(), 'mallory', removed, T0 + 1, NONE)).toMatchObject({ why: 'unknown_person' });
    expect(canDecide(pending({ agent: 'ops-agent' }), 'alice', removed, T0 + 1, NONE)).toEqual({ ok: true });
    expect(timelineEntry(pending(), step.events[0]!).text).toBe('dana tried to approve via slack and was refused: cannot decide for an agent the policy no longer names');
  });
});

describe('expire and cancel', () => {
  it('expires only an overdue pending proposal', () => {
    expect(expire(pending(), T0 + 59_999).next).toBeNull();
    expect(expire(pending(), T0 + 60_000).next?.status).toBe('expired');
    expect(expire(pending({ status: 'approved' }), T0 + 120_000).next).toBeNull();
  });

  it('cancels a pending proposal once', () => {
    const step = cancel(pending(), 'agent:billing-agent', 'not needed', T0 + 1);
    expect(step.next?.status).toBe('cancelled');
    expect(cancel(step.next!, 'agent:billing-agent', null, T0 + 2).outcome).toMatchObject({ kind: 'refused', status: 'cancelled' });
  });

  it('has no way back from a final status', () => {
    for (const to of ['pending', 'approved', 'executing'] as const) {
      expect(canTransition('denied', to)).toBe(false);
      expect(canTransition('succeeded', to)).toBe(false);
    }
    expect(canTransition('pending', 'approved')).toBe(true);
    expect(canTransition('approved', 'pending')).toBe(false);
  });
});
