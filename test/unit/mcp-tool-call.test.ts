import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.ts';
import type { UpstreamTool } from '../../src/core/mcp-ports.ts';
import {
  REASON_DESCRIPTION,
  agentFacingTool,
  agentToolName,
  splitAgentToolName,
  splitReason,
  toolCallDigest,
  toolCallProposal,
} from '../../src/core/mcp-tool-call.ts';
import type { McpServerSpec, ToolCallDefaults } from '../../src/core/policy/model.ts';

// The gateway's pure half: how upstream tools look to the agent and how a call becomes a
// proposal. Everything here is what the policy and the approvers end up reading.

const NONE: ToolCallDefaults = {
  target_argument: null,
  data_sensitivity: null,
  destination: null,
  environment: null,
  reversible: null,
  value_argument: null,
  currency: null,
  currency_argument: null,
};

function server(defaults: Partial<ToolCallDefaults> = {}, tools: Record<string, Partial<ToolCallDefaults>> = {}): McpServerSpec {
  return {
    name: 'payments',
    transport: { kind: 'http', url: 'https://payments.example/mcp', headers: new Map() },
    timeout_ms: 30_000,
    defaults: { ...NONE, ...defaults },
    tools: new Map(Object.entries(tools).map(([t, d]) => [t, { ...NONE, ...d }] as const)),
  };
}

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

describe('agent tool names', () => {
  it('joins server and tool with "__" and splits at the first "__"', () => {
    expect(agentToolName('payments', 'refund')).toBe('payments__refund');
    expect(splitAgentToolName('payments__refund')).toEqual({ server: 'payments', tool: 'refund' });
    // Server names never hold "__", so any later "__" belongs to the tool.
    expect(splitAgentToolName('payments__refund__v2')).toEqual({ server: 'payments', tool: 'refund__v2' });
    expect(splitAgentToolName(agentToolName('pay-ments_1', 'list_all__items'))).toEqual({ server: 'pay-ments_1', tool: 'list_all__items' });
    // A tool whose own name starts with "_" still round-trips: the separator is the first two.
    expect(splitAgentToolName(agentToolName('a', '_b'))).toEqual({ server: 'a', tool: '_b' });
  });

  it.each(['payments', '__refund', 'payments__', '', '__'])('refuses %j, which names no server and tool', (name) => {
    expect(splitAgentToolName(name)).toBeNull();
  });
});

describe('agentFacingTool', () => {
  const refund: UpstreamTool = {
    name: 'refund',
    title: 'Refund',
    description: 'refund a charge',
    inputSchema: { type: 'object', properties: { charge: { type: 'string' }, amount: { type: 'number' } }, required: ['charge', 'amount'] },
    annotations: { destructiveHint: true },
  };

  it('adds an optional `reason` argument, keeps the rest, and says tasks are optional', () => {
    const before = structuredClone(refund);
    const t = agentFacingTool('payments', refund);
    expect(t).not.toBeNull();
    expect(t!.name).toBe('payments__refund');
    expect(t!.title).toBe('Refund');
    expect(t!.description).toBe('refund a charge');
    expect(t!.annotations).toEqual({ destructiveHint: true });
    expect(t!.execution).toEqual({ taskSupport: 'optional' });
    expect(t!.inputSchema).toEqual({
      type: 'object',
      properties: { charge: { type: 'string' }, amount: { type: 'number' }, reason: { type: 'string', description: REASON_DESCRIPTION } },
      required: ['charge', 'amount'],
    });
    // Never required: an agent that sends no reason still calls the tool.
    expect(t!.inputSchema['required']).not.toContain('reason');
    // The upstream's own listing (cached) is left as it was.
    expect(refund).toEqual(before);
  });

  it('gives a schema without properties an object with only `reason`, and a missing description an empty one', () => {
    const t = agentFacingTool('payments', { name: 'ping', inputSchema: { type: 'object' } });
    expect(t!.inputSchema).toEqual({ type: 'object', properties: { reason: { type: 'string', description: REASON_DESCRIPTION } } });
    expect(t!.description).toBe('');
    expect(t!.inputSchema['required']).toBeUndefined();
  });

  it("keeps an upstream's own `reason` argument as the upstream declared it", () => {
    const schema = { type: 'object', properties: { reason: { type: 'string', enum: ['fraud', 'duplicate'] } }, required: ['reason'] };
    const t = agentFacingTool('payments', { name: 'dispute', inputSchema: schema });
    expect(t!.inputSchema).toEqual(schema);
    expect((t!.inputSchema['properties'] as Record<string, unknown>)['reason']).toEqual({ type: 'string', enum: ['fraud', 'duplicate'] });
  });

  it('leaves out a tool whose agent-facing name the model APIs would refuse', () => {
    const server30 = 's'.repeat(30);
    expect(agentFacingTool(server30, { name: 't'.repeat(32), inputSchema: {} })?.name).toBe(`${server30}__${'t'.repeat(32)}`); // 64
    expect(agentFacingTool(server30, { name: 't'.repeat(33), inputSchema: {} })).toBeNull(); // 65
    for (const name of ['get.item', 'list items', 'résumé', 'a/b', 'x:y']) {
      expect(agentFacingTool('payments', { name, inputSchema: {} })).toBeNull();
    }
    expect(agentFacingTool('payments', { name: 'Get-Item_2', inputSchema: {} })?.name).toBe('payments__Get-Item_2');
  });
});

