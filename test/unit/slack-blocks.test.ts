import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { LIMITS, denyModal, renderCard, renderReply } from '../../adapters/slack/blocks.ts';
import { verificationFailure } from '../../adapters/slack/receiver.ts';
import { escapeEntities, neutralize, plain, truncate } from '../../adapters/slack/text.ts';
import { buildApprovalCard, type CardModel } from '../../src/core/card.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { slackSignature } from '../helpers/fake-slack.ts';

function card(overrides: Partial<CardModel> = {}): CardModel {
  return {
    proposalId: 'p_01jabcdefghjkmnpqrstvwxyz0',
    version: 3,
    agent: 'billing-agent',
    intent: 'Refund invoice 4711',
    action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', parameters: { amount: 420, currency: 'EUR' } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
    risk: 'high',
    rule: 'payments',
    reasons: ['rule payments matched'],
    status: 'pending',
    approvals: [],
    approvalsRequired: 1,
    expiresAt: '2026-11-24T06:15:00.000Z',
    actionable: true,
    reasonRequired: true,
    confirmApproval: null,
    stepUp: null,
    resolution: null,
    link: 'https://countersign.example/console/proposals/p_01jabcdefghjkmnpqrstvwxyz0',
    hiddenNote: null,
    ...overrides,
  };
}

const DECISION: Proposal['decision'] = { effect: 'approve', risk: 'critical', rule: 'payments', reasons: ['rule payments matched'], route: 'finance', approvers: 'finance', approvals_required: 2, ttl_ms: 60_000 };

/** The card model of a stored proposal, as every platform gets it. */
function cardOf(overrides: Partial<Proposal> = {}): CardModel {
  const p: Proposal = {
    id: 'p_01jabcdefghjkmnpqrstvwxyz0',
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
  return buildApprovalCard(p, 'https://countersign.example/console/proposals/p_01jabcdefghjkmnpqrstvwxyz0');
}

/** Reordering, invisible and control characters, lone surrogates: none may reach Slack. */
const HIDDEN = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const size = (blocks: unknown) => JSON.stringify(blocks).length;

/** Every text object in a block list, for limit checks. */
function texts(value: unknown, out: { type: string; text: string }[] = []): { type: string; text: string }[] {
  if (Array.isArray(value)) value.forEach((v) => texts(v, out));
  else if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ((o['type'] === 'plain_text' || o['type'] === 'mrkdwn') && typeof o['text'] === 'string') out.push({ type: o['type'], text: o['text'] });
    Object.values(o).forEach((v) => texts(v, out));
  }
  return out;
}

