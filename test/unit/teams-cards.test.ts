import { describe, expect, it } from 'vitest';
import { channelOf, threadMessageOf } from '../../adapters/teams/bindings.ts';
import { CARD_MAX_BYTES, renderCard, renderProposalList, renderReply, VERB_APPROVE, VERB_DENY } from '../../adapters/teams/cards.ts';
import { neutralize } from '../../adapters/teams/text.ts';
import { buildApprovalCard, type CardModel } from '../../src/core/card.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { denyNeedsReason } from '../../src/core/lifecycle.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// The Adaptive Card renderer is pure: the same facts as the Slack card, agent text neutralised.

function model(overrides: Partial<CardModel> = {}): CardModel {
  return {
    proposalId: 'p_01test',
    version: 2,
    agent: 'billing-agent',
    intent: 'Refund invoice 4711',
    action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', parameters: { amount: 420 } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
    risk: 'high',
    rule: 'payments',
    reasons: ['matched rule "payments"'],
    status: 'pending',
    approvals: [],
    approvalsRequired: 1,
    expiresAt: '2026-01-01T10:00:00.000Z',
    actionable: true,
    reasonRequired: true,
    confirmApproval: null,
    stepUp: null,
    resolution: null,
    link: 'https://countersign.example.com/console/proposals/p_01test',
    hiddenNote: null,
    ...overrides,
  };
}

