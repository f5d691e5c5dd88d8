import { parseDocument } from 'yaml';
import { z } from 'zod';
import { PolicyError } from '../errors.ts';
import type { PlatformId } from '../platform.ts';
import { compileWhen, type CompiledPolicy } from './evaluate.ts';
import type { EnvLookup, PlatformAccount, PlatformPolicy, PlatformRoute, PolicyExtensions } from './extensions.ts';
import { createHash } from 'node:crypto';
import type { CredentialSpec } from '../credential-ports.ts';
import type { AgentSpec, ChannelSpec, ExecutorSpec, McpServerSpec, PersonSpec } from './model.ts';
import { readMcpServers, MCP_EXECUTOR_KIND } from './mcp-servers.ts';
import { policySchema, type OutcomeDocument, type PolicyDocument } from './schema.ts';

// Reading a policy file: YAML, then the schema (with the keys the wired platforms and
// executor kinds add), then the cross-references zod cannot see, then CEL. Every problem is
// a PolicyError naming the file and, when there is one, the rule. `env` supplies agents'
// secrets and platforms' `*_env` keys; core never reads process.env itself.

export function loadPolicy(yamlText: string, file: string, env: EnvLookup, ext: PolicyExtensions): CompiledPolicy {
  const raw = parseYaml(yamlText, file);
  const parsed = policySchema(ext).safeParse(raw);
  if (!parsed.success) throw zodToPolicyError(parsed.error, raw, file);
  const doc = parsed.data;
  const people = readPeople(doc, file, env, ext.platforms);
  const channels = readChannels(doc, file, ext.platforms);
  crossCheck(doc, file);
  const compiled = doc.rules.map((rule) => ({ spec: Object.freeze({ ...rule }), program: compileWhen(rule.name, rule.when, file) }));
  const mcpServers = readMcpServers(doc, file, env);
  return buildPolicy(doc, file, ext.platforms, people, channels, compiled, readSecrets(doc, file, env), mcpServers, readMcpKeys(doc, file, env), readCredentials(doc, file, env));
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
    // A record key that fails its pattern: zod says "Invalid key in record"; the pattern's own words say what a key may be.
    const message = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
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

/** Only the keys a platform owns, so it never sees another platform's values. */
function pick(values: Readonly<Record<string, unknown>>, shape: z.ZodRawShape): Record<string, unknown> {
  return Object.fromEntries(Object.keys(shape).map((k) => [k, values[k]]));
}

function readPeople(doc: PolicyDocument, file: string, env: EnvLookup, platforms: readonly PlatformPolicy[]): Map<string, PersonSpec> {
  const people = new Map<string, PersonSpec>();
  for (const [id, p] of Object.entries(doc.people)) {
    const accounts = new Map<PlatformId, PlatformAccount>();
    for (const platform of platforms) {
      let account: PlatformAccount | null;
      try {
        account = platform.person(pick(p.values, platform.personKeys), env);
      } catch (err) {
        throw new PolicyError(file, undefined, `person "${id}": ${(err as Error).message}`);
      }
      if (account !== null) accounts.set(platform.id, Object.freeze({ userId: account.userId, details: Object.freeze({ ...account.details }) }));
    }
    people.set(id, Object.freeze({ id, email: p.email, accounts }));
  }
  return people;
}

function readChannels(doc: PolicyDocument, file: string, platforms: readonly PlatformPolicy[]): Map<string, ChannelSpec> {
  const channels = new Map<string, ChannelSpec>();
  for (const [route, values] of Object.entries(doc.channels)) {
    const targets = new Map<PlatformId, PlatformRoute>();
    for (const platform of platforms) {
      const target = platform.route(pick(values, platform.channelKeys), route);
      if (target !== null) targets.set(platform.id, Object.freeze({ target: target.target, details: Object.freeze({ ...target.details }), bindable: target.bindable === true }));
    }
    if (targets.size === 0) {
      const ids = platforms.map((p) => p.id).join(', ');
      throw new PolicyError(file, undefined, `channels.${route}: a channel must list at least one platform (${ids})`);
    }
    channels.set(route, Object.freeze({ route, targets }));
  }
  return channels;
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
    if (o.credentials !== null) {
      if (!(o.credentials.issuer in doc.credentials)) fail(rule, `credentials issuer "${o.credentials.issuer}" is not listed under credentials`);
      if (o.credentials.ttl_ms < 1000 || o.credentials.ttl_ms > 24 * 3600_000) fail(rule, 'credentials ttl must be from 1s to 24h');
    }
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
    o.escalate.forEach((step, i) => {
      if (!(step.route in doc.channels)) fail(rule, `escalate[${i}].route "${step.route}" is not listed under channels`);
      if (!(step.approvers in doc.groups)) fail(rule, `escalate[${i}].approvers "${step.approvers}" is not listed under groups`);
    });

  };
  const names = new Set<string>();
  for (const rule of doc.rules) {
    if (names.has(rule.name)) fail(rule.name, 'another rule has the same name');
    names.add(rule.name);
    checkOutcome(rule, rule.name);
  }
  checkOutcome(doc.default, 'default');
}

