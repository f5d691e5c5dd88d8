import { describe, expect, it } from 'vitest';
import { buildApprovalCard, decidedBy } from '../../src/core/card.ts';
import type { Proposal } from '../../src/core/proposal.ts';

// The platform-neutral card decides, for every renderer, whether an approval is confirmed first
// (and in which words) and whether it is made in the console (step-up); renderers only lay out.

const T0 = Date.parse('2026-11-24T10:00:00Z');

function proposal(over: Partial<Proposal> = {}, decision: Partial<Proposal['decision']> = {}): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Pay supplier invoice SUP-2291',
    action: { tool: 'payments', operation: 'payout', target: 'iban:DE89\u202E0001', parameters: { amount: 24_800 } },
    context: { data_sensitivity: 'internal', destination: 'external', environment: 'production', reversible: false, value: { amount: 24_800, currency: 'EUR' } },
    decision: { effect: 'approve', risk: 'critical', rule: 'large-payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 2, ttl_ms: 60_000, ...decision },
    status: 'pending',
    created_at: T0,
    expires_at: T0 + 60_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...over,
  };
}

const LINK = 'https://countersign.example/console/proposals/p_0000000000aaaaaaaaaaaaaaaa';

describe('the card model', () => {
  it('asks to confirm a critical approval, repeating action, target (hidden characters shown) and value', () => {
    const card = buildApprovalCard(proposal(), LINK);
    expect(card.confirmApproval).toEqual({
      question: 'Approve a critical action?',
      action: 'payments · payout',
      target: 'iban:DE89⟪U+202E⟫0001',
      value: '€24,800.00',
      summary: 'payments · payout on iban:DE89⟪U+202E⟫0001, value €24,800.00',
      confirm: 'Approve',
      back: 'Go back',
    });
    expect(card.hiddenNote).not.toBeNull();
    for (const risk of ['low', 'medium', 'high'] as const) expect(buildApprovalCard(proposal({}, { risk }), LINK).confirmApproval).toBeNull();
    const noValue = proposal({ context: { ...proposal().context, value: { amount: 0, currency: '' } } });
    expect(buildApprovalCard(noValue, LINK).confirmApproval?.summary).toBe('payments · payout on iban:DE89⟪U+202E⟫0001, value none');
  });

  it('shows line breaks and tabs in single-line fields as ⟪U+000A⟫ / ⟪U+0009⟫, keeping them where text runs over lines (intent, parameters)', () => {
    const base = proposal();
    const card = buildApprovalCard(
      proposal({
        intent: 'Pay supplier\ninvoice SUP-2291',
        action: { tool: 'pay\nments', operation: 'pay\tout', target: 'iban:DE89 0001\nApproved by: cfo', parameters: { note: 'line one\nline two' } },
        context: { ...base.context, environment: 'production\nReversible: yes', value: { amount: 24_800, currency: 'EUR\n' } },
      }),
      LINK,
    );
    expect(card.action.target).toBe('iban:DE89 0001⟪U+000A⟫Approved by: cfo');
    expect(card.action.tool).toBe('pay⟪U+000A⟫ments');
    expect(card.action.operation).toBe('pay⟪U+0009⟫out');
    expect(card.context.environment).toBe('production⟪U+000A⟫Reversible: yes');
    expect(card.context.value.currency).toBe('EUR⟪U+000A⟫');
    expect(card.confirmApproval?.target).toBe('iban:DE89 0001⟪U+000A⟫Approved by: cfo');
    expect(card.intent).toBe('Pay supplier\ninvoice SUP-2291');
    expect(card.action.parameters).toEqual({ note: 'line one\nline two' });
    expect(card.hiddenNote).toContain('U+000A');
    expect(card.hiddenNote).toContain('U+0009');
    // Line breaks where they belong are not hidden characters: no note for them alone.
    expect(buildApprovalCard(proposal({ intent: 'two\nlines', action: { ...base.action, target: 'iban:DE89 0001' } }), LINK).hiddenNote).toBeNull();
  });

  it('says when approvals are made in the console (step_up), and not otherwise', () => {
    expect(buildApprovalCard(proposal({}, { step_up: true }), LINK).stepUp).toEqual({
      note: 'Approvals of this proposal count only in the console, from someone who signed in there within the last 5 minutes.',
      approveLabel: 'Approve in the console',
    });
    expect(buildApprovalCard(proposal(), LINK).stepUp).toBeNull();
  });

  it('names everyone whose approval counted in the result line, the policy as the policy, and a denier by name', () => {
    const approvals = [
      { person: 'alice', platform: 'slack', vote: 'approve' as const, reason: null, at: T0 + 1 },
      { person: 'bob', platform: 'console', vote: 'approve' as const, reason: null, at: T0 + 2 },
    ];
    expect(decidedBy(buildApprovalCard(proposal({ status: 'approved', approvals, resolution: { status: 'approved', by: 'bob', reason: null, at: T0 + 2 } }), LINK))).toBe(' by alice, bob');
    expect(decidedBy(buildApprovalCard(proposal({ status: 'denied', resolution: { status: 'denied', by: 'carol', reason: 'no', at: T0 + 2 } }), LINK))).toBe(' by carol');
    expect(decidedBy(buildApprovalCard(proposal({ status: 'approved', resolution: { status: 'approved', by: 'policy', reason: null, at: T0 } }), LINK))).toBe(' by the policy');
    expect(decidedBy(buildApprovalCard(proposal({ status: 'expired', resolution: { status: 'expired', by: null, reason: null, at: T0 } }), LINK))).toBe('');
    expect(decidedBy(buildApprovalCard(proposal(), LINK))).toBe('');
  });
});
