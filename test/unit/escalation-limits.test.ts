import { describe, expect, it } from 'vitest';
import { auditEvent } from '../../src/core/audit-events.ts';
import { PolicyError } from '../../src/core/errors.ts';
import { timelineEntry } from '../../src/core/event-text.ts';
import { applyVote, type Authority } from '../../src/core/lifecycle.ts';
import { stricter } from '../../src/core/policy/stricter.ts';
import { nextNudgeAt } from '../../src/core/escalation.ts';
import { nudge, UNCHANGED_WORLD } from '../../src/core/nudge.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import type { Decision, Proposal } from '../../src/core/proposal.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// Edges of "when nobody answers": how many reminders one proposal may post (a reminder storm
// fills a channel and the audit log), no step or reminder for a proposal nobody may decide on, a
// step card's failure named as the step's, and on_timeout: deny at a click and after an edit.

const HEAD = `version: 1
agents:
  - { id: agent-a, secret_env: AGENT_A_SECRET }
people:
  alice: { slack: U0ALICE }
groups:
  finance: [alice]
channels:
  finance: { slack: C0FIN }
default: { effect: deny }
rules:
`;
const RULE = (ttl: string, remind: string) => `  - name: payments
    when: action.tool == "payments"
    effect: approve
    route: finance
    approvers: finance
    ttl: ${ttl}
    remind: ${remind}
`;
const load = (rule: string) => loadPolicy(`${HEAD}${rule}`, 'p.yaml', { AGENT_A_SECRET: 'super-secret-value-123' }, POLICY_EXTENSIONS);

describe('reminder storms', () => {
  it('refuses a remind interval that would post more than 100 reminders before the ttl, naming the rule, the key and the shortest interval allowed', () => {
    let error: unknown;
    try {
      load(RULE('1h', '1s'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    const message = (error as PolicyError).message;
    expect(message).toContain('payments');
    expect(message).toMatch(/remind: .*3599 reminders.*at most 100.*at least 36s/);
  });

  it('takes up to 100 reminders: 36s in 1h is 99, 10m in 1h is 5', () => {
    expect(() => load(RULE('1h', '36s'))).not.toThrow();
    expect(() => load(RULE('1h', '10m'))).not.toThrow();
    expect(() => load(RULE('1h', '35s'))).toThrow(/at least 36s/);
  });
});

const DECISION: Decision = {
  effect: 'approve',
  risk: 'high',
  rule: 'payments',
  reasons: [],
  route: 'finance',
  approvers: 'finance',
  approvals_required: 1,
  ttl_ms: 60 * 60_000,
  escalate: [{ after_ms: 15 * 60_000, route: 'oncall', approvers: 'oncall' }],
  remind_ms: 10 * 60_000,
};
const p: Proposal = {
  id: 'p_1',
  agent: 'agent-a',
  idempotency_key: null,
  intent: 'pay',
  action: { tool: 'payments', operation: 'pay', target: 'x', parameters: {} },
  context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
  decision: DECISION,
  status: 'pending',
  created_at: 0,
  expires_at: 60 * 60_000,
  approvals: [],
  resolution: null,
  version: 1,
};

describe('reminders at run time', () => {
  it('stop after 100 for a decision copied without the load check (an older policy): nothing more is due', () => {
    const stormy: Proposal = { ...p, decision: { ...DECISION, escalate: [], remind_ms: 1000 }, reminders: { count: 99, at: 99_000 } };
    expect(nextNudgeAt(stormy)).toBe(100_000);
    expect(nudge(stormy, 100_000).outcome).toEqual({ kind: 'reminded', count: 100 });
    expect(nextNudgeAt({ ...stormy, reminders: { count: 100, at: 100_000 } })).toBeNull();
    expect(nudge({ ...stormy, reminders: { count: 100, at: 100_000 } }, 200_000).next).toBeNull();
  });
});

describe('nudge of a proposal nobody may decide on', () => {
  it('takes no step and sends no reminder when the agent was revoked after the proposal was made, or is no longer in the policy', () => {
    expect(nudge(p, 16 * 60_000).outcome.kind).toBe('escalated');
    const revoked = { ...UNCHANGED_WORLD, revoked: new Map([['agent-a', 1]]) };
    expect(nudge(p, 16 * 60_000, revoked).next).toBeNull();
    expect(nudge(p, 16 * 60_000, { ...UNCHANGED_WORLD, agentExists: () => false }).next).toBeNull();
    // Revoked before it was made (then restored): not this proposal's revocation.
    expect(nudge({ ...p, created_at: 5 }, 16 * 60_000, revoked).outcome.kind).toBe('escalated');
  });
});

describe("a step's card that could not be posted", () => {
  it('says in the history which card it was: the step and its route, not the rule’s card', () => {
    const subject = { at: '2026-01-01T00:00:00.000Z', proposal_id: p.id, agent: p.agent, actor: 'system' };
    const ofStep = auditEvent('card_failed', subject, { platform: 'slack', error: 'channel_not_found', retry_later: true, step: 1, route: 'oncall' });
    expect(timelineEntry(p, ofStep).text).toBe('Card of escalation step 1 (oncall) could not be posted to slack: channel_not_found');
    const ofRule = auditEvent('card_failed', subject, { platform: 'slack', error: 'channel_not_found', retry_later: true });
    expect(timelineEntry(p, ofRule).text).toBe('Card could not be posted to slack: channel_not_found');
  });
});

describe('on_timeout: deny', () => {
  const authority: Authority = { personExists: () => true, isApprover: () => true, isSponsor: () => false, agentExists: () => true };
  const denying: Proposal = { ...p, decision: { ...DECISION, on_timeout: 'deny' } };

  it('a click at the deadline tells the approver the proposal is denied by the policy, as its card and the agent say, not that it expired', () => {
    const step = applyVote(denying, { person: 'alice', platform: 'slack', vote: 'approve', reason: null, authenticatedAt: null }, authority, denying.expires_at!, new Map());
    expect(step.next?.status).toBe('denied');
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'expired', status: 'denied' });
    const message = step.outcome.kind === 'refused' ? step.outcome.message : '';
    expect(message).not.toContain('expired');
    expect(message).toContain('on_timeout: deny');
  });

  it('holds after an edit that moved the action to a rule that says it (the stricter of both decisions)', () => {
    const expiring: Decision = { ...DECISION, rule: 'payments' };
    const denyingRule: Decision = { ...DECISION, rule: 'large-payments', on_timeout: 'deny' };
    expect(stricter(expiring, denyingRule).on_timeout).toBe('deny');
    expect(stricter(denyingRule, expiring).on_timeout).toBe('deny');
    expect(stricter(expiring, expiring).on_timeout).toBeUndefined();
  });
});
