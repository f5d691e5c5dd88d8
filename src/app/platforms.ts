import type { z } from 'zod';
import type { PolicyExtensions, PlatformPolicy } from '../core/policy/extensions.ts';
import type { PlatformId } from '../core/platform.ts';
import type { AuthFailureLimiter, CardRefStore, ChannelBindingStore, ChatChannel, LiveUpdates, Logger, SessionStore } from '../core/ports.ts';
import type { AppDeps } from './deps.ts';

// The contract every chat platform implements, one folder under adapters/ each (Slack,
// Teams, the console, any later one), keyed by its id and wired by one line in
// src/wiring/platforms.ts:
//   - policy: the keys it adds under people (user ids) and channels (where a route's cards go);
//   - env: its environment variables, parsed once with the rest of the configuration;
//   - outbound (ChatChannel): post and update a card, reply in its thread;
//   - inbound (mounts): its HTTP requests, turned into use-case calls (record-decision's
//     decideClick / checkClick, chat-commands' runChatCommand, bind-channel), whose answers it
//     lays out, a notice for the clicker alone included;
//   - person resolution (the policy's user ids, through the use cases) and route resolution
//     (the policy's targets, through deliver-notification).
// `Handler` is the HTTP handler type of the server the wiring mounts it on (node:http's),
// kept generic here so the app never depends on HTTP.

/** What a platform's adapter is given to work with once the stores are up. */
export interface PlatformServices {
  deps: AppDeps;
  cards: CardRefStore;
  bindings: ChannelBindingStore;
  sessions: SessionStore;
  live: LiveUpdates;
  failureLimiter: AuthFailureLimiter;
  logger: Logger;
  /** The addresses people reach countersign at (PUBLIC_URL and the listening address, known once it listens). */
  urls(): string[];
  /** Adapter options by platform id, outside the environment (tests shorten Slack's Socket Mode timings). */
  options?: Readonly<Record<PlatformId, unknown>>;
}

export interface ChatPlatform<Handler> {
  readonly channel: ChatChannel;
  /** Its HTTP handlers, by path prefix (`/slack/`, `/api/messages`, `/console`). */
  readonly mounts: Readonly<Record<string, Handler>>;
  /** Connections it opens itself (Slack's Socket Mode), once the server listens; throws when it cannot start at all. */
  start?(): Promise<void>;
  /** Closes them, at shutdown, with the server's drain. */
  stop?(): Promise<void>;
}

export interface PlatformModule<Settings, Handler> {
  readonly id: PlatformId;
  readonly policy: PlatformPolicy;
  /** Its environment variables (documented in .env.example). */
  readonly env: z.ZodRawShape;
  /** Its settings from the parsed environment; throws ConfigError naming the variable that is wrong. */
  settings(env: Readonly<Record<string, unknown>>, production: boolean): Settings;
  /**
   * Whether this process serves it (`routed`: a route of the policy posts to it). Throws
   * ConfigError or PolicyError (naming `policyFile`) when it must be served but cannot.
   */
  enabled(settings: Settings, routed: boolean, context: { production: boolean; policyFile: string }): boolean;
  /** Builds the adapter; its SDK is loaded here, only when the platform is served. */
  create(settings: Settings, services: PlatformServices): Promise<ChatPlatform<Handler>>;
}

/** The policy keys of every platform, for loading a policy. */
export function policyExtensions(
  platforms: readonly Pick<PlatformModule<unknown, unknown>, 'policy'>[],
  executors: PolicyExtensions['executors'],
  credentials: NonNullable<PolicyExtensions['credentials']> = [],
): PolicyExtensions {
  return { platforms: platforms.map((p) => p.policy), executors, credentials };
}
