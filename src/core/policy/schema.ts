import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { ID_PATTERN, ID_RULE } from '../ids.ts';
import { RISKS } from '../proposal.ts';
import { DEFAULT_EXECUTOR_KIND, type PolicyExtensions } from './extensions.ts';
import { checkEscalation, escalationFields, ESCALATION_KEYS, normaliseEscalation, type RawEscalation } from './escalation-schema.ts';

import { aggregationSchema, limitsSchema, ruleLimitsSchema } from './fatigue-schema.ts';
import { DEFAULT_AGGREGATION, DEFAULT_LIMITS } from './fatigue.ts';

// The shape of the policy file. Every object is strict: a misspelt key (`aprovers`) is an
// error rather than a silently ignored line that would weaken a rule. Cross-references
// (routes, groups, people) and CEL are checked in load.ts, which can name the rule.

export const EFFECTS = ['allow', 'deny', 'approve'] as const;
export const DEFAULT_RISK = 'medium';
export const DEFAULT_APPROVALS = 1;
export const DEFAULT_TTL_MS = 15 * 60_000;
export const DEFAULT_EXECUTOR_TIMEOUT_MS = 10_000;
export const DEFAULT_CREDENTIAL_TTL_MS = 10 * 60_000;

export { ID_PATTERN, ID_RULE };
const id = (what: string) => z.string().regex(ID_PATTERN, `${what} must be ${ID_RULE}`);

export const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

export const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const duration = z.string().transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A key that names an environment variable (`secret_env`, a platform's `*_env`). */
export const envVariableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

const sha256HexSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be the 64 hex digits of a SHA-256 (`printf %s "$KEY" | sha256sum`)')
  .transform((v) => v.toLowerCase());

const agentSchema = z
  .strictObject({
    id: id('agent id'),
    sponsors: z.array(id('person id')).default([]),
    secret_env: envVariableName.optional(),
    callback_url: httpUrl.optional(),
    // The MCP gateway's bearer key: its hash in the policy, or the key itself in the environment.
    mcp_key_sha256: sha256HexSchema.optional(),
    mcp_key_env: envVariableName.optional(),
    oidc: z
      .strictObject({
        issuer: httpUrl,
        subject: text(500),
        audience: text(500),
      })
      .optional(),
  })
  .superRefine((agent, ctx) => {
    if (agent.secret_env === undefined && agent.oidc === undefined && agent.mcp_key_sha256 === undefined && agent.mcp_key_env === undefined) {
      ctx.addIssue({ code: 'custom', message: 'an agent needs secret_env (request signing), oidc (bearer tokens) or an MCP key (mcp_key_sha256 or mcp_key_env)' });
    }
    if (agent.mcp_key_sha256 !== undefined && agent.mcp_key_env !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['mcp_key_env'], message: 'give mcp_key_sha256 or mcp_key_env, not both' });
    }
  })
  .transform((agent) => ({
    id: agent.id,
    sponsors: agent.sponsors,
    secret_env: agent.secret_env ?? null,
    callback_url: agent.callback_url ?? null,
    oidc: agent.oidc ?? null,
    mcp_key_sha256: agent.mcp_key_sha256 ?? null,
    mcp_key_env: agent.mcp_key_env ?? null,
  }));

// People, channels and executors are open: each platform and executor kind adds its own keys
// (extensions.ts). Their entries are still strict: a key no extension owns is an error.
function personSchema(ext: PolicyExtensions) {
  return z
    .strictObject({ email: z.email().optional(), ...ownedKeys(ext.platforms.map((p) => [p.id, p.personKeys]), 'person') })
    .transform(({ email, ...values }) => ({ email: email ?? null, values: values as Record<string, unknown> }));
}

function channelSchema(ext: PolicyExtensions) {
  return z.strictObject(ownedKeys(ext.platforms.map((p) => [p.id, p.channelKeys]), 'channel')).transform((values) => values as Record<string, unknown>);
}

// One strict shape per kind, chosen by `kind` (webhook when absent).
function executorSchema(ext: PolicyExtensions) {
  const shapes = ext.executors.map((k) =>
    z
      .strictObject({ kind: z.literal(k.kind), timeout: duration.optional(), ...k.keys })
      .transform(({ kind, timeout, ...settings }) => ({ kind: kind as string, timeout_ms: timeout ?? DEFAULT_EXECUTOR_TIMEOUT_MS, settings: settings as Record<string, unknown> })),
  );
  const [first, ...rest] = shapes;
  if (first === undefined) return z.never({ error: 'no executor kinds are available' });
  const known = ext.executors.map((k) => k.kind).join(', ');
  return z.preprocess(
    (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) && !('kind' in v) ? { ...v, kind: DEFAULT_EXECUTOR_KIND } : v),
    z.union([first, ...rest], { error: (issue) => (issue.code === 'invalid_union' ? `kind must be one of: ${known} (and the keys that kind takes)` : undefined) }),
  );
}

