import { describe, expect, it } from 'vitest';
import { actionDigest } from '../../src/core/execution.ts';
import type { Authority } from '../../src/core/lifecycle.ts';
import { stricter } from '../../src/core/policy/stricter.ts';
import type { Action, Decision, Proposal, ProposalContext } from '../../src/core/proposal.ts';
import { applyEdit, type EditRequest, type Redecide } from '../../src/core/revision.ts';
import { valuesFromForm } from '../../src/core/revision-text.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// The pure core of approve with edits: the stricter of two decisions, and an edit's every
// outcome (revised, counted, denied by policy, refused, duplicate) without any store.

const T = 1_700_000_000_000;

const APPROVE: Decision = { effect: 'approve', risk: 'high', rule: 'payments', reasons: ['r1'], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 60_000, editable: ['amount', 'memo'] };

function proposal(over: Partial<Proposal> = {}): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Pay SUP-1',
    action: { tool: 'payments', operation: 'payout', target: 'iban:DE89', parameters: { amount: 24_800, currency: 'EUR', memo: 'SUP-1', urgent: false } },
    context: { data_sensitivity: 'internal', destination: 'external', environment: 'production', reversible: false, value: { amount: 24_800, currency: 'EUR' } },
    decision: APPROVE,
    status: 'pending',
    created_at: T,
    expires_at: T + 60_000,
    approvals: [],
    resolution: null,
    version: 3,
    ...over,
  };
}

const authority: Authority = {
  personExists: (p) => ['alice', 'bob', 'dana', 'erin'].includes(p),
  isApprover: (p) => ['alice', 'bob', 'dana'].includes(p),
  isSponsor: (p) => p === 'dana',
  agentExists: () => true,
};

/** The policy, as a function of the revised amount. */
function redecide(decide: (action: Action, context: ProposalContext) => Decision = () => APPROVE): Redecide {
  return { reread: () => null, decide };
}

const edit = (values: Record<string, unknown>, over: Partial<EditRequest> = {}): EditRequest => ({ person: 'bob', platform: 'slack', version: 3, values, authenticatedAt: null, ...over });

describe('stricter', () => {
  it('deny > approve > allow; between approvals the higher risk, the larger quorum, step_up, and only what both let edit', () => {
    const allow: Decision = { ...APPROVE, effect: 'allow', route: null, approvers: null, approvals_required: 0, risk: 'low', rule: 'small' };
    const deny: Decision = { ...APPROVE, effect: 'deny', rule: 'never', reasons: ['no'] };
    expect(stricter(APPROVE, allow).effect).toBe('approve');
    expect(stricter(APPROVE, deny)).toMatchObject({ effect: 'deny', rule: 'never', reasons: ['no', 'r1'] });
    const big: Decision = { ...APPROVE, risk: 'critical', rule: 'big', approvals_required: 2, step_up: true, editable: ['amount'], reasons: ['r2'] };
    expect(stricter(APPROVE, big)).toEqual({ ...APPROVE, risk: 'critical', approvals_required: 2, step_up: true, editable: ['amount'], reasons: ['r1', 'r2'] });
    const { editable: _e, ...noEdits } = big;
    expect(stricter(APPROVE, noEdits)).not.toHaveProperty('editable');
  });
});