describe('splitReason', () => {
  it('takes `reason` out of what is forwarded, trimmed', () => {
    expect(splitReason({ charge: 'ch_1', reason: '  duplicate charge  ' }, false)).toEqual({ forward: { charge: 'ch_1' }, reason: 'duplicate charge' });
    expect(splitReason({ charge: 'ch_1' }, false)).toEqual({ forward: { charge: 'ch_1' }, reason: null });
  });

  it('reads a blank reason as none, and still does not forward it', () => {
    expect(splitReason({ charge: 'ch_1', reason: '   ' }, false)).toEqual({ forward: { charge: 'ch_1' }, reason: null });
    expect(splitReason({ reason: '' }, false)).toEqual({ forward: {}, reason: null });
  });

  it('forwards `reason` when the upstream declares it, and still records it', () => {
    const args = { charge: 'ch_1', reason: ' fraud ' };
    expect(splitReason(args, true)).toEqual({ forward: { charge: 'ch_1', reason: ' fraud ' }, reason: 'fraud' });
  });

  it.each([42, true, null, { why: 'x' }, ['x']])('refuses a reason that is not text (%j), naming the argument', (reason) => {
    for (const upstreamHasReason of [false, true]) {
      const err = validationError(() => splitReason({ charge: 'ch_1', reason }, upstreamHasReason));
      expect(err.issues.map((i) => i.path)).toEqual(['reason']);
    }
  });

  it('keeps at most 4000 characters of the reason (the longest intent a proposal takes)', () => {
    expect(splitReason({ reason: 'r'.repeat(5000) }, false).reason).toHaveLength(4000);
  });
});

describe('toolCallDigest', () => {
  const base = toolCallDigest('agent-a', 'payments', 'refund', { charge: 'ch_1', meta: { a: 1, b: [1, 2] } });

  it('is the same for the same call with its keys in another order', () => {
    expect(toolCallDigest('agent-a', 'payments', 'refund', { meta: { b: [1, 2], a: 1 }, charge: 'ch_1' })).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });

  it('differs for another agent, server, tool or argument', () => {
    const others = [
      toolCallDigest('agent-b', 'payments', 'refund', { charge: 'ch_1', meta: { a: 1, b: [1, 2] } }),
      toolCallDigest('agent-a', 'billing', 'refund', { charge: 'ch_1', meta: { a: 1, b: [1, 2] } }),
      toolCallDigest('agent-a', 'payments', 'charge', { charge: 'ch_1', meta: { a: 1, b: [1, 2] } }),
      toolCallDigest('agent-a', 'payments', 'refund', { charge: 'ch_2', meta: { a: 1, b: [1, 2] } }),
      toolCallDigest('agent-a', 'payments', 'refund', { charge: 'ch_1', meta: { a: 1, b: [2, 1] } }),
      toolCallDigest('agent-a', 'payments', 'refund', { charge: 'ch_1', meta: { a: '1', b: [1, 2] } }),
      toolCallDigest('agent-a', 'payments', 'refund', { charge: 'ch_1' }),
    ];
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
  });

  it('does not confuse where the server name ends and the tool name begins', () => {
    expect(toolCallDigest('a', 'x', 'y_z', {})).not.toBe(toolCallDigest('a', 'x_y', 'z', {}));
  });
});

