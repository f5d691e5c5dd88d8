import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/core/errors.ts';
import { approverGroups, nextNudgeAt } from '../../src/core/escalation.ts';
import { canDecide, expire, type Authority } from '../../src/core/lifecycle.ts';
import { nudge } from '../../src/core/nudge.ts';
import { evaluate } from '../../src/core/policy/evaluate.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import type { Decision, Proposal } from '../../src/core/proposal.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// When nobody answers (escalation.ts, nudge.ts): the policy keys and their validation, the
// steps copied into the decision, and the pure steps: who may decide once a step is reached,
// one step per commit, reminders, and on_timeout deny.

const HEAD = `version: 1
agents:
  - { id: agent-a, sponsors: [dana], secret_env: AGENT_A_SECRET }
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
  carol: { slack: U0CAROL }
  dana: { slack: U0DANA }
groups:
  finance: [alice, bob]
  oncall: [carol]
channels:
  finance: { slack: C0FIN }
  oncall: { slack: C0ONCALL }
default: { effect: deny }
rules:
`;
const ENV = { AGENT_A_SECRET: 'super-secret-value-123' };
const load = (rule: string) => loadPolicy(`${HEAD}${rule}`, 'p.yaml', ENV, POLICY_EXTENSIONS);
function loadError(rule: string): PolicyError {
  try {
    load(rule);
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  throw new Error('the policy loaded');
}

const RULE = (extra: string) => `  - name: payments
    when: action.tool == "payments"
    effect: approve
    route: finance
    approvers: finance
    ttl: 1h
${extra}`;

describe('escalation policy keys', () => {
  it('copies the steps (approvers defaulting to the rule’s), remind and on_timeout into the decision', () => {
    const policy = load(RULE(`    remind: 10m
    escalate:
      - { after: 15m, route: oncall, approvers: oncall }
      - { after: 30m, route: finance }
    on_timeout: deny
`));
    const d = evaluate(policy, {
      agent: { id: 'agent-a', sponsors: [] },
      intent: 'x',
      action: { tool: 'payments', operation: 'pay', target: 't', parameters: {} },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    });
    expect(d.escalate).toEqual([
      { after_ms: 15 * 60_000, route: 'oncall', approvers: 'oncall' },
      { after_ms: 30 * 60_000, route: 'finance', approvers: 'finance' },
    ]);
    expect(d.remind_ms).toBe(10 * 60_000);
    expect(d.on_timeout).toBe('deny');
  });

  it('leaves old decisions as they were: no key, nothing added', () => {
    const d = evaluate(load(RULE('')), {
      agent: { id: 'agent-a', sponsors: [] },
      intent: 'x',
      action: { tool: 'payments', operation: 'pay', target: 't', parameters: {} },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    });
    expect(Object.keys(d)).not.toContain('escalate');
    expect(Object.keys(d)).not.toContain('remind_ms');
    expect(Object.keys(d)).not.toContain('on_timeout');
  });

  it('refuses a bad escalate list, naming the rule and the key', () => {
    const cases: [string, RegExp][] = [
      ['    escalate:\n      - { after: 30m, route: oncall }\n      - { after: 15m, route: oncall }\n', /escalate\[1\]\.after: must be later than the step before it \(30m\)/],
      ['    escalate:\n      - { after: 15m, route: oncall }\n      - { after: 15m, route: finance }\n', /escalate\[1\]\.after: must be later/],
      ['    escalate:\n      - { after: 1h, route: oncall }\n', /escalate\[0\]\.after: must be shorter than the ttl \(1h\)/],
      ['    escalate:\n      - { after: 15m, route: nowhere }\n', /escalate\[0\]\.route "nowhere" is not listed under channels/],
      ['    escalate:\n      - { after: 15m, route: oncall, approvers: nobody }\n', /escalate\[0\]\.approvers "nobody" is not listed under groups/],
      ['    escalate:\n      - { after: 15m, rout: oncall }\n', /escalate\[0\]\.rout: unknown key/],
      ['    escalate: []\n', /escalate: must list at least one step/],
      ['    remind: 500ms\n', /remind: must be at least 1s/],
      ['    on_timeout: later\n', /on_timeout: must be deny or expire/],
    ];
    for (const [extra, message] of cases) {
      const e = loadError(RULE(extra));
      expect(e.message, extra).toMatch(message);
      expect(e.message, extra).toContain('payments');
    }
  });

  it('refuses remind, escalate and on_timeout on an allow or deny rule', () => {
    for (const key of ['remind: 10m', 'on_timeout: deny', 'escalate: [{ after: 1m, route: oncall }]']) {
      const e = loadError(`  - name: tagging\n    when: "true"\n    effect: allow\n    ${key}\n`);
      expect(e.message).toMatch(/only applies to effect approve, not allow/);
      expect(e.message).toContain('tagging');
    }
  });
});

const DECISION: Decision = {
  effect: 'approve',
  risk: 'high',
  rule: 'payments',
  reasons: ['matched'],
  route: 'finance',
  approvers: 'finance',
  approvals_required: 1,
  ttl_ms: 60 * 60_000,
  escalate: [
    { after_ms: 15 * 60_000, route: 'oncall', approvers: 'oncall' },
    { after_ms: 30 * 60_000, route: 'secops', approvers: 'security' },
  ],
  remind_ms: 10 * 60_000,
};

function pending(decision: Decision = DECISION): Proposal {
  return {
    id: 'p_1',
    agent: 'agent-a',
    idempotency_key: null,
    intent: 'pay',
    action: { tool: 'payments', operation: 'pay', target: 't', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision,
    status: 'pending',
    created_at: 0,
    expires_at: decision.ttl_ms,
    approvals: [],
    resolution: null,
    version: 1,
  };
}

const GROUPS: Record<string, string[]> = { finance: ['alice'], oncall: ['carol'], security: ['erin'] };
const authority: Authority = {
  personExists: () => true,
  isApprover: (person, group) => GROUPS[group]?.includes(person) ?? false,
  isSponsor: () => false,
  agentExists: () => true,
};
const MIN = 60_000;

describe('escalation steps', () => {
  it('takes the due step once, and only then lets its approvers decide, besides the earlier ones', () => {
    const p = pending();
    expect(canDecide(p, 'carol', authority, 16 * MIN, new Map())).toMatchObject({ ok: false, why: 'not_an_approver' });
    expect(nudge(p, 9 * MIN).next).toBeNull();
    const step = nudge(p, 16 * MIN);
    expect(step.outcome).toEqual({ kind: 'escalated', step: 1 });
    expect(step.events[0]).toMatchObject({ type: 'escalated', data: { step: 1, route: 'oncall', approvers: 'oncall', after_ms: 15 * MIN, from_route: 'finance', waited_on: ['finance'] } });
    const escalated = step.next!;
    expect(approverGroups(escalated)).toEqual(['finance', 'oncall']);
    expect(canDecide(escalated, 'carol', authority, 16 * MIN, new Map())).toEqual({ ok: true });
    expect(canDecide(escalated, 'alice', authority, 16 * MIN, new Map())).toEqual({ ok: true });
    expect(canDecide(escalated, 'erin', authority, 16 * MIN, new Map())).toMatchObject({ ok: false, why: 'not_an_approver' });
    // The 10-minute reminder is due too; then nothing until the next one, at 20 min.
    const reminded = nudge(escalated, 16 * MIN);
    expect(reminded.outcome).toEqual({ kind: 'reminded', count: 1 });
    expect(nudge(reminded.next!, 16 * MIN).next).toBeNull();
    expect(nextNudgeAt(reminded.next!)).toBe(20 * MIN);
  });

  it('after a pause takes one step per commit, then one reminder for all the missed ones', () => {
    let p = pending();
    const kinds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const s = nudge(p, 45 * MIN);
      if (s.next === null) break;
      kinds.push(s.outcome.kind);
      p = s.next;
    }
    expect(kinds).toEqual(['escalated', 'escalated', 'reminded']);
    expect(p.escalation).toEqual({ step: 2, at: 45 * MIN });
    expect(p.reminders).toEqual({ count: 4, at: 45 * MIN });
    expect(nextNudgeAt(p)).toBe(50 * MIN);
  });

  it('nothing is due past the deadline or once decided, and nothing at all without the keys', () => {
    expect(nudge(pending(), 61 * MIN).next).toBeNull();
    expect(nextNudgeAt({ ...pending(), status: 'approved' })).toBeNull();
    const { escalate: _e, remind_ms: _r, ...plain } = DECISION;
    expect(nextNudgeAt(pending(plain))).toBeNull();
  });

  it('on_timeout: deny ends the proposal denied by the policy at its deadline; expire keeps expiring', () => {
    const denied = expire(pending({ ...DECISION, on_timeout: 'deny' }), 60 * MIN);
    expect(denied.next).toMatchObject({ status: 'denied', resolution: { status: 'denied', by: 'policy', reason: 'nobody decided within 1h (on_timeout: deny)' } });
    expect(denied.events[0]).toMatchObject({ type: 'decided', actor: 'policy', data: { status: 'denied', timed_out: true } });
    expect(expire(pending(), 60 * MIN).next).toMatchObject({ status: 'expired' });
  });
});

describe('a reminder on Slack', () => {
  it('mentions only well-formed Slack user ids from the policy, after the escaped text', async () => {
    const { renderReply } = await import('../../adapters/slack/blocks.ts');
    const out = renderReply({ proposalId: 'p_1', kind: 'notice', text: 'Still waiting <!channel>', mentions: ['U0ALICE', '<!here>', 'W0BOB', 'u0lower'] });
    expect(out.text).not.toContain('<!channel>');
    expect(out.text).toMatch(/<@U0ALICE> <@W0BOB>$/);
    const shown = JSON.stringify(out.blocks);
    expect(shown).toContain('<@U0ALICE> <@W0BOB>');
    expect(shown).not.toContain('<!here>');
    expect(shown).not.toContain('u0lower');
  });
});

describe('countersign policy test', () => {
  it('says the steps, the reminder and what the deadline does', async () => {
    const { describeDecision } = await import('../../src/cli/policy-commands.ts');
    const text = describeDecision({ ...DECISION, on_timeout: 'deny' });
    expect(text).toContain('escalation step 1: after 15m to route "oncall", group "oncall" may decide too');
    expect(text).toContain('escalation step 2: after 30m to route "secops", group "security" may decide too');
    expect(text).toContain('reminder every 10m');
    expect(text).toContain('at the deadline: denied by the policy (on_timeout: deny)');
  });
});
