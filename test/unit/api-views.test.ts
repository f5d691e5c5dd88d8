import { describe, expect, it } from 'vitest';
import { decisionView, proposalView, submitView } from '../../adapters/http/views.ts';
import type { DecisionView } from '../../src/client/types.ts';
import type { Decision, Proposal } from '../../src/core/proposal.ts';

// The agent API shows the decision as the policy made it: every field of a Decision, step_up
// included, so an agent knows its proposal's approvals count only in the console.

// Every field, optional ones too: a field added to Decision fails to compile here until it is
// added, and the test below then fails until the view shows it.
const DECISION: Required<Decision> = {
  effect: 'approve',
  risk: 'critical',
  rule: 'large-payments',
  reasons: ['matched rule "large-payments"'],
  route: 'finance',
  approvers: 'finance',
  approvals_required: 2,
  ttl_ms: 90_000,
  step_up: true,
  credentials: { issuer: 'orders-db', ttl_ms: 600_000 },
  escalate: [{ after_ms: 30_000, route: 'secops', approvers: 'security' }],
  remind_ms: 10_000,
  on_timeout: 'deny',
  editable: ['amount', 'memo'],
  aggregate: { total: 89_991, count: 8, proposals: ['p_0000000000bbbbbbbbbbbbbbbb'], window_ms: 86_400_000, currency: 'EUR' },

};

function proposal(decision: Decision): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Pay supplier invoice SUP-2291',
    action: { tool: 'payments', operation: 'payout', target: 'iban:DE89', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'external', environment: 'production', reversible: false, value: { amount: 24_800, currency: 'EUR' } },
    decision,
    status: 'pending',
    created_at: 0,
    expires_at: 90_000,
    approvals: [],
    resolution: null,
    version: 1,
  };
}

// Compile-time: the client's type and the server's view are the same shape, both ways.
const asClient: DecisionView = decisionView(proposal(DECISION));
const asServer: ReturnType<typeof decisionView> = asClient;

describe('the decision in the agent API', () => {
  it('shows every field of the decision (ttl in seconds), step_up included', () => {
    const view = decisionView(proposal(DECISION));
    for (const key of Object.keys(DECISION)) expect(view).toHaveProperty(key === 'ttl_ms' ? 'ttl_seconds' : key);
    expect(view).toEqual({ ...asServer, step_up: true, ttl_seconds: 90 });
    expect(Object.keys(view)).not.toContain('ttl_ms');
    expect(submitView(proposal(DECISION)).decision.step_up).toBe(true);
    expect(proposalView(proposal(DECISION)).decision.step_up).toBe(true);
  });

  it('says step_up: false for a rule without it, and for proposals stored before it existed', () => {
    const { step_up: _, ...without } = DECISION;
    expect(decisionView(proposal(without))).toMatchObject({ step_up: false, ttl_seconds: 90, rule: 'large-payments' });
  });
});