function readSecrets(doc: PolicyDocument, file: string, env: EnvLookup): Map<string, string> {
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

/**
 * The `credentials:` entries. A setting that is a secret reference (`admin_url: { env: NAME }`)
 * stays one (the issuer reads it when it connects); only its presence is checked here.
 */
function readCredentials(doc: PolicyDocument, file: string, env: EnvLookup): Map<string, CredentialSpec> {
  const out = new Map<string, CredentialSpec>();
  for (const [name, c] of Object.entries(doc.credentials)) {
    for (const [key, value] of Object.entries(c.settings)) {
      const ref = typeof value === 'object' && value !== null && 'env' in value ? (value as { env: unknown }).env : undefined;
      if (typeof ref !== 'string') continue;
      const secret = env[ref];
      if (secret === undefined || secret.trim() === '') throw new PolicyError(file, undefined, `credentials.${name}.${key}: environment variable ${ref} is not set or empty`);
    }
    out.set(name, Object.freeze({ name, kind: c.kind, settings: Object.freeze({ ...c.settings }) }));
  }
  return out;
}

/** Each agent's MCP key hash: given in the policy, or hashed from the key in the environment. */
function readMcpKeys(doc: PolicyDocument, file: string, env: EnvLookup): Map<string, string> {
  const hashes = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const agent of doc.agents) {
    let hash = agent.mcp_key_sha256;
    if (agent.mcp_key_env !== null) {
      const value = env[agent.mcp_key_env];
      if (value === undefined || value.trim() === '') throw new PolicyError(file, undefined, `agent "${agent.id}": environment variable ${agent.mcp_key_env} is not set or empty`);
      if (value.trim().length < 24) throw new PolicyError(file, undefined, `agent "${agent.id}": the MCP key in ${agent.mcp_key_env} is shorter than 24 characters; use a random one (openssl rand -hex 32)`);
      hash = createHash('sha256').update(value.trim()).digest('hex');
    }
    if (hash === null) continue;
    const other = owner.get(hash);
    if (other !== undefined) throw new PolicyError(file, undefined, `agents "${other}" and "${agent.id}" have the same MCP key`);
    owner.set(hash, agent.id);
    hashes.set(agent.id, hash);
  }
  return hashes;
}

/** One index per platform of its user ids; two people with one id would make clicks ambiguous. */
function userIndex(file: string, platforms: readonly PlatformPolicy[], people: ReadonlyMap<string, PersonSpec>) {
  const index = new Map<PlatformId, Map<string, PersonSpec>>();
  for (const platform of platforms) {
    const byId = new Map<string, PersonSpec>();
    const normalize = platform.normalizeUserId ?? ((u: string) => u);
    for (const person of people.values()) {
      const userId = person.accounts.get(platform.id)?.userId;
      if (userId === null || userId === undefined) continue;
      const key = normalize(userId);
      const other = byId.get(key);
      if (other !== undefined) throw new PolicyError(file, undefined, `people "${other.id}" and "${person.id}" have the same ${platform.id} id`);
      byId.set(key, person);
    }
    index.set(platform.id, byId);
  }
  return (platform: PlatformId, userId: string): PersonSpec | undefined => {
    const p = platforms.find((x) => x.id === platform);
    return index.get(platform)?.get(p?.normalizeUserId?.(userId) ?? userId);
  };
}

