import type { Effect, Risk } from '../proposal.ts';
import type { PlatformId } from '../platform.ts';
import type { PlatformAccount, PlatformRoute } from './extensions.ts';

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
}

export interface RuleSpec extends OutcomeSpec {
  readonly name: string;
  readonly when: string;
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
  readonly rules: readonly RuleSpec[];
  readonly default: OutcomeSpec;
  agentById(id: string): AgentSpec | undefined;
  /** The person behind a platform's user id (compared the platform's way). */
  personByPlatformId(platform: PlatformId, userId: string): PersonSpec | undefined;
  isMember(group: string, personId: string): boolean;
  /** A JWT `aud` may be a list: the agent matches when its audience is one of them. */
  agentByOidc(issuer: string, subject: string, audience: string | readonly string[]): AgentSpec | undefined;
  /** The platforms a route posts to, in the order the policy was read with. */
  platformsOf(route: string | null): PlatformId[];
  /** The route's address on a platform, or null when it does not post there. */
  targetOf(route: string | null, platform: PlatformId): PlatformRoute | null;
}