// One strict shape per credential kind, chosen by `kind` (required: a login is never made by default).
function credentialSchema(ext: PolicyExtensions) {
  const kinds = ext.credentials ?? [];
  const shapes = kinds.map((k) =>
    z.strictObject({ kind: z.literal(k.kind), ...k.keys }).transform(({ kind, ...settings }) => ({ kind: kind as string, settings: settings as Record<string, unknown> })),
  );
  const [first, ...rest] = shapes;
  if (first === undefined) return z.never({ error: 'no credential kinds are available' });
  const known = kinds.map((k) => k.kind).join(', ');
  return z.union([first, ...rest], { error: (issue) => (issue.code === 'invalid_union' ? `kind must be one of: ${known} (and the keys that kind takes)` : undefined) });
}

/** Every extension's keys in one shape; two extensions claiming one key is a wiring bug. */
function ownedKeys(entries: [string, z.ZodRawShape][], where: string): z.ZodRawShape {
  const out: Record<string, z.core.$ZodType> = {};
  const owner = new Map<string, string>();
  for (const [id, shape] of entries) {
    for (const [key, schema] of Object.entries(shape)) {
      const other = owner.get(key);
      if (other !== undefined) throw new Error(`platforms "${other}" and "${id}" both claim the ${where} key "${key}"`);
      owner.set(key, id);
      out[key] = schema;
    }
  }
  return out;
}

// The MCP gateway's upstreams (`mcp.servers`). A credential is `{ env: NAME, prefix? }`: read
// from the secret source at call time and never written anywhere else.
const secretRef = z.strictObject({ env: envVariableName, prefix: z.string().max(100).default('') });
const upstreamValue = z.union([z.string().max(8000), secretRef], { error: 'must be text or { env: NAME, prefix?: "…" }' });
// Tool names the major model APIs accept are [A-Za-z0-9_-]; "__" joins server and tool.
// No "__" and no trailing "_": `a_` + `__` + `b` would read back as server `a`, tool `_b`.
export const MCP_SERVER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?![_]|$)){0,29}$/;
const argumentName = z.string().min(1).max(200);

const toolCallDefaults = {
  target: argumentName.optional(),
  context: z
    .strictObject({
      data_sensitivity: z.enum(['public', 'internal', 'confidential', 'restricted']).optional(),
      destination: z.enum(['internal', 'external']).optional(),
      environment: text(64).optional(),
      reversible: z.boolean().optional(),
      value: z
        .strictObject({ amount_argument: argumentName, currency: z.string().trim().max(8).optional(), currency_argument: argumentName.optional() })
        .refine((v) => v.currency === undefined || v.currency_argument === undefined, 'give currency or currency_argument, not both')
        .optional(),
    })
    .optional(),
};

export type ToolCallDefaultsDocument = z.output<z.ZodObject<typeof toolCallDefaults>>;

const mcpServerSchema = z
  .strictObject({
    url: httpUrl.optional(),
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,100}$/, 'must be a header name'), upstreamValue).optional(),
    command: z.array(z.string().min(1).max(4000)).min(1, 'must name the program to run').optional(),
    env: z.record(envVariableName, upstreamValue).optional(),
    cwd: z.string().min(1).optional(),
    timeout: duration.optional(),
    ...toolCallDefaults,
    tools: z.record(z.string().min(1).max(128), z.strictObject(toolCallDefaults)).optional(),
  })
  .superRefine((s, ctx) => {
    if ((s.url === undefined) === (s.command === undefined)) ctx.addIssue({ code: 'custom', message: 'an MCP server needs url (Streamable HTTP) or command (stdio), not both' });
    if (s.url !== undefined && (s.env !== undefined || s.cwd !== undefined)) ctx.addIssue({ code: 'custom', message: 'env and cwd are for command (stdio) servers; an url server takes headers' });
    if (s.command !== undefined && s.headers !== undefined) ctx.addIssue({ code: 'custom', message: 'headers are for url servers; a command (stdio) server takes env' });
  });

export type McpServerDocument = z.output<typeof mcpServerSchema>;

