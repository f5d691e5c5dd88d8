import { createHash } from 'node:crypto';
import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { PolicyError } from '../errors.ts';
import type { Action, Decision, Effect, ProposalContext, Risk } from '../proposal.ts';
import { policySchema, type OutcomeDocument, type PolicyDocument } from './schema.ts';

export interface OidcSpec {
  readonly issuer: string;
  readonly subject: string;
  readonly audience: string;
}

export interface AgentSpec {
  readonly id: string;
  readonly sponsors: readonly string[];
  readonly secret_env: string | null;
  /** HMAC key read from `secret_env`; not enumerable, so logging the agent never prints it. */
  readonly secret: string | null;
  readonly callback_url: string | null;
  readonly oidc: OidcSpec | null;
}

export interface PersonSpec {
  readonly id: string;
  readonly slack: string | null;
  readonly teams: string | null;
  readonly email: string | null;
  readonly console_key_sha256: string | null;
}

export interface ChannelSpec {
  readonly route: string;
  readonly slack: string | null;
  /** A binding key for `connect`, or the conversation id of `teams_conversation`. */
  readonly teams: string | null;
  readonly console: boolean;
  /** A Teams channel given in the policy rather than bound with `connect`. */
  readonly teams_conversation?: { readonly conversation: string; readonly service_url: string; readonly tenant: string };
}

export interface ExecutorSpec {
  readonly tool: string;
  readonly url: string;
  readonly timeout_ms: number;
}

export interface OutcomeSpec {
  readonly effect: Effect;
  readonly reason: string | null;
  readonly risk: Risk;
  /** Set (with approvers) exactly when effect is approve. */
  readonly route: string | null;
  readonly approvers: string | null;
  readonly approvals: number;
  readonly ttl_ms: number;
}

export interface RuleSpec extends OutcomeSpec {
  readonly name: string;
  readonly when: string;
}

export interface Policy {
  readonly file: string;
  readonly agents: ReadonlyMap<string, AgentSpec>;
  readonly people: ReadonlyMap<string, PersonSpec>;
  readonly groups: ReadonlyMap<string, readonly string[]>;
  readonly channels: ReadonlyMap<string, ChannelSpec>;
  readonly executors: ReadonlyMap<string, ExecutorSpec>;
  readonly rules: readonly RuleSpec[];
  readonly default: OutcomeSpec;
  agentById(id: string): AgentSpec | undefined;
  personByPlatformId(platform: 'slack' | 'teams', userId: string): PersonSpec | undefined;
  isMember(group: string, personId: string): boolean;
  /** A JWT `aud` may be a list: the agent matches when its audience is one of them. */
  agentByOidc(issuer: string, subject: string, audience: string | readonly string[]): AgentSpec | undefined;
}

/** What CEL sees. The context is expected with its defaults already filled in (proposal.ts). */
export interface PolicyInput {
  agent: { id: string; sponsors: readonly string[] };
  intent: string;
  action: Action;
  context: ProposalContext;
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

interface CompiledRule {
  readonly spec: RuleSpec;
  readonly program: ParseResult;
}

// The compiled programs stay private so the exported Policy is plain, frozen data.
const compiledRules = new WeakMap<Policy, readonly CompiledRule[]>();

/**
 * Parses, validates and compiles a policy. `env` supplies agents' secrets; core never reads
 * process.env itself. Every problem is a PolicyError naming the file and, when there is one,
 * the rule.
 */
export function loadPolicy(yamlText: string, file: string, env: Readonly<Record<string, string | undefined>>): Policy {
  const raw = parseYaml(yamlText, file);
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) throw zodToPolicyError(parsed.error, raw, file);
  const doc = parsed.data;
  crossCheck(doc, file);
  const compiled = doc.rules.map((rule) => ({ spec: Object.freeze({ ...rule }), program: compileWhen(rule.name, rule.when, file) }));
  const policy = buildPolicy(doc, file, compiled.map((c) => c.spec), readSecrets(doc, file, env), readConsoleKeys(doc, file, env));
  compiledRules.set(policy, compiled);
  return policy;
}

/** First rule whose `when` is true decides, else the default. A rule that fails to evaluate fails closed. */
export function evaluate(policy: Policy, input: PolicyInput): Decision {
  const rules = compiledRules.get(policy);
  if (rules === undefined) throw new Error('evaluate() needs a policy returned by loadPolicy()');
  const activation = toActivation(input);
  for (const { spec, program } of rules) {
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
  };
}