const DECISION: Proposal['decision'] = { effect: 'approve', risk: 'critical', rule: 'payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 2, ttl_ms: 60_000 };

function proposal(overrides: Partial<Proposal> = {}): Proposal {
  return {
    id: 'p_01test',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Refund invoice 4711',
    action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', parameters: { amount: 420 } },
    context: { data_sensitivity: 'internal', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
    decision: DECISION,
    status: 'pending',
    created_at: 1_800_000_000_000,
    expires_at: 1_800_000_060_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...overrides,
  };
}

/** The card model of a stored proposal, as every platform gets it. */
const cardOf = (overrides: Partial<Proposal> = {}) => buildApprovalCard(proposal(overrides), 'https://countersign.example.com/console/proposals/p_01test');

/** Reordering, invisible and control characters, lone surrogates: none may reach Teams from an agent. */
const HIDDEN = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The card's size as Teams may count it: UTF-8 or UTF-16, whichever is larger. */
const bytes = (card: unknown) => {
  const json = JSON.stringify(card);
  return Math.max(Buffer.byteLength(json, 'utf8'), json.length * 2);
};

const actionsOf = (card: ReturnType<typeof renderCard>) => (card.body.find((e) => e['type'] === 'ActionSet')?.['actions'] ?? []) as Record<string, any>[];

describe('Teams card renderer', () => {
  it('renders version 1.5 with the Slack card facts and Action.Execute buttons', () => {
    const card = renderCard(model());
    expect(card.version).toBe('1.5');
    const text = JSON.stringify(card);
    for (const part of ['Approval needed · high risk', 'billing-agent', 'payments · refund', 'stripe:cus_123', 'high · rule payments', '0 of 1 approval', '2026-01-01 10:00:00 UTC', 'Value: €420.00']) {
      expect(text).toContain(part);
    }
    expect(actionsOf(card).map((a) => [a['type'], a['verb'], a['data'].proposal])).toEqual([
      ['Action.Execute', VERB_APPROVE, 'p_01test'],
      ['Action.Execute', VERB_DENY, 'p_01test'],
    ]);
    expect(actionsOf(card)[0]!['associatedInputs']).toBe('none');
  });

  it('requires a deny reason for high and critical risk only; critical approval is a second click', () => {
    const reason = (risk: CardModel['risk']) => renderCard(model({ risk, reasonRequired: denyNeedsReason(risk) })).body.find((e) => e['type'] === 'Input.Text');
    expect(reason('medium')?.['isRequired']).toBeUndefined();
    expect(reason('high')?.['isRequired']).toBe(true);
    expect(reason('critical')?.['isRequired']).toBe(true);
    const critical = actionsOf(renderCard(cardOf()));
    expect(critical[0]!['type']).toBe('Action.ShowCard');
    expect(critical[0]!['card'].actions[0]).toMatchObject({ type: 'Action.Execute', verb: VERB_APPROVE, title: 'Approve (critical)' });
    expect(critical[0]!['card'].body[0].text).toBe('Approve a critical action? payments · refund on stripe:cus_123, value €420.00');
    // The card model decides, not the renderer: a critical risk without a confirmation in the model is one click.
    expect(actionsOf(renderCard(model({ risk: 'critical' })))[0]!['type']).toBe('Action.Execute');
  });

  it('links a step-up proposal to its page in place of Approve, says why, and keeps Deny', () => {
    const model = cardOf({ decision: { ...DECISION, step_up: true } });
    const link = model.link;
    const card = renderCard(model);
    expect(actionsOf(card).map((a) => [a['type'], a['title'], a['url'] ?? a['verb']])).toEqual([
      ['Action.OpenUrl', 'Approve in the console', link],
      ['Action.Execute', 'Deny', VERB_DENY],
    ]);
    expect(JSON.stringify(card.body)).toContain('Approvals of this proposal count only in the console');
  });

  it('replaces the buttons with the result once decided', () => {
    const card = renderCard(
      model({
        status: 'denied',
        actionable: false,
        approvals: [],
        resolution: { status: 'denied', by: 'bob', reason: 'Not **now**', at: '2026-01-01T09:00:00.000Z' },
      }),
    );
    const text = JSON.stringify(card);
    expect(text).not.toContain('Action.Execute');
    expect(text).toContain('Denied by bob');
    expect(text).not.toContain('**now**');
  });

  it('shows a private notice at the top when asked', () => {
    const card = renderCard(model(), { notice: 'You are not allowed to decide on this proposal: sponsor.' });
    expect(card.body[0]).toMatchObject({ type: 'TextBlock', color: 'Attention' });
  });

  it('neutralises markdown, links, date functions and mentions but keeps ids', () => {
    const evil = 'Pay **now** _it_ ~~s~~ `code` [click](https://evil.example) www.evil.example {{DATE(2020-01-01T00:00:00Z, SHORT)}} ${x}\n# h\n> q\n- li\n1. n <at>all</at>';
    const out = neutralize(evil);
    for (const bad of ['**', '_it_', '~~', '`', '[click]', 'https://', 'www.evil', '{{DATE', '${x}', '\n# ', '\n> ', '\n- ', '\n1. ', '<at>']) expect(out).not.toContain(bad);
    expect(neutralize('stripe:cus_123 snake_case')).toBe('stripe:cus_123 snake_case');
    const card = renderCard(model({ intent: evil }));
    expect(JSON.stringify(card)).not.toContain('[click]');
  });

  it('shows a line break in the target as ⟪U+000A⟫, so an agent cannot add lines to the Target fact', () => {
    const card = renderCard(cardOf({ action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_1\nApproved by: cfo', parameters: {} } }));
    const facts = card.body.find((e) => e['type'] === 'FactSet')!['facts'] as { title: string; value: string }[];
    expect(facts.find((f) => f.title === 'Target')!.value).toBe('stripe:cus_1⟪U+000A⟫Approved by: cfo');
    expect(JSON.stringify(card)).not.toContain('stripe:cus_1\\nApproved');
  });

  it('shows hidden characters as ⟪U+…⟫ in the facts, intent, parameters and the critical confirmation, and says so', () => {
    const card = renderCard(
      cardOf({
        intent: 'Pay \u2066now\u2069',
        action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_1\u202Eelif.exe\u202C', parameters: { ['k\u200B']: 'v\u0001\uD800' } },
      }),
    );
    const all = JSON.stringify(card);
    expect(HIDDEN.test(all)).toBe(false);
    const facts = card.body.find((e) => e['type'] === 'FactSet')!['facts'] as { title: string; value: string }[];
    expect(facts.find((f) => f.title === 'Target')!.value).toBe('stripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫');
    for (const part of ['Pay ⟪U+2066⟫now⟪U+2069⟫', 'k⟪U+200B⟫', 'v⟪U+0001⟫⟪U+D800⟫', 'Approve a critical action? payments · refund on stripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫']) expect(all).toContain(part);
    expect(card.body[1]).toMatchObject({ type: 'TextBlock', color: 'Warning', text: expect.stringContaining('Hidden characters in this proposal are shown as ⟪U+…⟫') });
    expect(JSON.stringify(renderCard(cardOf()))).not.toContain('Hidden characters');
  });

  it("keeps the neutraliser's own invisible joiners invisible, and shows the agent's", () => {
    const card = JSON.stringify(renderCard(cardOf({ intent: 'see https://evil.example {{DATE(x)}} \u2060here' })));
    expect(card).toContain('https:\u2060//evil.example');
    expect(card).toContain('{\u2060{DATE');
    expect(card).toContain('⟪U+2060⟫here');
    expect(card).not.toContain('https:⟪U+2060⟫');
  });

  it('fits a huge proposal under 28 KB: parameters cut first, then the intent, with a link to the full proposal', () => {
    const params = { blob: 'x\u0001\uD800'.repeat(10_000) };
    const paramsOnly = renderCard(cardOf({ intent: 'i'.repeat(3000), action: { tool: 'payments', operation: 'refund', target: 't'.repeat(1000), parameters: params } }));
    expect(bytes(paramsOnly)).toBeLessThanOrEqual(CARD_MAX_BYTES);
    const all = JSON.stringify(paramsOnly);
    expect(all).toContain('i'.repeat(3000));
    expect(all).toContain('cut short to fit this card. [See the full proposal](https://countersign.example.com/console/proposals/p_01test)');

    // Quotes count twice in the card's JSON: with these, the parameters alone cannot make room.
    const quotes = '"'.repeat(4000);
    const both = renderCard(
      cardOf({ intent: quotes, action: { tool: quotes.slice(0, 100), operation: quotes.slice(0, 100), target: quotes.slice(0, 1000), parameters: params }, decision: { ...DECISION, reasons: [quotes] } }),
    );
    expect(bytes(both)).toBeLessThanOrEqual(CARD_MAX_BYTES);
    const texts = both.body.filter((e) => e['type'] === 'TextBlock').map((e) => String(e['text']));
    expect(texts).toContain('…'); // the parameters gave way entirely
    const intent = texts.find((t) => t.startsWith('""'))!;
    expect(intent.length).toBeLessThan(3000);
    expect(intent.length).toBeGreaterThan(200);
    expect(JSON.stringify(renderCard(cardOf()))).not.toContain('cut short');
  });

  it('stays under 28 KB in the worst case, with a notice, decided or not', () => {
    const evil = '\u0001\uD800"\\\u202E'.repeat(1000);
    const worst: Partial<Proposal> = {
      agent: 'a'.repeat(64),
      intent: evil.slice(0, 4000),
      action: { tool: evil.slice(0, 100), operation: evil.slice(0, 100), target: evil.slice(0, 1000), parameters: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`${evil.slice(0, 50)}${i}`, evil])) },
      context: { data_sensitivity: 'restricted', destination: 'external', environment: evil.slice(0, 64), reversible: false, value: { amount: 1e21, currency: evil.slice(0, 8) } },
      decision: { ...DECISION, rule: 'r'.repeat(200), reasons: [evil, evil] },
    };
    for (const c of [cardOf(worst), cardOf({ ...worst, status: 'cancelled', resolution: { status: 'cancelled', by: 'agent:billing-agent', reason: evil, at: 1_800_000_000_000 } })]) {
      const card = renderCard(c, { notice: 'You are not allowed to decide on this proposal: sponsor.' });
      expect(bytes(card)).toBeLessThanOrEqual(CARD_MAX_BYTES);
      expect(HIDDEN.test(JSON.stringify(card))).toBe(false);
      expect(JSON.stringify(card)).toContain('cut short');
    }
  });

  it('shows hidden characters in the proposal lists (search, show, pending)', () => {
    const list = JSON.stringify(renderProposalList('Pending', [proposal({ intent: 'Pay\u200B', action: { tool: 'payments', operation: 'refund', target: 'cus_1\u202Eexe', parameters: {} } })], 'none', (id) => `https://c.example/${id}`));
    expect(list).toContain('cus_1⟪U+202E⟫exe');
    expect(list).toContain('Pay⟪U+200B⟫');
    expect(HIDDEN.test(list)).toBe(false);
  });

  it('thread replies are plain text, neutralised', () => {
    expect(renderReply({ proposalId: 'p', kind: 'denial', text: 'bob denied: **no** [x](https://e.example)' })).toEqual({
      text: expect.not.stringContaining('**'),
      textFormat: 'plain',
    });
    expect(renderReply({ proposalId: 'p', kind: 'cancelled', text: 'Cancelled by agent:x: done\u202E' }).text).toBe('Cancelled by agent:x: done⟪U+202E⟫');
  });
});

describe('Teams conversation ids', () => {
  it('splits a thread id into its channel and root message', () => {
    expect(channelOf('19:abc@thread.tacv2;messageid=171')).toBe('19:abc@thread.tacv2');
    expect(threadMessageOf('19:abc@thread.tacv2;messageid=171')).toBe('171');
    expect(threadMessageOf('19:abc@thread.tacv2')).toBeNull();
  });
});

describe('policy: Teams channels', () => {
  const policy = (teams: string) => `
version: 1
agents: [{ id: a, secret_env: S }]
people: { alice: { teams: 00000000-0000-0000-0000-0000000a11ce } }
groups: { g: [alice] }
channels: { ops: { teams: ${teams} } }
default: { effect: approve, route: ops, approvers: g }
`;
  it('takes a binding key or a fixed channel', () => {
    const keyed = loadPolicy(policy('ops-key'), 'p.yaml', { S: 's' }, POLICY_EXTENSIONS);
    expect(keyed.platformsOf('ops')).toEqual(['teams']);
    expect(keyed.targetOf('ops', 'teams')).toEqual({ target: 'ops-key', details: {}, bindable: true });
    const fixed = loadPolicy(policy('{ conversation: "19:x@thread.tacv2", service_url: "https://smba.trafficmanager.net/emea/", tenant: t1 }'), 'p.yaml', { S: 's' }, POLICY_EXTENSIONS);
    expect(fixed.targetOf('ops', 'teams')).toEqual({
      target: '19:x@thread.tacv2',
      details: { fixed: { conversation: '19:x@thread.tacv2', service_url: 'https://smba.trafficmanager.net/emea/', tenant: 't1' } },
      bindable: false,
    });
    expect(() => loadPolicy(policy('{ conversation: "19:x", service_url: "not a url", tenant: t1 }'), 'p.yaml', { S: 's' }, POLICY_EXTENSIONS)).toThrow();
    expect(() => loadPolicy(policy('{ conversation: "19:x", service_url: "https://a.example/", tenant: t1, extra: 1 }'), 'p.yaml', { S: 's' }, POLICY_EXTENSIONS)).toThrow();
  });
});
