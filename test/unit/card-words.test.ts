import { describe, expect, it } from 'vitest';
import { cardHtml } from '../../adapters/console/views.ts';
import { buildApprovalCard, factsLine } from '../../src/core/card.ts';
import { timelineEntry } from '../../src/core/event-text.ts';
import { formatAmount } from '../../src/core/money.ts';
import type { Proposal } from '../../src/core/proposal.ts';

// Words a new user misread (issue 18): the policy's effect, a rule named twice, amounts
// without separators, a deny reason said three times on one card.

const T0 = Date.parse('2026-11-24T10:00:00Z');

function proposal(over: Partial<Proposal> = {}): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Pay supplier invoice SUP-2291',
    action: { tool: 'payments', operation: 'payout', target: 'iban:DE89370400440532013000', parameters: { amount: 24_800 } },
    context: { data_sensitivity: 'internal', destination: 'external', environment: 'production', reversible: false, value: { amount: 24_800, currency: 'EUR' } },
    decision: { effect: 'approve', risk: 'high', rule: 'payments', reasons: ['matched rule "payments"'], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 60_000 },
    status: 'pending',
    created_at: T0,
    expires_at: T0 + 60_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...over,
  } as Proposal;
}

const event = (type: string, data: Record<string, unknown>, actor = 'policy') => ({ type, at: new Date(T0).toISOString(), proposal_id: 'p_0000000000aaaaaaaaaaaaaaaa', agent: 'billing-agent', actor, data }) as never;

describe('words on every card', () => {
  it('formats amounts with their currency, grouped, never rounded; an unknown code keeps the grouped number and the code', () => {
    expect(formatAmount(24_800, 'EUR')).toBe('€24,800.00');
    expect(formatAmount(1_000, 'JPY')).toBe('¥1,000');
    expect(formatAmount(0.004, 'EUR')).toBe('€0.004');
    expect(formatAmount(1_234_567.5, 'POINTS')).toBe('1,234,567.5 POINTS');
    expect(formatAmount(1_500, '')).toBe('1,500');
    expect(factsLine(buildApprovalCard(proposal(), 'x'))).toContain('Value: €24,800.00');
  });

  it('leaves out the default reason that only repeats the rule, keeps a rule\'s own reason', () => {
    expect(buildApprovalCard(proposal(), 'x').reasons).toEqual([]);
    const own = proposal({ decision: { ...proposal().decision, reasons: ['payouts over 10k need finance'] } });
    expect(buildApprovalCard(own, 'x').reasons).toEqual(['payouts over 10k need finance']);
    const html = cardHtml({ card: buildApprovalCard(proposal(), 'x'), timeline: [], csrf: 'c', decidable: false, note: null, agentRevokedAt: null, stepUp: null }).text;
    expect(html).not.toContain('matched rule');
  });

  it('says what the policy decided as what it means for the proposal: needs approval, allowed, denied', () => {
    const said = (effect: string) => timelineEntry(proposal(), event('policy_decided', { rule: 'payments', effect, risk: 'high' })).text;
    expect(said('approve')).toBe('Policy: rule "payments": needs approval (high risk)');
    expect(said('allow')).toBe('Policy: rule "payments": allowed (high risk)');
    expect(said('deny')).toBe('Policy: rule "payments": denied (high risk)');
  });

  it("says a deny reason in the console card's result line and its timeline (the console's thread), not a third time in the votes", () => {
    const reason = 'Supplier bank details changed last week';
    const denied = proposal({
      status: 'denied',
      approvals: [{ person: 'alice', vote: 'deny', reason, at: T0 + 1_000, platform: 'console' } as never],
      resolution: { status: 'denied', by: 'alice', reason, at: T0 + 1_000 },
    });
    const timeline = [timelineEntry(denied, event('approval_recorded', { person: 'alice', vote: 'deny', reason, platform: 'console', approvals: 0, required: 1 }, 'person:alice')), timelineEntry(denied, event('decided', { status: 'denied' }, 'person:alice'))];
    const html = cardHtml({ card: buildApprovalCard(denied, 'x'), timeline, csrf: 'c', decidable: false, note: null, agentRevokedAt: null, stepUp: null }).text;
    expect(html.split(reason).length - 1).toBe(2);
    expect(html).toContain(`alice denied (via console): ${reason}`);
    expect(html).toMatch(/class="resolution[^"]*">.*Supplier bank details changed last week/);
    expect(html).toMatch(/<li class="deny">alice denied<\/li>/);
  });
});