// A rule that cannot be evaluated might have been the one that denies: people decide
// through the default's route, or, when the default names no approvers, the proposal is denied.
function failClosed(policy: Policy, rule: string, why: string): Decision {
  const base = `rule "${rule}" could not be evaluated: ${why}`;
  const d = policy.default;
  if (d.effect === 'approve') {
    return { ...decide(d, rule, `${base}; people must decide`), risk: 'critical' };
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

function compileWhen(rule: string, when: string, file: string): ParseResult {
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

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const where = first.linePos?.[0];
    const what = (first.message.split('\n')[0] ?? first.code).replace(/ at line \d+, column \d+:?$/, '');
    throw new PolicyError(file, undefined, `YAML syntax error${where ? ` at line ${where.line}, column ${where.col}` : ''}: ${what}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyError(file, undefined, `YAML: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) throw new PolicyError(file, undefined, 'the file is empty');
  return value;
}

function zodToPolicyError(error: z.ZodError, raw: unknown, file: string): PolicyError {
  const lines: string[] = [];
  const rules = new Set<string | undefined>();
  for (const issue of error.issues) {
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    const message = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message;
    for (const path of paths) lines.push(`${path.length === 0 ? '(top level)' : z.core.toDotPath(path)}: ${message}`);
    rules.add(ruleNameAt(issue.path, raw));
  }
  // Name a rule only when every issue is inside that one rule; otherwise the paths say where.
  const rule = rules.size === 1 ? [...rules][0] : undefined;
  const shown = lines.slice(0, 10).join('; ');
  return new PolicyError(file, rule, lines.length > 10 ? `${shown}; and ${lines.length - 10} more` : shown);
}

function ruleNameAt(path: readonly PropertyKey[], raw: unknown): string | undefined {
  if (path[0] === 'default') return 'default';
  if (path[0] !== 'rules' || typeof path[1] !== 'number') return undefined;
  const rules = (raw as { rules?: unknown }).rules;
  const name = Array.isArray(rules) ? (rules[path[1]] as { name?: unknown } | undefined)?.name : undefined;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

function crossCheck(doc: PolicyDocument, file: string): void {
  const fail = (rule: string | undefined, reason: string): never => {
    throw new PolicyError(file, rule, reason);
  };
  const person = (id: string, where: string) => {
    if (!(id in doc.people)) fail(undefined, `${where} names "${id}", who is not listed under people`);
  };

  const agentIds = new Set<string>();
  const oidcKeys = new Set<string>();
  for (const agent of doc.agents) {
    if (agentIds.has(agent.id)) fail(undefined, `agent "${agent.id}" is listed twice`);
    agentIds.add(agent.id);
    for (const sponsor of agent.sponsors) person(sponsor, `agent "${agent.id}" sponsors`);
    if (agent.oidc !== null) {
      const key = oidcKey(agent.oidc.issuer, agent.oidc.subject, agent.oidc.audience);
      if (oidcKeys.has(key)) fail(undefined, `agent "${agent.id}" has the same oidc issuer, subject and audience as another agent`);
      oidcKeys.add(key);
    }
  }

  for (const platform of ['slack', 'teams'] as const) {
    const seen = new Map<string, string>();
    for (const [id, p] of Object.entries(doc.people)) {
      const userId = p[platform];
      if (userId === null) continue;
      const key = platformKey(platform, userId);
      const other = seen.get(key);
      if (other !== undefined) fail(undefined, `people "${other}" and "${id}" have the same ${platform} id`);
      seen.set(key, id);
    }
  }

  for (const [group, members] of Object.entries(doc.groups)) {
    const seen = new Set<string>();
    for (const member of members) {
      person(member, `group "${group}"`);
      if (seen.has(member)) fail(undefined, `group "${group}" lists "${member}" twice`);
      seen.add(member);
    }
  }

  for (const [tool, executor] of Object.entries(doc.executors)) {
    if (executor.timeout_ms <= 0) fail(undefined, `executor "${tool}": timeout must be longer than 0s`);
  }

  const checkOutcome = (o: OutcomeDocument, rule: string) => {
    if (o.effect !== 'approve') return;
    if (o.route === null || !(o.route in doc.channels)) fail(rule, `route "${o.route}" is not listed under channels`);
    const members = o.approvers === null ? undefined : doc.groups[o.approvers];
    if (members === undefined) fail(rule, `approvers "${o.approvers}" is not listed under groups`);
    else if (o.approvals > members.length) {
      fail(rule, `approvals is ${o.approvals} but group "${o.approvers}" has only ${members.length} member(s)`);
    } else {
      // Sponsors never approve their own agent: for some agent the quorum may be out of reach,
      // and its proposals would only ever expire. Any agent can propose anything, so check all.
      for (const agent of doc.agents) {
        const eligible = members.filter((m) => !agent.sponsors.includes(m));
        if (eligible.length < o.approvals) {
          fail(rule, `agent "${agent.id}" could never get ${o.approvals} approvals: its sponsors cannot approve, which leaves ${eligible.length} of group "${o.approvers}"`);
        }
      }
    }
    if (o.ttl_ms < 1000) fail(rule, 'ttl must be at least 1s');
  };
  const names = new Set<string>();
  for (const rule of doc.rules) {
    if (names.has(rule.name)) fail(rule.name, 'another rule has the same name');
    names.add(rule.name);
    checkOutcome(rule, rule.name);
  }
  checkOutcome(doc.default, 'default');
}

function readSecrets(doc: PolicyDocument, file: string, env: Readonly<Record<string, string | undefined>>): Map<string, string> {
  const secrets = new Map<string, string>();
  for (const agent of doc.agents) {
    if (agent.secret_env === null) continue;
    const value = env[agent.secret_env];
    // Name the variable, never echo the value.
    if (value === undefined || value.trim() === '') {
      throw new PolicyError(file, undefined, `agent "${agent.id}": environment variable ${agent.secret_env} is not set or empty`);
    }
    secrets.set(agent.id, value);
  }
  return secrets;
}

// A person's console key may live in a variable (console_key_env); only its hash is kept.
function readConsoleKeys(doc: PolicyDocument, file: string, env: Readonly<Record<string, string | undefined>>): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const [id, p] of Object.entries(doc.people)) {
    if (p.console_key_env === null) continue;
    const value = env[p.console_key_env];
    if (value === undefined || value.trim() === '') {
      throw new PolicyError(file, undefined, `person "${id}": environment variable ${p.console_key_env} is not set or empty`);
    }
    hashes.set(id, createHash('sha256').update(value.trim()).digest('hex'));
  }
  return hashes;
}

function buildPolicy(doc: PolicyDocument, file: string, rules: readonly RuleSpec[], secrets: Map<string, string>, consoleKeys: Map<string, string>): Policy {
  const agents = new Map<string, AgentSpec>();
  const byOidc = new Map<string, AgentSpec>();
  for (const a of doc.agents) {
    const agent = {
      id: a.id,
      sponsors: Object.freeze([...a.sponsors]),
      secret_env: a.secret_env,
      callback_url: a.callback_url,
      oidc: a.oidc === null ? null : Object.freeze({ ...a.oidc }),
    } as AgentSpec;
    Object.defineProperty(agent, 'secret', { value: secrets.get(a.id) ?? null, enumerable: false });
    agents.set(a.id, Object.freeze(agent));
    if (a.oidc !== null) byOidc.set(oidcKey(a.oidc.issuer, a.oidc.subject, a.oidc.audience), agent);
  }

  const people = new Map<string, PersonSpec>();
  const byPlatform = new Map<string, PersonSpec>();
  for (const [id, { console_key_env: _env, ...p }] of Object.entries(doc.people)) {
    const person: PersonSpec = Object.freeze({ id, ...p, console_key_sha256: p.console_key_sha256 ?? consoleKeys.get(id) ?? null });
    people.set(id, person);
    if (p.slack !== null) byPlatform.set(platformKey('slack', p.slack), person);
    if (p.teams !== null) byPlatform.set(platformKey('teams', p.teams), person);
  }

  const groups = new Map(Object.entries(doc.groups).map(([name, members]) => [name, Object.freeze([...members])] as const));
  const channels = new Map(Object.entries(doc.channels).map(([route, c]) => [route, Object.freeze({ route, ...c })] as const));
  const executors = new Map(Object.entries(doc.executors).map(([tool, e]) => [tool, Object.freeze({ tool, ...e })] as const));

  return Object.freeze({
    file,
    agents,
    people,
    groups,
    channels,
    executors,
    rules: Object.freeze([...rules]),
    default: Object.freeze({ ...doc.default }),
    agentById: (id: string) => agents.get(id),
    personByPlatformId: (platform: 'slack' | 'teams', userId: string) => byPlatform.get(platformKey(platform, userId)),
    isMember: (group: string, personId: string) => groups.get(group)?.includes(personId) ?? false,
    agentByOidc: (issuer: string, subject: string, audience: string | readonly string[]) => {
      for (const aud of typeof audience === 'string' ? [audience] : audience) {
        const agent = byOidc.get(oidcKey(issuer, subject, aud));
        if (agent !== undefined) return agent;
      }
      return undefined;
    },
  });
}

// Teams ids are AAD object ids (GUIDs), whose case varies between APIs; Slack ids are exact.
function platformKey(platform: 'slack' | 'teams', userId: string): string {
  return `${platform}:${platform === 'teams' ? userId.toLowerCase() : userId}`;
}

function oidcKey(issuer: string, subject: string, audience: string): string {
  return JSON.stringify([issuer, subject, audience]);
}
