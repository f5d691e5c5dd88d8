import type { Effect, EscalationStep, Risk } from '../proposal.ts';

import type { PlatformId } from '../platform.ts';
import type { CredentialSpec } from '../credential-ports.ts';
import type { PlatformAccount, PlatformRoute } from './extensions.ts';
import type { AggregationSpec, LimitsSpec, RuleLimits } from './fatigue.ts';

// The policy as the rest of countersign reads it: plain, frozen data and a few look-ups.
// load.ts builds it from the file; evaluate.ts decides with its compiled rules.

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
  /** SHA-256 (hex) of the agent's MCP gateway key (`mcp_key_sha256`, or hashed from `mcp_key_env`); null without one. */
  readonly mcp_key_sha256: string | null;
}

export interface PersonSpec {
  readonly id: string;
  readonly email: string | null;
  /** Where the person is, by platform (only platforms whose keys the person's entry uses). */
  readonly accounts: ReadonlyMap<PlatformId, PlatformAccount>;
}

export interface ChannelSpec {
  readonly route: string;
  /** Where the route's cards go, by platform: a route posts to every platform it lists. */
  readonly targets: ReadonlyMap<PlatformId, PlatformRoute>;
}

export interface ExecutorSpec {
  readonly tool: string;
  /** Which executor runs it (`webhook`). */
  readonly kind: string;
  readonly timeout_ms: number;
  /** The kind's own keys (a webhook's `url`), validated by the kind's schema. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** A credential the gateway injects on calls to an upstream: read from the secret source at call time. */
export interface SecretRef {
  /** The secret's name in the secret source (an environment variable today). */
  readonly env: string;
  /** Put before the value (`"Bearer "`). */
  readonly prefix: string;
}

/** A header or environment value for an upstream: literal text, or a secret. */
export type UpstreamValue = string | SecretRef;

/** Context a tool call gets when the agent's call cannot say (per server, overridden per tool). */
export interface ToolCallDefaults {
  /** The argument whose value is the action's target; the server's name when absent. */
  readonly target_argument: string | null;
  readonly data_sensitivity: 'public' | 'internal' | 'confidential' | 'restricted' | null;
  readonly destination: 'internal' | 'external' | null;
  readonly environment: string | null;
  readonly reversible: boolean | null;
  /** `context.value.amount` from this argument (a number, or a numeric string). */
  readonly value_argument: string | null;
  /** `context.value.currency`: this text, or the value of `currency_argument`. */
  readonly currency: string | null;
  readonly currency_argument: string | null;
}

export type UpstreamTransport =
  | { readonly kind: 'http'; readonly url: string; readonly headers: ReadonlyMap<string, UpstreamValue> }
  | { readonly kind: 'stdio'; readonly command: string; readonly args: readonly string[]; readonly env: ReadonlyMap<string, UpstreamValue>; readonly cwd: string | null };

/** One entry of the policy's `mcp.servers`: an upstream MCP server the gateway fronts. */
export interface McpServerSpec {
  readonly name: string;
  readonly transport: UpstreamTransport;
  /** How long one call may take once sent. */
  readonly timeout_ms: number;
  /** Server-wide defaults merged with each tool's own (`tools.<name>`). */
  readonly defaults: ToolCallDefaults;
  readonly tools: ReadonlyMap<string, ToolCallDefaults>;
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
  /** Approvals count only from a fresh sign-in (only with effect approve). */
  readonly step_up: boolean;
  /** A login for the task from this `credentials:` entry, valid this long (allow and approve only). */
  readonly credentials: { readonly issuer: string; readonly ttl_ms: number } | null;
  /** When nobody answers (only with effect approve; src/core/escalation.ts): a reminder this often, or null. */
  readonly remind_ms: number | null;
  /** Escalation steps, in order, each with its approvers filled in; [] when none. */
  readonly escalate: readonly EscalationStep[];
  readonly on_timeout: 'deny' | 'expire';
  /** Keys of action.parameters approvers may change before approving (only with effect approve); null when none. */
  readonly editable: readonly string[] | null;
}

export interface RuleSpec extends OutcomeSpec {
  readonly name: string;
  readonly when: string;
  /** The rule's own per-agent limits for the proposals it sends to people (fatigue.ts); null or absent: none. */
  readonly limits?: RuleLimits | null;
  /** false: its proposals are judged alone, never summed with earlier ones (absent: true). */
  readonly aggregate?: boolean;
}

export interface Policy {
  readonly file: string;
  /** The platforms the policy was read with (whose keys people and channels may use). */
  readonly platforms: readonly PlatformId[];
  readonly agents: ReadonlyMap<string, AgentSpec>;
  readonly people: ReadonlyMap<string, PersonSpec>;
  readonly groups: ReadonlyMap<string, readonly string[]>;
  readonly channels: ReadonlyMap<string, ChannelSpec>;
  readonly executors: ReadonlyMap<string, ExecutorSpec>;
  /** The gateway's upstream servers (`mcp.servers`); each is also the `mcp` executor of the tool of its name. */
  readonly mcpServers: ReadonlyMap<string, McpServerSpec>;
  /** The `credentials:` entries: logins made per task by their kind's issuer. */
  readonly credentials: ReadonlyMap<string, CredentialSpec>;
  readonly rules: readonly RuleSpec[];
  readonly default: OutcomeSpec;
  /** Per-agent limits on proposals that need people (`limits:`, defaults when absent). */
  readonly limits: LimitsSpec;
  /** Split-transaction aggregation (`aggregation:`, defaults when absent). */
  readonly aggregation: AggregationSpec;
  agentById(id: string): AgentSpec | undefined;
  /** The person behind a platform's user id (compared the platform's way). */
  personByPlatformId(platform: PlatformId, userId: string): PersonSpec | undefined;
  isMember(group: string, personId: string): boolean;
  /** A JWT `aud` may be a list: the agent matches when its audience is one of them. */
  agentByOidc(issuer: string, subject: string, audience: string | readonly string[]): AgentSpec | undefined;
  /** The agent whose MCP gateway key hashes to `sha256Hex`. */
  agentByMcpKeyHash(sha256Hex: string): AgentSpec | undefined;
  /** The platforms a route posts to, in the order the policy was read with. */
  platformsOf(route: string | null): PlatformId[];
  /** The route's address on a platform, or null when it does not post there. */
  targetOf(route: string | null, platform: PlatformId): PlatformRoute | null;
}