describe('applyEdit', () => {
  it('revises: the action becomes the edit, the proposed one is kept, the value follows the amount, earlier approvals are superseded and the editor’s counts', () => {
    const p = proposal({ decision: { ...APPROVE, approvals_required: 2 }, approvals: [{ person: 'alice', platform: 'console', vote: 'approve', reason: null, at: T }] });
    const step = applyEdit(p, edit({ amount: 2000 }), authority, T + 5, new Map(), redecide());
    expect(step.outcome).toMatchObject({ kind: 'revised', number: 1, status: 'pending', counted: true, approvals: 1, required: 2 });
    const next = step.next!;
    expect(next.version).toBe(4);
    expect(next.action.parameters).toEqual({ amount: 2000, currency: 'EUR', memo: 'SUP-1', urgent: false });
    expect(next.context.value.amount).toBe(2000);
    expect(next.revision).toMatchObject({ number: 1, by: 'bob', proposed: { action: p.action, context: p.context }, changes: [{ key: 'amount', from: 24_800, to: 2000 }], edited_version: 3 });
    expect(next.revision?.superseded.map((a) => a.person)).toEqual(['alice']);
    expect(next.approvals.map((a) => a.person)).toEqual(['bob']);
    expect(step.events.map((e) => e.type)).toEqual(['revised', 'approval_recorded']);
    expect(step.events[0]?.data).toMatchObject({ action_digest: actionDigest(next.action), superseded: ['alice'] });
  });

  it('a revision the policy denies ends denied by the policy, its reason said', () => {
    const denied: Decision = { ...APPROVE, effect: 'deny', rule: 'never-big', reasons: ['too much'] };
    const step = applyEdit(proposal(), edit({ amount: 99_999 }), authority, T + 5, new Map(), redecide((a) => ((a.parameters['amount'] as number) > 50_000 ? denied : APPROVE)));
    expect(step.next).toMatchObject({ status: 'denied', approvals: [], resolution: { by: 'policy', reason: expect.stringContaining('too much') }, decision: { effect: 'deny', rule: 'payments' } });
    expect(step.events.map((e) => e.type)).toEqual(['revised', 'decided']);
  });

  it('a step-up revision from a platform that vouches for no sign-in is saved, but the editor’s approval does not count', () => {
    const step = applyEdit(proposal(), edit({ memo: 'SUP-1 (checked)' }), authority, T + 5, new Map(), redecide(() => ({ ...APPROVE, step_up: true })));
    expect(step.next).toMatchObject({ status: 'pending', approvals: [], decision: { step_up: true } });
    expect(step.events.map((e) => [e.type, (e.data as { why?: string }).why])).toEqual([['revised', undefined], ['approval_refused', 'step_up_required']]);
  });

  it('refuses without storing: stale, not editable, wrong type, unknown key, unchanged; the sponsor and strangers are audited', () => {
    const p = proposal();
    const refused = (values: Record<string, unknown>, over: Partial<EditRequest> = {}, q = p) => applyEdit(q, edit(values, over), authority, T + 5, new Map(), redecide());
    expect(refused({ amount: 1 }, { version: 2 }).outcome).toMatchObject({ kind: 'refused', why: 'stale' });
    expect(refused({ currency: 'USD' }).outcome).toMatchObject({ kind: 'refused', why: 'invalid', field: 'currency', message: 'currency: may not be edited (editable: amount, memo)' });
    expect(refused({ amount: '2000' }).outcome).toMatchObject({ why: 'invalid', message: 'amount: must be a number, like the proposed value' });
    expect(refused({ amount: Number.POSITIVE_INFINITY }).outcome).toMatchObject({ why: 'invalid', message: 'amount: must be a finite number' });
    expect(refused({ memo: 'x'.repeat(4001) }).outcome).toMatchObject({ why: 'invalid', message: 'memo: must be at most 4000 characters' });
    expect(refused({ amount: -5 }).outcome).toMatchObject({ why: 'invalid', message: "amount: must not be negative (it is the proposal's declared value)" });
    expect(refused({ amount: 24_800 }).outcome).toMatchObject({ why: 'unchanged' });
    expect(refused({ amount: 1 }, {}, proposal({ decision: { ...APPROVE, editable: undefined as never } })).outcome).toMatchObject({ why: 'not_editable' });
    for (const r of [refused({ amount: 1 }, { version: 2 }), refused({ currency: 'USD' }), refused({ amount: 24_800 })]) expect([r.next, r.events]).toEqual([null, []]);
    const sponsor = refused({ amount: 1 }, { person: 'dana' });
    expect([sponsor.next, sponsor.outcome.kind, sponsor.events.map((e) => [e.type, e.data])]).toEqual([null, 'refused', [['approval_refused', { person: 'dana', platform: 'slack', vote: 'approve', why: 'sponsor', edit: true }]]]);
    expect(refused({ amount: 1 }, { person: 'erin' }).outcome).toMatchObject({ why: 'not_an_approver' });
  });

  it('the same edit delivered again is a duplicate, not a stale edit; another person’s late edit is stale', () => {
    const first = applyEdit(proposal(), edit({ amount: 2000 }), authority, T + 5, new Map(), redecide(() => ({ ...APPROVE, approvals_required: 2 })));
    const after = first.next!;
    expect(applyEdit(after, edit({ amount: 2000 }), authority, T + 6, new Map(), redecide()).outcome).toEqual({ kind: 'duplicate', status: 'pending' });
    expect(applyEdit(after, edit({ amount: 1000 }, { person: 'alice' }), authority, T + 6, new Map(), redecide()).outcome).toMatchObject({ why: 'stale' });
    // A second revision keeps what the agent proposed, and its changes are counted from it.
    const second = applyEdit(after, edit({ amount: 1000 }, { person: 'alice', version: 4 }), authority, T + 7, new Map(), redecide(() => ({ ...APPROVE, approvals_required: 2 })));
    expect(second.next?.revision).toMatchObject({ number: 2, by: 'alice', changes: [{ key: 'amount', from: 24_800, to: 1000 }] });
    expect(second.next?.revision?.proposed.action.parameters['amount']).toBe(24_800);
    expect(second.next?.approvals.map((a) => a.person)).toEqual(['alice']);
  });
});