describe('Slack text safety', () => {
  it('escapes &, < and > so nothing becomes a mention or a link', () => {
    expect(escapeEntities('<!channel> & <https://x|y>')).toBe('&lt;!channel&gt; &amp; &lt;https://x|y&gt;');
  });

  it('neutralises mrkdwn formatting, quotes and broadcast words', () => {
    const out = neutralize('*bold* _it_ ~s~ `c`\n> quote @here @channel');
    expect(out).not.toMatch(/[*_~`]/);
    expect(out).not.toMatch(/^&gt;/m);
    expect(out).not.toContain('@here');
    expect(out).not.toContain('@channel');
  });

  it('truncates without splitting a surrogate pair or an entity', () => {
    expect(truncate('ab😀cd', 4)).toBe('ab…');
    expect(truncate(escapeEntities('a<b'), 4)).toBe('a…');
    expect(truncate('short', 10)).toBe('short');
    const long = plain('<'.repeat(5000), 3000);
    expect(long.text.length).toBeLessThanOrEqual(3000);
    expect(long.text).toMatch(/^(&lt;)+…$/);
  });
});

describe('renderCard', () => {
  it('shows the action, context, risk, quorum, expiry and both buttons while pending', () => {
    const { text, blocks } = renderCard(card());
    const all = JSON.stringify(blocks);
    for (const part of ['Refund invoice 4711', 'payments · refund', 'stripe:cus_123', 'high · rule payments', '0 of 1 approval', 'confidential', 'Destination: external', 'Value: €420.00', 'Reversible: no']) {
      expect(all).toContain(part);
    }
    expect(all).toContain('<!date^1795500900^');
    expect(text).toContain('billing-agent wants payments.refund');
    const actions = blocks.find((b) => b.type === 'actions') as any;
    expect(actions.elements.map((e: any) => e.action_id)).toEqual(['countersign_approve', 'countersign_deny']);
    expect(actions.elements[0].confirm).toBeUndefined();
  });

  it('asks for confirmation before a critical approval, repeating the action, target and value', () => {
    const { blocks } = renderCard(cardOf());
    const approve = (blocks.find((b) => b.type === 'actions') as any).elements[0];
    expect(approve.confirm).toMatchObject({
      title: { text: 'Approve a critical action?' },
      text: { text: 'payments · refund on stripe:cus_123, value €420.00' },
      confirm: { text: 'Approve' },
      deny: { text: 'Go back' },
    });
  });

  it('confirms as the card model says, not by looking at the risk itself', () => {
    const approve = (c: CardModel) => (renderCard(c).blocks.find((b) => b.type === 'actions') as any).elements[0];
    expect(approve(card({ risk: 'critical' })).confirm).toBeUndefined();
    const model = cardOf();
    expect(approve(card({ risk: 'medium', confirmApproval: model.confirmApproval })).confirm.text.text).toContain('value €420.00');
  });

  it('links a step-up proposal to its page in place of Approve, says why, and keeps Deny', () => {
    const c = cardOf({ decision: { ...DECISION, step_up: true } });
    const { blocks } = renderCard(c);
    const actions = (blocks.find((b) => b.type === 'actions') as any).elements;
    expect(actions.map((e: any) => [e.action_id, e.text.text, e.url ?? null])).toEqual([
      ['countersign_open_console', 'Approve in the console', c.link],
      ['countersign_deny', 'Deny…', null],
    ]);
    expect(actions[0].confirm).toBeUndefined();
    expect(JSON.stringify(blocks)).toContain('Approvals of this proposal count only in the console, from someone who signed in there within the last 5 minutes.');
    // Decided: neither the link nor the note.
    const done = JSON.stringify(renderCard(cardOf({ decision: { ...DECISION, step_up: true }, status: 'denied', resolution: { status: 'denied', by: 'bob', reason: 'no', at: 1_800_000_001_000 } })).blocks);
    expect(done).not.toContain('Approve in the console');
    expect(done).not.toContain('count only in the console');
  });

  it('counts approvals by name', () => {
    const approvals = [{ person: 'alice', platform: 'slack' as const, vote: 'approve' as const, reason: null, at: 1 }];
    expect(JSON.stringify(renderCard(card({ approvals, approvalsRequired: 2 })).blocks)).toContain('1 of 2 approvals: alice');
  });

  it('replaces the buttons by the result, who decided and when', () => {
    const approvals = [{ person: 'bob', platform: 'slack' as const, vote: 'deny' as const, reason: 'dup <!here>', at: 1 }];
    const { blocks } = renderCard(
      card({ status: 'denied', actionable: false, approvals, resolution: { status: 'denied', by: 'bob', reason: 'dup <!here>', at: '2026-11-24T06:00:00.000Z' } }),
    );
    expect(blocks.some((b) => b.type === 'actions')).toBe(false);
    const all = JSON.stringify(blocks);
    expect(all).toContain('Denied by bob');
    expect(all).toContain('Reason: dup &lt;!here&gt;');
    expect(all).not.toContain('<!here>');
  });

  it('keeps agent text in plain_text and inside Block Kit limits, however long', () => {
    const huge = `${'&<*'.repeat(3000)} <!channel>`;
    const params = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, huge.slice(0, 200)]));
    const { text, blocks } = renderCard(
      card({ intent: huge, agent: 'a'.repeat(64), action: { tool: 'x'.repeat(100), operation: 'y'.repeat(100), target: huge.slice(0, 1000), parameters: params }, rule: 'r'.repeat(200) }),
    );
    expect(blocks.length).toBeLessThanOrEqual(LIMITS.blocks);
    expect(text.length).toBeLessThanOrEqual(LIMITS.fallback);
    expect(text).not.toMatch(/[<>]/);
    expect((blocks[0] as any).text.text.length).toBeLessThanOrEqual(LIMITS.header);
    const fields = (blocks.find((b) => b.type === 'section' && 'fields' in b) as any).fields;
    expect(fields.length).toBeLessThanOrEqual(LIMITS.fields);
    for (const f of fields) expect(f.text.length).toBeLessThanOrEqual(LIMITS.field);
    for (const t of texts(blocks)) {
      expect(t.text.length).toBeLessThanOrEqual(LIMITS.section);
      expect(t.text).not.toContain('<!channel>');
    }
    expect((blocks.find((b) => b.type === 'section') as any).text.type).toBe('plain_text');
  });

  it('shows a line break in the target as ⟪U+000A⟫, so an agent cannot add lines to the Target field', () => {
    const { text, blocks } = renderCard(cardOf({ action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_1\nApproved by: cfo', parameters: {} } }));
    const all = JSON.stringify({ text, blocks });
    expect(all).toContain('Target\\nstripe:cus_1⟪U+000A⟫Approved by: cfo');
    expect(all).not.toContain('stripe:cus_1\\nApproved');
  });

  it('shows hidden characters as ⟪U+…⟫ everywhere on the card, the confirm dialog included, and says so first', () => {
    const c = cardOf({
      intent: 'Pay \u2066now\u2069',
      action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_1\u202Eelif.exe\u202C', parameters: { ['k\u200B']: 'v\u0001\uD800' } },
    });
    const { text, blocks } = renderCard(c);
    const all = JSON.stringify({ text, blocks });
    expect(HIDDEN.test(all)).toBe(false);
    expect(all).toContain('Target\\nstripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫');
    expect(all).toContain('Pay ⟪U+2066⟫now⟪U+2069⟫');
    expect(all).toContain('k⟪U+200B⟫');
    expect(all).toContain('v⟪U+0001⟫⟪U+D800⟫');
    const approve = (blocks.find((b) => b.type === 'actions') as any).elements[0];
    expect(approve.confirm.text.text).toContain('stripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫');
    expect(blocks[1]).toMatchObject({ type: 'context', elements: [{ type: 'plain_text', text: expect.stringContaining('Hidden characters in this proposal are shown as ⟪U+…⟫') }] });
    expect(JSON.stringify(renderCard(cardOf()).blocks)).not.toContain('Hidden characters');
  });

  it('gives the actions block a new block_id in each version; the buttons carry the proposal id', () => {
    const first = renderCard(card({ version: 3 })).blocks.find((b) => b.type === 'actions') as any;
    const next = renderCard(card({ version: 4 })).blocks.find((b) => b.type === 'actions') as any;
    expect(first.block_id).not.toBe(next.block_id);
    expect(renderCard(card({ version: 3 })).blocks.find((b) => b.type === 'actions')).toEqual(first);
    expect(next.block_id.length).toBeLessThanOrEqual(LIMITS.blockId);
    expect(next.elements.map((e: any) => e.value)).toEqual(['p_01jabcdefghjkmnpqrstvwxyz0', 'p_01jabcdefghjkmnpqrstvwxyz0']);
  });

  it('fits a huge proposal in one Slack message: parameters cut first, then the intent, with a link to the full proposal', () => {
    const params = { blob: 'x\u0001'.repeat(20_000) };
    const paramsOnly = renderCard(cardOf({ intent: 'i'.repeat(2900), action: { tool: 'payments', operation: 'refund', target: 't'.repeat(1000), parameters: params } }));
    expect(size(paramsOnly.blocks)).toBeLessThanOrEqual(LIMITS.message);
    const all = JSON.stringify(paramsOnly.blocks);
    expect(all).toContain('i'.repeat(2900)); // the intent whole: the parameters gave way
    expect(all).toContain('cut short');
    expect(all).toContain('<https://countersign.example/console/proposals/p_01jabcdefghjkmnpqrstvwxyz0|See the full proposal>');

    // Quotes count twice in the message's JSON: with these, the parameters alone cannot make room.
    const quotes = '"'.repeat(4000);
    const both = renderCard(
      cardOf({ intent: quotes, action: { tool: 'payments', operation: 'refund', target: quotes.slice(0, 1000), parameters: params }, decision: { ...DECISION, reasons: [quotes.slice(0, 2000)] } }),
    );
    expect(size(both.blocks)).toBeLessThanOrEqual(LIMITS.message);
    expect(JSON.stringify(both.blocks)).toContain('Parameters\\n…');
    const intent = (both.blocks.find((b) => b.type === 'section') as any).text.text as string;
    expect(intent.length).toBeLessThan(2900);
    expect(intent.length).toBeGreaterThan(200);

    expect(JSON.stringify(renderCard(cardOf()).blocks)).not.toContain('cut short');
  });

  it('stays under every Slack limit in the worst case, decided or not', () => {
    const evil = '&<\u0001\u202E'.repeat(1000);
    const worst = {
      agent: 'a'.repeat(64),
      intent: evil.repeat(2).slice(0, 4000),
      // About what the 64 KiB body limit lets through.
      action: { tool: evil.slice(0, 100), operation: evil.slice(0, 100), target: evil.slice(0, 1000), parameters: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`${evil.slice(0, 50)}${i}`, evil])) },
      context: { data_sensitivity: 'restricted' as const, destination: 'external' as const, environment: evil.slice(0, 64), reversible: false, value: { amount: 1e21, currency: evil.slice(0, 8) } },
      decision: { ...DECISION, rule: 'r'.repeat(200), reasons: [evil, evil] },
    };
    for (const c of [
      cardOf(worst),
      cardOf({ ...worst, status: 'cancelled', resolution: { status: 'cancelled', by: 'agent:billing-agent', reason: evil, at: 1_800_000_000_000 } }),
    ]) {
      const { text, blocks } = renderCard(c);
      expect(size(blocks)).toBeLessThanOrEqual(LIMITS.message);
      expect(blocks.length).toBeLessThanOrEqual(LIMITS.blocks);
      expect(text.length).toBeLessThanOrEqual(LIMITS.fallback);
      for (const t of texts(blocks)) expect(t.text.length).toBeLessThanOrEqual(LIMITS.section);
      expect(HIDDEN.test(JSON.stringify({ text, blocks }))).toBe(false);
      expect(JSON.stringify(blocks)).toContain('cut short');
    }
  });

  it('renders thread replies as escaped plain text', () => {
    const r = renderReply({ proposalId: 'p', kind: 'cancelled', text: 'Cancelled by agent:x: <!channel> *now*' });
    expect((r.blocks[0] as any).text).toMatchObject({ type: 'plain_text', text: 'Cancelled by agent:x: &lt;!channel&gt; *now*' });
    expect(r.text).not.toMatch(/[<>*]/);
    const hidden = renderReply({ proposalId: 'p', kind: 'cancelled', text: 'Cancelled by agent:x: done\u202E' });
    expect((hidden.blocks[0] as any).text.text).toBe('Cancelled by agent:x: done⟪U+202E⟫');
    expect(hidden.text).toContain('⟪U+202E⟫');
  });
});

describe('denyModal', () => {
  it('requires a reason for high and critical risk only', () => {
    const high = denyModal(card(), { p: 'p_1', c: 'C1', r: true });
    const input = high.blocks.find((b) => b.type === 'input') as any;
    expect(input.optional).toBe(false);
    expect(JSON.parse(high.private_metadata!)).toEqual({ p: 'p_1', c: 'C1', r: true });
    expect(high.title.text.length).toBeLessThanOrEqual(24);
    const medium = denyModal(card({ risk: 'medium' }), { p: 'p_1', c: null, r: false });
    expect((medium.blocks.find((b) => b.type === 'input') as any).optional).toBe(true);
  });

  it('shows hidden characters in the target it repeats', () => {
    const modal = denyModal({ proposalId: 'p_1', action: { tool: 'payments', operation: 'refund', target: 'cus_1\u202Eexe', parameters: {} }, risk: 'high' }, { p: 'p_1', c: null, r: true });
    expect(JSON.stringify(modal)).toContain('cus_1⟪U+202E⟫exe');
    expect(JSON.stringify(modal)).not.toContain('\u202E');
  });
});

describe('Slack request verification', () => {
  const secret = 's3cret';
  const body = 'payload=%7B%7D';
  const req = (ts: number, sig: string) => ({ headers: { 'x-slack-request-timestamp': String(ts), 'x-slack-signature': sig } }) as unknown as IncomingMessage;
  const now = 1_800_000_000_000;
  const ts = now / 1000;

  it('accepts Slack v0 signatures within five minutes', () => {
    expect(verificationFailure(secret, body, req(ts - 60, slackSignature(secret, ts - 60, body)), now)).toBeNull();
  });

  it('refuses forged, stale, future and missing signatures', () => {
    expect(verificationFailure(secret, body, req(ts, slackSignature('other', ts, body)), now)).toBe('bad signature');
    expect(verificationFailure(secret, `${body}x`, req(ts, slackSignature(secret, ts, body)), now)).toBe('bad signature');
    expect(verificationFailure(secret, body, req(ts - 301, slackSignature(secret, ts - 301, body)), now)).toBe('stale timestamp');
    expect(verificationFailure(secret, body, req(ts + 301, slackSignature(secret, ts + 301, body)), now)).toBe('timestamp in the future');
    expect(verificationFailure(secret, body, { headers: {} } as unknown as IncomingMessage, now)).toBe('missing signature headers');
    expect(verificationFailure(secret, body, req(Number.NaN, 'v0=00'), now)).toBe('malformed timestamp');
  });
});
