import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import { PolicyError } from '../errors.ts';
import type { Action, Decision, ProposalContext } from '../proposal.ts';
import type { OutcomeSpec, Policy, RuleSpec } from './model.ts';

// Deciding: each rule's `when` is compiled once (at load) to a CEL program; the first rule
// whose program says true decides, else the default. A rule that fails to evaluate fails closed.

/** What CEL sees. The context is expected with its defaults already filled in (proposal.ts). */
export interface PolicyInput {
  agent: { id: string; sponsors: readonly string[] };
  intent: string;
  action: Action;
  context: ProposalContext;
}

export interface CompiledRule {
  readonly spec: RuleSpec;
  readonly program: ParseResult;
}

/** A policy whose rules are compiled and can decide: what loadPolicy returns. */
export interface CompiledPolicy extends Policy {
  readonly compiled: readonly CompiledRule[];
}

// Declared variables make the type checker refuse `actoin.tool` or `action.tol` at load time
// instead of failing on every proposal. `value.amount` is a double: JS numbers are always
// passed as doubles and cel-js compares double with int literals (`> 10000`) correctly.
let celEnvironment: Environment | undefined;
function cel(): Environment {
  celEnvironment ??= new Environment()
    .registerVariable({ name: 'agent', schema: { id: 'string', sponsors: 'list<string>' } })
    .registerVariable('intent', 'string')
    .registerVariable({
      name: 'action',
      schema: { tool: 'string', operation: 'string', target: 'string', parameters: 'map<string, dyn>' },
    })
    .registerVariable({
      name: 'context',
      schema: {
        data_sensitivity: 'string',
        destination: 'string',
        environment: 'string',
        reversible: 'bool',
        value: { amount: 'double', currency: 'string' },
      },
    });
  return celEnvironment;
}

/** Parses and type-checks one rule's `when`; a PolicyError names the file and the rule. */
export function compileWhen(rule: string, when: string, file: string): ParseResult {
  let program: ParseResult;
  try {
    program = cel().parse(when);
  } catch (err) {
    throw new PolicyError(file, rule, `CEL: ${celMessage(err)}`);
  }
  const checked = program.check();
  if (!checked.valid) throw new PolicyError(file, rule, `CEL: ${celMessage(checked.error)}`);
  // `dyn` (e.g. `action.parameters.flag`) can only be checked per proposal, in evaluate().
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new PolicyError(file, rule, `CEL: "when" must be true or false, but this expression gives a ${checked.type}`);
  }
  return program;
}

/** First rule whose `when` is true decides, else the default. A rule that fails to evaluate fails closed. */
export function evaluate(policy: CompiledPolicy, input: PolicyInput): Decision {
  const activation = toActivation(input);
  for (const { spec, program } of policy.compiled) {
    let result: unknown;
    try {
      result = program(activation);
    } catch (err) {
      return failClosed(policy, spec.name, celSummary(err));
    }
    if (typeof result !== 'boolean') return failClosed(policy, spec.name, `it returned ${typeof result}, not true or false`);
    if (result) return decide(spec, spec.name, spec.reason ?? `matched rule "${spec.name}"`);
  }
  return decide(policy.default, 'default', policy.default.reason ?? 'no rule matched: the default applies');
}

function decide(outcome: OutcomeSpec, rule: string, reason: string): Decision {
  const approve = outcome.effect === 'approve';
  return {
    effect: outcome.effect,
    risk: outcome.risk,
    rule,
    reasons: [reason],
    route: approve ? outcome.route : null,
    approvers: approve ? outcome.approvers : null,
    approvals_required: approve ? outcome.approvals : 0,
    ttl_ms: approve ? outcome.ttl_ms : 0,
    // Only when set: decisions (and their policy_decided entries) without it read as before.
    ...(approve && outcome.step_up ? { step_up: true as const } : {}),
    ...(outcome.credentials === null ? {} : { credentials: { issuer: outcome.credentials.issuer, ttl_ms: outcome.credentials.ttl_ms } }),
    // Copied, so that a policy change never moves a proposal already on its way (escalation.ts).
    ...(approve && outcome.escalate.length > 0 ? { escalate: outcome.escalate.map((s) => ({ ...s })) } : {}),
    ...(approve && outcome.remind_ms !== null ? { remind_ms: outcome.remind_ms } : {}),
    ...(approve && outcome.on_timeout === 'deny' ? { on_timeout: 'deny' as const } : {}),

    ...(approve && outcome.editable !== null ? { editable: [...outcome.editable] } : {}),
  };
}

// A rule that cannot be evaluated might have been the one that denies: people decide
// through the default's route, or, when the default names no approvers, the proposal is denied.
function failClosed(policy: Policy, rule: string, why: string): Decision {
  const base = `rule "${rule}" could not be evaluated: ${why}`;
  const d = policy.default;
  if (d.effect === 'approve') {
    // No edits either: the rule that would have said which parameters may change is unknown.
    return { ...decide({ ...d, editable: null }, rule, `${base}; people must decide`), risk: 'critical' };
  }
  return { ...decide({ ...d, effect: 'deny' }, rule, `${base}; denied because it could not be checked`), risk: 'critical' };
}

function toActivation(input: PolicyInput): Record<string, unknown> {
  const { action, context } = input;
  return {
    agent: { id: input.agent.id, sponsors: [...input.agent.sponsors] },
    intent: input.intent,
    action: { tool: action.tool, operation: action.operation, target: action.target, parameters: action.parameters ?? {} },
    context: {
      data_sensitivity: context.data_sensitivity,
      destination: context.destination,
      environment: context.environment,
      reversible: context.reversible,
      // Number() guards against a bigint sneaking in from a caller that is not the zod schema.
      value: { amount: Number(context.value.amount), currency: context.value.currency },
    },
  };
}

function celMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // The cel-js type checker has no implicit int/double conversion for == and arithmetic.
  const hint = /\b(double \S+ int|int \S+ double)\b/.test(message)
    ? ' (amounts and JSON numbers are doubles in CEL: write the number with a decimal point, e.g. 10000.0)'
    : '';
  const [first = '', ...rest] = message.split('\n');
  return [first + hint, ...rest].join('\n');
}

function celSummary(err: unknown): string {
  if (err instanceof Error) {
    const summary = (err as { summary?: unknown }).summary;
    return typeof summary === 'string' && summary !== '' ? summary : (err.message.split('\n')[0] ?? err.name);
  }
  return String(err);
}
