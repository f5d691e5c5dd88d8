import { describe, expect, it } from 'vitest';
import { channelOf, threadMessageOf } from '../../adapters/teams/bindings.ts';
import { renderCard, renderReply, VERB_APPROVE, VERB_DENY } from '../../adapters/teams/cards.ts';
import { neutralize } from '../../adapters/teams/text.ts';
import type { CardModel } from '../../src/core/card.ts';
import { denyNeedsReason } from '../../src/core/lifecycle.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// The Adaptive Card renderer is pure: the same facts as the Slack card, agent text neutralised.

function model(overrides: Partial<CardModel> = {}): CardModel {
  return {
    proposalId: 'p_01test',
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
    resolution: null,
    link: 'https://countersign.example.com/console/proposals/p_01test',
    ...overrides,
  };
}

const actionsOf = (card: ReturnType<typeof renderCard>) => (card.body.find((e) => e['type'] === 'ActionSet')?.['actions'] ?? []) as Record<string, any>[];

describe('Teams card renderer', () => {
  it('renders version 1.5 with the Slack card facts and Action.Execute buttons', () => {
    const card = renderCard(model());
    expect(card.version).toBe('1.5');
    const text = JSON.stringify(card);
    for (const part of ['Approval needed · high risk', 'billing-agent', 'payments · refund', 'stripe:cus_123', 'high · rule payments', '0 of 1 approval', '2026-01-01 10:00:00 UTC', 'Value: 420 EUR']) {
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
    const critical = actionsOf(renderCard(model({ risk: 'critical' })));
    expect(critical[0]!['type']).toBe('Action.ShowCard');
    expect(critical[0]!['card'].actions[0]).toMatchObject({ type: 'Action.Execute', verb: VERB_APPROVE });
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

  it('thread replies are plain text, neutralised', () => {
    expect(renderReply({ proposalId: 'p', kind: 'denial', text: 'bob denied: **no** [x](https://e.example)' })).toEqual({
      text: expect.not.stringContaining('**'),
      textFormat: 'plain',
    });
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
