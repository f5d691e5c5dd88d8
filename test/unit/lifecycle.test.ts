import { describe, expect, it } from 'vitest';
import { applyVote, cancel, canTransition, expire, type Authority } from '../../src/core/lifecycle.ts';
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
};

const vote = (person: string, v: 'approve' | 'deny' = 'approve', reason: string | null = null) => ({ person, platform: 'slack' as const, vote: v, reason });

describe('applyVote', () => {
  it('counts an approval below the quorum and bumps the version', () => {
    const step = applyVote(pending(), vote('alice'), authority, T0 + 1);
    expect(step.outcome).toEqual({ kind: 'counted', approvals: 1, required: 2, approvers: ['alice'] });
    expect(step.next?.status).toBe('pending');
    expect(step.next?.version).toBe(2);
    expect(step.events.map((e) => e.type)).toEqual(['approval_recorded']);
  });

  it('approves when distinct people meet the quorum', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1).next!;
    const step = applyVote(once, vote('bob'), authority, T0 + 2);
    expect(step.outcome).toMatchObject({ kind: 'decided', status: 'approved', approvals: 2 });
    expect(step.next?.resolution).toMatchObject({ status: 'approved', by: 'bob' });
    expect(step.events.map((e) => e.type)).toEqual(['approval_recorded', 'decided']);
  });

  it('counts the same person once, whatever the platform', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1).next!;
    const step = applyVote(once, { ...vote('alice'), platform: 'teams' }, authority, T0 + 2);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'already_voted' });
    expect(step.next).toBeNull();
  });

  it('ends the proposal on one deny', () => {
    const once = applyVote(pending(), vote('alice'), authority, T0 + 1).next!;
    const step = applyVote(once, vote('bob', 'deny', 'wrong customer'), authority, T0 + 2);
    expect(step.outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(step.next?.resolution).toMatchObject({ status: 'denied', by: 'bob', reason: 'wrong customer' });
  });

  it.each([
    ['erin', 'not_an_approver'],
    ['dana', 'sponsor'],
    ['mallory', 'unknown_person'],
  ])('refuses %s (%s) and records the refusal', (person, why) => {
    const step = applyVote(pending(), vote(person), authority, T0 + 1);
    expect(step.outcome).toMatchObject({ kind: 'refused', why });
    expect(step.next).toBeNull();
    expect(step.events).toHaveLength(1);
    expect(step.events[0]).toMatchObject({ type: 'approval_refused', data: { why } });
  });

  it('requires a reason to deny high and critical risk', () => {
    const p = pending({}, { risk: 'critical' });
    expect(applyVote(p, vote('alice', 'deny', '  '), authority, T0 + 1).outcome).toMatchObject({ kind: 'refused', why: 'reason_required' });
    expect(applyVote(p, vote('alice', 'deny', 'no'), authority, T0 + 1).outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(applyVote(pending(), vote('alice', 'deny'), authority, T0 + 1).outcome).toMatchObject({ kind: 'decided', status: 'denied' });
  });

  it('expires instead of counting a vote that arrives at or after the deadline', () => {
    const step = applyVote(pending(), vote('alice'), authority, T0 + 60_000);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'expired', status: 'expired' });
    expect(step.next?.status).toBe('expired');
    expect(step.events.map((e) => e.type)).toEqual(['expired', 'approval_refused']);
  });

  it('never changes a decided proposal', () => {
    const decided = pending({ status: 'denied' });
    const step = applyVote(decided, vote('alice'), authority, T0 + 1);
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'not_pending', status: 'denied' });
    expect(step.next).toBeNull();
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
