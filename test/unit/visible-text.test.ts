import { describe, expect, it } from 'vitest';
import { CUT_FLOOR, fitCard, payloadBytes, TextCutter, type TextCut } from '../../src/core/card-fit.ts';
import { buildApprovalCard, truncate } from '../../src/core/card.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { hiddenCharactersNote, showHidden, showHiddenInJson } from '../../src/core/visible-text.ts';

// Hidden characters in what an agent wrote are shown on the card as ⟪U+…⟫, once, in the card
// model every platform renders; the proposal keeps them. And the fitting every renderer uses.

const T0 = Date.parse('2026-11-24T10:00:00Z');

function proposal(overrides: Partial<Proposal> = {}): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Refund invoice 4711',
    action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', parameters: { amount: 420 } },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
    decision: { effect: 'approve', risk: 'high', rule: 'payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 60_000 },
    status: 'pending',
    created_at: T0,
    expires_at: T0 + 60_000,
    approvals: [],
    resolution: null,
    version: 7,
    ...overrides,
  };
}

describe('showHidden', () => {
  it('shows bidi controls, so a reordered target reads as sent', () => {
    expect(showHidden('stripe:cus_1\u202Eelif.exe\u202C')).toBe('stripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫');
    for (const c of ['\u202A', '\u202B', '\u202D', '\u2066', '\u2067', '\u2068', '\u2069', '\u200E', '\u200F', '\u061C']) {
      expect(showHidden(`a${c}b`)).toBe(`a⟪U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}⟫b`);
    }
  });

  it('shows zero-width, control (C0 but tab and newline, DEL, C1) and tag characters', () => {
    expect(showHidden('a\u200Bb\u200Cc\u200Dd\u2060e\uFEFFf')).toBe('a⟪U+200B⟫b⟪U+200C⟫c⟪U+200D⟫d⟪U+2060⟫e⟪U+FEFF⟫f');
    expect(showHidden('\u0000\u0007\r\u001B\u007F\u0085\u009F')).toBe('⟪U+0000⟫⟪U+0007⟫⟪U+000D⟫⟪U+001B⟫⟪U+007F⟫⟪U+0085⟫⟪U+009F⟫');
    expect(showHidden('line one\n\tline two')).toBe('line one\n\tline two');
    expect(showHidden('x\u{E0041}\u{E0042}')).toBe('x⟪U+E0041⟫⟪U+E0042⟫');
    expect(showHidden('a\u2028b\u00ADc\u3164d')).toBe('a⟪U+2028⟫b⟪U+00AD⟫c⟪U+3164⟫d');
  });

  it('shows lone surrogates but keeps pairs, emoji and ordinary text', () => {
    expect(showHidden('a\uD800b\uDC00c')).toBe('a⟪U+D800⟫b⟪U+DC00⟫c');
    expect(showHidden('x\uDBFF')).toBe('x⟪U+DBFF⟫');
    const plain = 'Zahlung 420 € · 支払い · 😀 ❤️ naïve';
    expect(showHidden(plain)).toBe(plain);
  });

  it('cannot be faked: an agent writing ⟪U+202E⟫ itself gets its brackets shown', () => {
    expect(showHidden('⟪U+202E⟫')).toBe('⟪U+27EA⟫U+202E⟪U+27EB⟫');
  });

  it('walks JSON values: keys and strings, nothing else changes', () => {
    const value = { 'k\u202E': ['v\u200B', 1, true, null, { deep: 'x\u0001' }], __proto__x: 'ok' };
    expect(showHiddenInJson(value)).toEqual({ 'k⟪U+202E⟫': ['v⟪U+200B⟫', 1, true, null, { deep: 'x⟪U+0001⟫' }], __proto__x: 'ok' });
    const proto = JSON.parse('{"__proto__": {"a\\u202e": 1}}') as unknown;
    const shown = showHiddenInJson(proto) as Record<string, unknown>;
    expect(Object.keys(shown)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(shown)).toBe(Object.prototype);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 5000; i++) deep = [deep];
    expect(JSON.stringify(showHiddenInJson(deep))).toContain('nested too deeply');
  });

  it('names the characters it showed, once each', () => {
    const seen = new Set<string>();
    showHidden('\u202E\u202E\u200B', seen);
    expect(hiddenCharactersNote(seen)).toBe('Hidden characters in this proposal are shown as ⟪U+…⟫ (here: U+200B, U+202E); they may reorder or hide text.');
    expect(hiddenCharactersNote(new Set())).toBeNull();
  });

  it('truncate never leaves half a mark', () => {
    const shown = showHidden('ab\u202Ecd');
    expect(truncate(shown, 6)).toBe('ab…');
    expect(truncate(shown, 11)).toBe('ab⟪U+202E⟫…');
  });
});

