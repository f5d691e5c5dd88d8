import type { z } from 'zod';
import type { PlatformId } from '../platform.ts';

// What the policy file may hold beyond core's own sections, contributed by the adapters the
// composition root wires in: each chat platform owns keys under `people` and `channels`
// (`slack: U0ALICE`, `teams: secops`, `console: true`), each executor kind the keys of an
// `executors` entry. Core validates the whole file with these schemas, so an unknown key is
// still an error, and never names a platform itself.

export type EnvLookup = Readonly<Record<string, string | undefined>>;

/** A person's presence on one platform. */
export interface PlatformAccount {
  /** The id the platform's requests carry (Slack user id, Entra object id); null when it matches people otherwise. */
  readonly userId: string | null;
  /** Anything else the platform's adapter needs about the person (the console key's hash). */
  readonly details: Readonly<Record<string, unknown>>;
}

/** A route's address on one platform. */
export interface PlatformRoute {
  /** Where the route's cards go: what the platform's ChatChannel.postCard receives. */
  readonly target: string;
  readonly details: Readonly<Record<string, unknown>>;
  /** The target is a key that a chat command binds to a channel at run time (Teams' `connect`), not the channel itself. */
  readonly bindable?: boolean;
}

export interface PlatformPolicy {
  readonly id: PlatformId;
  /** The keys this platform owns in a person's entry, with their schemas. */
  readonly personKeys: z.ZodRawShape;
  /**
   * The person's account from those keys' parsed values (absent keys are undefined); null when
   * the person is not on this platform. Throws an Error whose message says what is wrong
   * (`env` resolves keys that name an environment variable; never echo a value from it).
   */
  person(values: Readonly<Record<string, unknown>>, env: EnvLookup): PlatformAccount | null;
  /** How user ids compare, when not exactly (Entra object ids are case-insensitive GUIDs). */
  normalizeUserId?(userId: string): string;
  /** The keys this platform owns in a channel's entry. */
  readonly channelKeys: z.ZodRawShape;
  /** The route's address from those keys' parsed values; null when the route does not post here. */
  route(values: Readonly<Record<string, unknown>>, route: string): PlatformRoute | null;
}

/** An executor kind (`webhook`): the keys of its `executors` entries beside `kind` and `timeout`. */
export interface ExecutorKindPolicy {
  readonly kind: string;
  readonly keys: z.ZodRawShape;
}

/** A credential issuer kind (`postgres`, `redis-acl`): the keys of its `credentials` entries beside `kind`. */
export interface CredentialKindPolicy {
  readonly kind: string;
  readonly keys: z.ZodRawShape;
}

export interface PolicyExtensions {
  readonly platforms: readonly PlatformPolicy[];
  readonly executors: readonly ExecutorKindPolicy[];
  /** Absent: the policy may have no `credentials` section. */
  readonly credentials?: readonly CredentialKindPolicy[];
}

/** The executor kind of an `executors` entry that names none. */
export const DEFAULT_EXECUTOR_KIND = 'webhook';