describe('toolCallProposal', () => {
  it('without policy settings: tool = server, operation = tool, target = server, default context, generated intent', () => {
    const p = toolCallProposal(server(), 'refund', { charge: 'ch_1' }, null);
    expect(p.action).toEqual({ tool: 'payments', operation: 'refund', target: 'payments', parameters: { charge: 'ch_1' } });
    expect(p.intent).toBe('payments__refund called without a reason');
    expect(p.context).toEqual({ data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } });
  });

  it('takes the intent from the reason', () => {
    expect(toolCallProposal(server(), 'refund', {}, 'customer asked twice').intent).toBe('customer asked twice');
  });

  it('takes the target from the argument the policy names, else the server; text or a number', () => {
    const s = server({ target_argument: 'charge' });
    expect(toolCallProposal(s, 'refund', { charge: '  ch_9  ' }, null).action.target).toBe('ch_9');
    expect(toolCallProposal(s, 'refund', { charge: 1234 }, null).action.target).toBe('1234');
    expect(toolCallProposal(s, 'refund', {}, null).action.target).toBe('payments');
    for (const charge of ['   ', { id: 'x' }, true, null]) {
      expect(toolCallProposal(s, 'refund', { charge }, null).action.target).toBe('payments');
    }
  });

  it('cuts a target over 1000 characters instead of refusing the call', () => {
    const p = toolCallProposal(server({ target_argument: 'charge' }), 'refund', { charge: 'c'.repeat(1500) }, null);
    expect(p.action.target).toBe('c'.repeat(1000));
    // The argument itself is forwarded whole.
    expect(p.action.parameters['charge']).toBe('c'.repeat(1500));
  });

  it("merges the server's context with the tool's own, the tool's winning", () => {
    const s = server(
      { data_sensitivity: 'confidential', destination: 'external', environment: 'staging', reversible: true },
      { refund: { environment: 'production', reversible: false } },
    );
    expect(toolCallProposal(s, 'refund', {}, null).context).toMatchObject({ data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false });
    expect(toolCallProposal(s, 'lookup', {}, null).context).toMatchObject({ data_sensitivity: 'confidential', destination: 'external', environment: 'staging', reversible: true });
  });

  it('reads the value from the amount argument, a number or numeric text, with a fixed currency', () => {
    const s = server({ value_argument: 'amount', currency: 'EUR' });
    expect(toolCallProposal(s, 'refund', { amount: 125.5 }, null).context.value).toEqual({ amount: 125.5, currency: 'EUR' });
    expect(toolCallProposal(s, 'refund', { amount: ' 40 ' }, null).context.value).toEqual({ amount: 40, currency: 'EUR' });
    expect(toolCallProposal(s, 'refund', { amount: 0 }, null).context.value).toEqual({ amount: 0, currency: 'EUR' });
    // Absent: nothing is being spent.
    expect(toolCallProposal(s, 'refund', {}, null).context.value).toEqual({ amount: 0, currency: 'EUR' });
  });

  it.each([['lots'], [''], [true], [null], [-5], ['-5'], [{ value: 5 }], [[5]], ['Infinity']])(
    'refuses an amount a rule could not read (%j), naming the argument',
    (amount) => {
      const err = validationError(() => toolCallProposal(server({ value_argument: 'amount' }), 'refund', { amount }, null));
      expect(err.issues.map((i) => i.path)).toEqual(['amount']);
      expect(err.message).toContain('amount');
    },
  );

  it('takes the currency from an argument when the policy names one, cut to 8 characters', () => {
    const s = server({ value_argument: 'amount', currency_argument: 'cur' });
    expect(toolCallProposal(s, 'refund', { amount: 5, cur: ' usd ' }, null).context.value).toEqual({ amount: 5, currency: 'usd' });
    expect(toolCallProposal(s, 'refund', { amount: 5 }, null).context.value).toEqual({ amount: 5, currency: '' });
    expect(toolCallProposal(s, 'refund', { amount: 5, cur: 'ABCDEFGHIJ' }, null).context.value?.currency).toBe('ABCDEFGH');
  });

  it("lets a tool that names its own amount argument also decide the currency (the server's is not inherited)", () => {
    const s = server({ value_argument: 'amount', currency: 'EUR' }, { payout: { value_argument: 'sum', currency_argument: 'ccy' } });
    expect(toolCallProposal(s, 'payout', { sum: 7, ccy: 'GBP', amount: 999 }, null).context.value).toEqual({ amount: 7, currency: 'GBP' });
    expect(toolCallProposal(s, 'refund', { sum: 7, amount: 3 }, null).context.value).toEqual({ amount: 3, currency: 'EUR' });
  });

  it('forwards the arguments as the parameters, and refuses what a proposal cannot hold', () => {
    const forward = { charge: 'ch_1', nested: { list: [1, 'two', null] } };
    expect(toolCallProposal(server(), 'refund', forward, 'r').action.parameters).toEqual(forward);
    // A tool name past the proposal's 100 characters is refused like any proposal's operation.
    const err = validationError(() => toolCallProposal(server(), 'o'.repeat(101), {}, 'r'));
    expect(err.issues.map((i) => i.path)).toContain('action.operation');
  });
});