describe('buildApprovalCard', () => {
  it('shows hidden characters in everything outside countersign wrote, and says so; the proposal keeps them', () => {
    const p = proposal({
      intent: 'Refund\u200B now',
      action: { tool: 'pay\u200Bments', operation: 'ref\u2066und', target: 'stripe:cus_1\u202Eelif.exe\u202C', parameters: { ['note\u202E']: 'a\u0001b', nested: [{ x: '\uD800' }] } },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'prod\u200Fuction', reversible: false, value: { amount: 1, currency: 'EU\u200BR' } },
      approvals: [{ person: 'alice', platform: 'slack', vote: 'deny', reason: 'no\u202E', at: T0 }],
      resolution: { status: 'cancelled', by: 'agent:billing\u200B', reason: 'done\u2067', at: T0 },
      status: 'cancelled',
    });
    const before = structuredClone(p);
    const card = buildApprovalCard(p, 'https://c.example/console/proposals/p_1');
    expect(p).toEqual(before);
    expect(card.version).toBe(7);
    expect(card.action.target).toBe('stripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫');
    expect(card.intent).toBe('Refund⟪U+200B⟫ now');
    expect(card.action.tool).toBe('pay⟪U+200B⟫ments');
    expect(card.action.operation).toBe('ref⟪U+2066⟫und');
    expect(card.action.parameters).toEqual({ 'note⟪U+202E⟫': 'a⟪U+0001⟫b', nested: [{ x: '⟪U+D800⟫' }] });
    expect(card.context.environment).toBe('prod⟪U+200F⟫uction');
    expect(card.context.value.currency).toBe('EU⟪U+200B⟫R');
    expect(card.approvals[0]!.reason).toBe('no⟪U+202E⟫');
    expect(card.resolution).toMatchObject({ by: 'agent:billing⟪U+200B⟫', reason: 'done⟪U+2067⟫' });
    expect(card.hiddenNote).toContain('U+0001, U+200B, U+200F, U+202C, U+202E, U+2066, …');
    expect(JSON.stringify(card)).not.toMatch(/[\u0001\u200B\u200F\u202C\u202E\u2066\u2067]|\\ud800/);
  });

  it('leaves clean text alone and has no note', () => {
    const card = buildApprovalCard(proposal(), 'https://c.example/x');
    expect(card.hiddenNote).toBeNull();
    expect(card.action).toEqual(proposal().action);
    expect(card.intent).toBe('Refund invoice 4711');
  });
});

describe('fitCard', () => {
  // A toy layout: the size is the length of what is shown, plus a fixed frame.
  const texts = { parameters: 'p'.repeat(5000), intent: 'i'.repeat(3000), other: 'o'.repeat(1000) };
  const layout = (cut: TextCut) => {
    const c = new TextCutter(cut);
    const shown = { parameters: c.text(texts.parameters, 'parameters'), intent: c.text(texts.intent, 'intent'), other: c.text(texts.other, 'other') };
    return { shown, shortened: c.shortened };
  };
  const size = (out: ReturnType<typeof layout>) => 100 + out.shown.parameters.length + out.shown.intent.length + out.shown.other.length;

  it('keeps a layout that fits whole', () => {
    const out = fitCard(layout, size, 10_000);
    expect(out.shortened).toBe(false);
    expect(out.shown.parameters).toHaveLength(5000);
  });

  it('cuts the parameters first, as little as needed', () => {
    const out = fitCard(layout, size, 6000);
    expect(size(out)).toBeLessThanOrEqual(6000);
    expect(size(out)).toBeGreaterThan(5990);
    expect(out.shown.intent).toHaveLength(3000);
    expect(out.shortened).toBe(true);
  });

  it('then the intent, then the rest, and says it cut', () => {
    const out = fitCard(layout, size, 1500);
    expect(out.shown.parameters).toBe('');
    expect(out.shown.intent).toHaveLength(400);
    expect(out.shown.other).toHaveLength(1000);
    const least = fitCard(layout, size, 10);
    expect(least.shown.intent).toHaveLength(CUT_FLOOR.intent);
    expect(least.shown.other).toHaveLength(CUT_FLOOR.other);
  });

  it('counts a payload as UTF-8 or UTF-16, whichever is larger', () => {
    expect(payloadBytes('abc')).toBe(6);
    expect(payloadBytes('⟪⟪⟪')).toBe(9);
    expect(payloadBytes('😀')).toBe(4);
    expect(payloadBytes('\uD800')).toBe(3);
  });
});
