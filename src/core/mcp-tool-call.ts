import { canonicalJson, sha256Hex } from './audit.ts';
import { ValidationError } from './errors.ts';
import { parseProposalInput, type ProposalInput } from './proposal.ts';
import { mergeDefaults } from './policy/mcp-servers.ts';
import type { McpServerSpec, ToolCallDefaults } from './policy/model.ts';
import type { UpstreamTool } from './mcp-ports.ts';

// The MCP gateway, pure: how an upstream's tools look to the agent and how a `tools/call`
// becomes a proposal. The agent sees `<server>__<tool>` with one more, optional argument,
// `reason`, which becomes the proposal's intent and is never forwarded.

export const TOOL_SEPARATOR = '__';
export const REASON_ARGUMENT = 'reason';
export const REASON_DESCRIPTION = 'why you are calling this tool; shown to the people who approve';
/** What the major model APIs accept as a tool name (OpenAI's is the narrowest: 64). */
const AGENT_TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function agentToolName(server: string, tool: string): string {
  return `${server}${TOOL_SEPARATOR}${tool}`;
}

/** `payments__refund` → { server: payments, tool: refund }; server names never hold "__". */
export function splitAgentToolName(name: string): { server: string; tool: string } | null {
  const at = name.indexOf(TOOL_SEPARATOR);
  if (at <= 0 || at + TOOL_SEPARATOR.length >= name.length) return null;
  return { server: name.slice(0, at), tool: name.slice(at + TOOL_SEPARATOR.length) };
}

/** The tool as the agent sees it; null when its name cannot be one (too long, odd characters). */
export function agentFacingTool(server: string, tool: UpstreamTool): (UpstreamTool & { execution: { taskSupport: 'optional' } }) | null {
  const name = agentToolName(server, tool.name);
  if (!AGENT_TOOL_NAME.test(name)) return null;
  const schema = tool.inputSchema;
  const properties = typeof schema['properties'] === 'object' && schema['properties'] !== null ? (schema['properties'] as Record<string, unknown>) : {};
  // An upstream that has an argument called `reason` keeps it: the gateway then adds none, and forwards it.
  const inputSchema = REASON_ARGUMENT in properties ? schema : { ...schema, type: 'object', properties: { ...properties, [REASON_ARGUMENT]: { type: 'string', description: REASON_DESCRIPTION } } };
  return {
    ...tool,
    name,
    inputSchema,
    description: tool.description ?? '',
    execution: { taskSupport: 'optional' },
  };
}

/**
 * The arguments to forward and the reason to record. The upstream's own `reason` argument, when
 * it declares one, is forwarded and also shown to people; otherwise `reason` is taken out.
 */
export function splitReason(args: Record<string, unknown>, upstreamHasReason: boolean): { forward: Record<string, unknown>; reason: string | null } {
  const given = args[REASON_ARGUMENT];
  if (given !== undefined && typeof given !== 'string') {
    throw new ValidationError('reason must be text', [{ path: REASON_ARGUMENT, code: 'invalid_type', message: 'must be a string' }]);
  }
  const reason = typeof given === 'string' && given.trim() !== '' ? given.trim().slice(0, 4000) : null;
  if (upstreamHasReason) return { forward: args, reason };
  const { [REASON_ARGUMENT]: _dropped, ...forward } = args;
  return { forward, reason };
}

/** Equal for the same agent, tool and arguments, whatever their order: what attaches a repeated call. */
export function toolCallDigest(agent: string, server: string, tool: string, args: Record<string, unknown>): string {
  return sha256Hex(canonicalJson({ agent, server, tool, args }));
}

function argumentText(args: Record<string, unknown>, name: string | null): string | null {
  if (name === null) return null;
  const v = args[name];
  if (typeof v === 'string' && v.trim() !== '') return v.trim();
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

function amountOf(args: Record<string, unknown>, d: ToolCallDefaults): number | null {
  if (d.value_argument === null) return null;
  const v = args[d.value_argument];
  // Decimal text only: Number() would read "0x10" as 16 and "1e3" as 1000, which the upstream may not.
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n < 0) {
    // A rule on context.value must never read 0 for a value the agent sent but that is not a number.
    if (v === undefined) return 0;
    throw new ValidationError(`${d.value_argument} must be a number that is not negative (the policy reads it as the call's value)`, [
      { path: d.value_argument, code: 'invalid_type', message: 'must be a non-negative number' },
    ]);
  }
  return n;
}

/**
 * The proposal a `tools/call` is: tool = the server, operation = the upstream tool, target =
 * the argument the policy names (else the server), parameters = the forwarded arguments, and
 * context from the policy's defaults for the server and tool. Validated like any proposal.
 */
export function toolCallProposal(server: McpServerSpec, tool: string, forward: Record<string, unknown>, reason: string | null): ProposalInput {
  const d = mergeDefaults(server.defaults, server.tools.get(tool));
  const target = argumentText(forward, d.target_argument) ?? server.name;
  const amount = amountOf(forward, d);
  const currency = argumentText(forward, d.currency_argument) ?? d.currency ?? '';
  return parseProposalInput({
    intent: reason ?? `${agentToolName(server.name, tool)} called without a reason`,
    action: { tool: server.name, operation: tool, target: target.slice(0, 1000), parameters: forward },
    context: {
      ...(d.data_sensitivity === null ? {} : { data_sensitivity: d.data_sensitivity }),
      ...(d.destination === null ? {} : { destination: d.destination }),
      ...(d.environment === null ? {} : { environment: d.environment }),
      ...(d.reversible === null ? {} : { reversible: d.reversible }),
      ...(amount === null ? {} : { value: { amount, currency: currency.slice(0, 8) } }),
    },
  });
}