const mcpSchema = z.strictObject({
  servers: z
    .record(z.string().regex(MCP_SERVER_NAME, 'an MCP server name must be 1-30 letters, digits, "-" or single "_" not at the end (its tools are named <server>__<tool>)'), mcpServerSchema)
    .default({}),
});

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
  // Approvals count only from a fresh sign-in (lifecycle.ts STEP_UP_WINDOW_MS): for actions where
  // a chat account taken over, or a laptop left open, must not be enough to approve.
  step_up: z.boolean().optional(),
  // A login made for the task (a `credentials:` entry) once it may run, removed when it ends.
  credentials: z.strictObject({ issuer: id('credential issuer'), ttl: duration.optional() }).optional(),
  // Keys of action.parameters an approver may change before approving (src/core/revision.ts).
  editable: z.array(text(200)).min(1, 'must name at least one parameter').max(50).optional(),
  // When nobody answers: reminders, escalation steps, deny or expire at the deadline (escalation-schema.ts).
  ...escalationFields(duration),
};

interface RawOutcome extends RawEscalation {
  effect: (typeof EFFECTS)[number];
  reason?: string | undefined;
  risk?: (typeof RISKS)[number] | undefined;
  route?: string | undefined;
  approvers?: string | undefined;
  approvals?: number | undefined;
  ttl?: number | undefined;
  step_up?: boolean | undefined;
  credentials?: { issuer: string; ttl?: number | undefined } | undefined;
  editable?: string[] | undefined;
}

function checkOutcome(o: RawOutcome, ctx: z.RefinementCtx): void {
  if (o.effect === 'deny' && o.credentials !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['credentials'], message: 'only applies to effect allow or approve, not deny' });
  }
  if (o.effect === 'approve') {
    for (const key of ['route', 'approvers'] as const) {
      if (o[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when effect is approve' });
    }
    const seen = new Set<string>();
    for (const [i, key] of (o.editable ?? []).entries()) {
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['editable', i], message: `names "${key}" twice` });
      seen.add(key);
    }
    checkEscalation(o, o.ttl ?? DEFAULT_TTL_MS, ctx);
    return;
  }
  for (const key of ['route', 'approvers', 'approvals', 'ttl', 'step_up', 'editable', ...ESCALATION_KEYS] as const) {
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
    step_up: o.step_up ?? false,
    credentials: o.credentials === undefined ? null : { issuer: o.credentials.issuer, ttl_ms: o.credentials.ttl ?? DEFAULT_CREDENTIAL_TTL_MS },
    editable: o.editable ?? null,
    ...normaliseEscalation(o, o.approvers ?? null),
  };
}

const ruleSchema = z
  .strictObject({
    name: id('rule name').refine((n) => n !== 'default', '"default" is reserved for the default outcome'),
    // `when: true` is read by YAML as a boolean; a catch-all rule is legitimate, so accept it.
    when: z.union([text(4000), z.boolean()]).transform(String),
    ...outcomeFields,
    // Approval fatigue (fatigue.ts): this rule's own per-agent limits; `aggregate: false` judges its proposals alone.
    limits: ruleLimitsSchema.optional(),
    aggregate: z.boolean().optional(),
  })
  .superRefine(checkOutcome)
  .transform((r) => ({ name: r.name, when: r.when, ...normaliseOutcome(r), limits: r.limits ?? null, aggregate: r.aggregate ?? true }));

const defaultSchema = z.strictObject(outcomeFields).superRefine(checkOutcome).transform(normaliseOutcome);

// `rules:` with every entry commented out is YAML null: read it as an empty section.
const section = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === null ? undefined : v), schema);

/** The whole file, with the keys the wired platforms and executor kinds add. */
export function policySchema(ext: PolicyExtensions) {
  return z.strictObject({
    version: z.literal(1, 'must be 1'),
    agents: section(z.array(agentSchema).default([])),
    people: section(z.record(id('person id'), personSchema(ext)).default({})),
    groups: section(z.record(id('group name'), z.array(id('person id'))).default({})),
    channels: section(z.record(id('route'), channelSchema(ext)).default({})),
    executors: section(z.record(text(100), executorSchema(ext)).default({})),
    mcp: section(mcpSchema.default({ servers: {} })),
    credentials: section(z.record(id('credential name'), credentialSchema(ext)).default({})),
    rules: section(z.array(ruleSchema).default([])),
    default: defaultSchema,
    limits: section(limitsSchema.default(DEFAULT_LIMITS)),
    aggregation: section(aggregationSchema.default(DEFAULT_AGGREGATION)),
  });
}

export type PolicyDocument = z.output<ReturnType<typeof policySchema>>;
export type OutcomeDocument = PolicyDocument['default'];
