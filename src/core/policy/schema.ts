import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { RISKS } from '../proposal.ts';

// The shape of the policy file. Every object is strict: a misspelt key (`aprovers`) is an
// error rather than a silently ignored line that would weaken a rule. Cross-references
// (routes, groups, people) and CEL are checked in policy.ts, which can name the rule.

export const EFFECTS = ['allow', 'deny', 'approve'] as const;
export const DEFAULT_RISK = 'medium';
export const DEFAULT_APPROVALS = 1;
export const DEFAULT_TTL_MS = 15 * 60_000;
export const DEFAULT_EXECUTOR_TIMEOUT_MS = 10_000;

// Ids travel in HTTP headers, Redis keys and chat buttons: keep them boring.
const id = (what: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, `${what} must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`);

const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const duration = z.string().transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const agentSchema = z
  .strictObject({
    id: id('agent id'),
    sponsors: z.array(id('person id')).default([]),
    secret_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    callback_url: httpUrl.optional(),
    oidc: z
      .strictObject({
        issuer: httpUrl,
        subject: text(500),
        audience: text(500),
      })
      .optional(),
  })
  .superRefine((agent, ctx) => {
    if (agent.secret_env === undefined && agent.oidc === undefined) {
      ctx.addIssue({ code: 'custom', message: 'an agent needs secret_env (request signing) or oidc (bearer tokens), or both' });
    }
  })
  .transform((agent) => ({
    id: agent.id,
    sponsors: agent.sponsors,
    secret_env: agent.secret_env ?? null,
    callback_url: agent.callback_url ?? null,
    oidc: agent.oidc ?? null,
  }));

const personSchema = z
  .strictObject({
    slack: text(100).optional(),
    teams: text(200).optional(),
    email: z.email().optional(),
    console_key_sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (the SHA-256 of the console key)')
      .transform((hex) => hex.toLowerCase())
      .optional(),
    // The console key itself, read from this variable (hashed at load); for keys kept in a secret store.
    console_key_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
  })
  .superRefine((p, ctx) => {
    if (p.console_key_sha256 !== undefined && p.console_key_env !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'give console_key_sha256 or console_key_env, not both' });
    }
  })
  .transform((p) => ({
    slack: p.slack ?? null,
    teams: p.teams ?? null,
    email: p.email ?? null,
    console_key_sha256: p.console_key_sha256 ?? null,
    console_key_env: p.console_key_env ?? null,
  }));

// Teams: a key that `@countersign connect <route>` binds at run time (stored in Redis), or
// the channel itself, fixed here (`conversation` is the channel's `19:…@thread…` id).
const teamsChannelSchema = z.union([
  text(200),
  z.strictObject({ conversation: text(300), service_url: httpUrl, tenant: text(100) }),
]);

const channelSchema = z
  .strictObject({
    slack: text(100).optional(),
    teams: teamsChannelSchema.optional(),
    console: z.boolean().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.slack === undefined && c.teams === undefined && c.console !== true) {
      ctx.addIssue({ code: 'custom', message: 'a channel must list at least one platform (slack, teams or console: true)' });
    }
  })
  .transform((c) => ({
    slack: c.slack ?? null,
    // A fixed channel's address is its conversation id; the Teams adapter finds the rest below.
    teams: typeof c.teams === 'object' ? c.teams.conversation : (c.teams ?? null),
    console: c.console ?? false,
    ...(typeof c.teams === 'object' ? { teams_conversation: { ...c.teams } } : {}),
  }));

const executorSchema = z
  .strictObject({
    url: httpUrl,
    timeout: duration.optional(),
  })
  .transform((e) => ({ url: e.url, timeout_ms: e.timeout ?? DEFAULT_EXECUTOR_TIMEOUT_MS }));

// Shared by rules and the default. Approval settings on an allow/deny outcome would be
// ignored, which usually means the author misunderstood the rule: refuse them.
const outcomeFields = {
  effect: z.enum(EFFECTS),
  reason: text(1000).optional(),
  risk: z.enum(RISKS).optional(),
  route: id('route').optional(),
  approvers: id('group').optional(),
  approvals: z.number().int('must be a whole number').min(1, 'must be at least 1').max(100).optional(),
  ttl: duration.optional(),
};

interface RawOutcome {
  effect: (typeof EFFECTS)[number];
  reason?: string | undefined;
  risk?: (typeof RISKS)[number] | undefined;
  route?: string | undefined;
  approvers?: string | undefined;
  approvals?: number | undefined;
  ttl?: number | undefined;
}

function checkOutcome(o: RawOutcome, ctx: z.RefinementCtx): void {
  if (o.effect === 'approve') {
    for (const key of ['route', 'approvers'] as const) {
      if (o[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when effect is approve' });
    }
    return;
  }
  for (const key of ['route', 'approvers', 'approvals', 'ttl'] as const) {
    if (o[key] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [key], message: `only applies to effect approve, not ${o.effect}` });
    }
  }
}

function normaliseOutcome(o: RawOutcome) {
  return {
    effect: o.effect,
    reason: o.reason ?? null,
    risk: o.risk ?? DEFAULT_RISK,
    route: o.route ?? null,
    approvers: o.approvers ?? null,
    approvals: o.approvals ?? DEFAULT_APPROVALS,
    ttl_ms: o.ttl ?? DEFAULT_TTL_MS,
  };
}

const ruleSchema = z
  .strictObject({
    name: id('rule name').refine((n) => n !== 'default', '"default" is reserved for the default outcome'),
    // `when: true` is read by YAML as a boolean; a catch-all rule is legitimate, so accept it.
    when: z.union([text(4000), z.boolean()]).transform(String),
    ...outcomeFields,
  })
  .superRefine(checkOutcome)
  .transform((r) => ({ name: r.name, when: r.when, ...normaliseOutcome(r) }));

const defaultSchema = z.strictObject(outcomeFields).superRefine(checkOutcome).transform(normaliseOutcome);

// `rules:` with every entry commented out is YAML null: read it as an empty section.
const section = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === null ? undefined : v), schema);

export const policySchema = z.strictObject({
  version: z.literal(1, 'must be 1'),
  agents: section(z.array(agentSchema).default([])),
  people: section(z.record(id('person id'), personSchema).default({})),
  groups: section(z.record(id('group name'), z.array(id('person id'))).default({})),
  channels: section(z.record(id('route'), channelSchema).default({})),
  executors: section(z.record(text(100), executorSchema).default({})),
  rules: section(z.array(ruleSchema).default([])),
  default: defaultSchema,
});

export type PolicyDocument = z.output<typeof policySchema>;
export type AgentDocument = PolicyDocument['agents'][number];
export type PersonDocument = PolicyDocument['people'][string];
export type ChannelDocument = PolicyDocument['channels'][string];
export type ExecutorDocument = PolicyDocument['executors'][string];
export type RuleDocument = PolicyDocument['rules'][number];
export type OutcomeDocument = PolicyDocument['default'];