function buildPolicy(
  doc: PolicyDocument,
  file: string,
  platforms: readonly PlatformPolicy[],
  people: ReadonlyMap<string, PersonSpec>,
  channels: ReadonlyMap<string, ChannelSpec>,
  compiled: CompiledPolicy['compiled'],
  secrets: Map<string, string>,
  mcpServers: ReadonlyMap<string, McpServerSpec>,
  mcpKeys: ReadonlyMap<string, string>,
  credentials: ReadonlyMap<string, CredentialSpec>,
): CompiledPolicy {
  const agents = new Map<string, AgentSpec>();
  const byOidc = new Map<string, AgentSpec>();
  const byMcpKey = new Map<string, AgentSpec>();
  for (const a of doc.agents) {
    const agent = {
      id: a.id,
      sponsors: Object.freeze([...a.sponsors]),
      secret_env: a.secret_env,
      callback_url: a.callback_url,
      oidc: a.oidc === null ? null : Object.freeze({ ...a.oidc }),
      mcp_key_sha256: mcpKeys.get(a.id) ?? null,
    } as AgentSpec;
    Object.defineProperty(agent, 'secret', { value: secrets.get(a.id) ?? null, enumerable: false });
    agents.set(a.id, Object.freeze(agent));
    if (a.oidc !== null) byOidc.set(oidcKey(a.oidc.issuer, a.oidc.subject, a.oidc.audience), agent);
    if (agent.mcp_key_sha256 !== null) byMcpKey.set(agent.mcp_key_sha256, agent);
  }
  const personByPlatformId = userIndex(file, platforms, people);
  const groups = new Map(Object.entries(doc.groups).map(([name, members]) => [name, Object.freeze([...members])] as const));
  const executors = new Map<string, ExecutorSpec>(Object.entries(doc.executors).map(([tool, e]) => [tool, Object.freeze({ tool, ...e, settings: Object.freeze({ ...e.settings }) })]));
  // An MCP server is the executor of the tool of its name: approved calls run through it.
  for (const server of mcpServers.values()) {
    if (executors.has(server.name)) throw new PolicyError(file, undefined, `mcp.servers.${server.name}: executors already has an entry for the tool "${server.name}"; an MCP server is its tool's executor`);
    executors.set(server.name, Object.freeze({ tool: server.name, kind: MCP_EXECUTOR_KIND, timeout_ms: server.timeout_ms, settings: Object.freeze({ server: server.name }) }));
  }
  const order = platforms.map((p) => p.id);

  return Object.freeze({
    file,
    platforms: Object.freeze(order),
    agents,
    people,
    groups,
    channels,
    executors,
    mcpServers,
    credentials,
    rules: Object.freeze(compiled.map((c) => c.spec)),
    default: Object.freeze({ ...doc.default }),
    limits: doc.limits,
    aggregation: doc.aggregation,
    compiled: Object.freeze([...compiled]),
    agentById: (id: string) => agents.get(id),
    personByPlatformId,
    isMember: (group: string, personId: string) => groups.get(group)?.includes(personId) ?? false,
    agentByOidc: (issuer: string, subject: string, audience: string | readonly string[]) => {
      for (const aud of typeof audience === 'string' ? [audience] : audience) {
        const agent = byOidc.get(oidcKey(issuer, subject, aud));
        if (agent !== undefined) return agent;
      }
      return undefined;
    },
    agentByMcpKeyHash: (hash: string) => byMcpKey.get(hash),
    platformsOf: (route: string | null) => {
      const targets = route === null ? undefined : channels.get(route)?.targets;
      return targets === undefined ? [] : order.filter((id) => targets.has(id));
    },
    targetOf: (route: string | null, platform: PlatformId) => (route === null ? null : (channels.get(route)?.targets.get(platform) ?? null)),
  });
}

function oidcKey(issuer: string, subject: string, audience: string): string {
  return JSON.stringify([issuer, subject, audience]);
}