describe('applyEdit: a rule with other approvers', () => {
  const cfo: Decision = { ...APPROVE, rule: 'cfo-payments', approvers: 'cfo', route: 'cfo' };
  it('refuses, storing nothing, an edit that makes the action a rule of other approvers asking as much or more', () => {
    for (const d of [cfo, { ...cfo, risk: 'critical' as const, approvals_required: 2 }]) {
      const step = applyEdit(proposal(), edit({ amount: 90_000 }), authority, T + 5, new Map(), redecide(() => d));
      expect([step.next, step.events]).toEqual([null, []]);
      expect(step.outcome).toMatchObject({ kind: 'refused', why: 'invalid', field: 'amount', message: expect.stringContaining('rule "cfo-payments", which group cfo decides') });
    }
  });
  it('lets the card\'s approvers lower an amount under a smaller rule of other approvers: the card\'s decision still holds', () => {
    const small: Decision = { ...cfo, risk: 'low' };
    const step = applyEdit(proposal(), edit({ amount: 100 }), authority, T + 5, new Map(), redecide(() => small));
    expect(step.next).toMatchObject({ status: 'approved', decision: { approvers: 'finance', risk: 'high', rule: 'payments' } });
  });
});

describe('edit form values', () => {
  it('reads each text as the type it replaces; unchanged fields are left out; unreadable ones name the key', () => {
    const p = proposal();
    expect(valuesFromForm(p, { amount: '2,000', memo: 'SUP-1', urgent: 'true' })).toEqual({ amount: 2000, urgent: true });
    expect(valuesFromForm(p, { amount: '24800.0' })).toEqual({});
    expect(() => valuesFromForm(p, { amount: '2k' })).toThrow('amount: must be a number');
    expect(() => valuesFromForm(p, { urgent: 'maybe' })).toThrow('urgent: must be true or false');
    // A number the proposal could not hold as typed: 2^53 + 1 would be approved as 2^53, 400 nines as Infinity (stored as null).
    expect(() => valuesFromForm(p, { amount: '9007199254740993' })).toThrow('amount: is too large to keep exactly');
    expect(() => valuesFromForm(p, { amount: '9'.repeat(400) })).toThrow('amount: is too large to keep exactly');
    expect(valuesFromForm(p, { amount: '9,007,199,254,740,991' })).toEqual({ amount: 9007199254740991 });
  });
});

describe('policy: editable', () => {
  const base = (rule: string) => `
version: 1
agents: [{ id: a, secret_env: S }]
people: { alice: {}, bob: {} }
groups: { finance: [alice, bob] }
channels: { finance: { console: true } }
rules:
  - name: r
    when: "true"
${rule}
default: { effect: deny }
`;
  const load = (rule: string) => loadPolicy(base(rule), 'p.yaml', { S: 'secret-0123456789abcdef0123' }, POLICY_EXTENSIONS);

  it('is read onto approve rules and into their decisions; old policies without it stay valid', () => {
    const policy = load('    effect: approve\n    route: finance\n    approvers: finance\n    editable: [amount, memo]');
    expect(policy.rules[0]?.editable).toEqual(['amount', 'memo']);
    expect(load('    effect: approve\n    route: finance\n    approvers: finance').rules[0]?.editable).toBeNull();
  });

  it('is refused on allow and deny, empty, or naming a key twice', () => {
    expect(() => load('    effect: allow\n    editable: [amount]')).toThrow(/editable: only applies to effect approve, not allow/);
    expect(() => load('    effect: approve\n    route: finance\n    approvers: finance\n    editable: []')).toThrow(/editable: must name at least one parameter/);
    expect(() => load('    effect: approve\n    route: finance\n    approvers: finance\n    editable: [amount, amount]')).toThrow(/names "amount" twice/);
  });
});
