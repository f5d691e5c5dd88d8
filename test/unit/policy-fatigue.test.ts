import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/core/errors.ts';
import { aggregateGroup, aggregateReason, isStricter, limitsFor } from '../../src/core/policy/fatigue.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import type { Decision } from '../../src/core/proposal.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// Approval fatigue's policy keys (fatigue-schema.ts) and pure steps (fatigue.ts): defaults when
// the file says nothing, overrides, and the order of strictness an aggregate's decision must beat.

const HEAD = `version: 1
agents:
  - { id: agent-a, secret_env: AGENT_A_SECRET }
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
groups:
  finance: [alice, bob]
channels:
  finance: { slack: C0FIN }
default: { effect: deny }
`;
const ENV = { AGENT_A_SECRET: 'super-secret-value-123' };
const load = (rest: string) => loadPolicy(`${HEAD}${rest}`, 'p.yaml', ENV, POLICY_EXTENSIONS);
function loadError(rest: string): string {
  try {
    load(rest);
  } catch (e) {
    if (e instanceof PolicyError) return e.message;
    throw e;
  }
  throw new Error('the policy loaded');
}

const approve = (over: Partial<Decision> = {}): Decision => ({
  effect: 'approve',
  risk: 'high',
  rule: 'r',
  reasons: [],
  route: 'finance',
  approvers: 'finance',
  approvals_required: 1,
  ttl_ms: 60_000,
  ...over,
});

describe('approval fatigue policy keys', () => {
  it('has limits and aggregation on by default', () => {
    const p = load('');
    expect(p.limits).toMatchObject({ proposals_per_minute: 30, pending: 100, alert_every_ms: 300_000 });
    expect(p.aggregation).toEqual({ window_ms: 86_400_000, by: ['tool', 'target'] });
    expect(limitsFor(p.limits, 'agent-a', 'default', null)).toEqual({ per_minute: 30, pending: 100, rule_per_minute: 0, rule_pending: 0, rule: 'default' });
  });

  it('reads per-agent overrides (a missing key from the top level) and a rule of its own', () => {
    const p = load(`limits:
  proposals_per_minute: 10
  pending: 20
  alert_every: 1m
  agents:
    agent-a: { pending: 500 }
aggregation: { window: 1h, by: [tool, operation, target] }
rules:
  - name: payments
    when: action.tool == "payments"
    effect: approve
    route: finance
    approvers: finance
    limits: { proposals_per_minute: 3 }
  - name: refunds
    when: action.tool == "refunds"
    effect: approve
    route: finance
    approvers: finance
    aggregate: false
`);
    expect(p.limits.alert_every_ms).toBe(60_000);
    expect(p.aggregation).toEqual({ window_ms: 3_600_000, by: ['tool', 'operation', 'target'] });
    const payments = p.rules.find((r) => r.name === 'payments')!;
    expect(limitsFor(p.limits, 'agent-a', 'payments', payments.limits)).toEqual({ per_minute: 10, pending: 500, rule_per_minute: 3, rule_pending: 0, rule: 'payments' });
    expect(limitsFor(p.limits, 'agent-b', 'payments', payments.limits)).toMatchObject({ per_minute: 10, pending: 20 });
    expect(p.rules.find((r) => r.name === 'refunds')!.aggregate).toBe(false);
    expect(payments.aggregate).toBe(true);
  });

  it('refuses wrong values, naming the key', () => {
    expect(loadError('limits: { proposals_per_minute: 0 }\n')).toMatch(/limits\.proposals_per_minute: must be at least 1/);
    expect(loadError('limits: { pendig: 3 }\n')).toMatch(/limits\.pendig: unknown key/);
    expect(loadError('aggregation: { by: [tool, amount] }\n')).toMatch(/aggregation\.by\[1\]: must be one of: tool, operation, target/);
    expect(loadError('limits: { alert_every: 10ms }\n')).toMatch(/limits\.alert_every: must be at least 1s/);
  });
});

describe('isStricter', () => {
  it('orders deny over approve over allow, then risk, approvals and step-up', () => {
    const allow = approve({ effect: 'allow', risk: 'low', approvals_required: 0 });
    const deny = approve({ effect: 'deny', risk: 'low', approvals_required: 0 });
    expect(isStricter(approve(), allow)).toBe(true);
    expect(isStricter(deny, approve({ risk: 'critical', approvals_required: 5 }))).toBe(true);
    expect(isStricter(allow, approve())).toBe(false);
    expect(isStricter(approve({ risk: 'critical' }), approve())).toBe(true);
    expect(isStricter(approve({ risk: 'critical', approvals_required: 1 }), approve({ risk: 'high', approvals_required: 2 }))).toBe(true);
    expect(isStricter(approve({ approvals_required: 2 }), approve())).toBe(true);
    expect(isStricter(approve({ step_up: true }), approve())).toBe(true);
    expect(isStricter(approve(), approve())).toBe(false);
    expect(isStricter(approve({ rule: 'other' }), approve())).toBe(false);
  });
});

describe('aggregate groups and reasons', () => {
  const p = { agent: 'billing-agent', action: { tool: 'payments', operation: 'transfer', target: 'DE89', parameters: {} }, context: { value: { amount: 1, currency: 'EUR' } } } as const;
  it('groups by agent and currency always, and by the fields the policy names', () => {
    const spec = { window_ms: 1, by: ['tool', 'target'] as const };
    const key = aggregateGroup(spec, p as never);
    expect(aggregateGroup(spec, { ...p, action: { ...p.action, operation: 'pay' } } as never)).toBe(key);
    expect(aggregateGroup({ ...spec, by: ['tool', 'operation', 'target'] }, { ...p, action: { ...p.action, operation: 'pay' } } as never)).not.toBe(aggregateGroup({ ...spec, by: ['tool', 'operation', 'target'] }, p as never));
    expect(aggregateGroup(spec, { ...p, agent: 'other' } as never)).not.toBe(key);
    expect(aggregateGroup(spec, { ...p, context: { value: { amount: 1, currency: 'USD' } } } as never)).not.toBe(key);
  });
  it('names the earlier proposals, the window and the total', () => {
    const text = aggregateReason('billing-agent', p as never, { total: 89_991, count: 8, proposals: ['p_1', 'p_2', 'p_3', 'p_4', 'p_5', 'p_6', 'p_7', 'p_8'], window_ms: 86_400_000, currency: 'EUR' }, 'large-payments');
    expect(text).toBe('with 8 earlier proposals of billing-agent to payments DE89 in the last 24h (p_1, p_2, p_3, p_4, p_5, … 3 more) the total is 89,991 EUR: rule "large-payments" applies');
  });
});
