// The chat platforms and executor kinds this build of countersign knows. Adding a chat
// platform is one folder under adapters/ (its PlatformModule: src/app/platforms.ts) and one
// line in PLATFORMS (README, "Adding a platform").
import type { z } from 'zod';
import { postgresCredentialKeys } from '../../adapters/credentials/postgres-grants.ts';
import { redisAclCredentialKeys } from '../../adapters/credentials/redis-acl-rules.ts';
import { consolePlatform } from '../../adapters/console/platform.ts';
import { createWebhookExecutor, webhookPolicy } from '../../adapters/executors/webhook.ts';
import type { RawHandler } from '../../adapters/http/server.ts';
import { slackPlatform } from '../../adapters/slack/platform.ts';
import { teamsPlatform } from '../../adapters/teams/platform.ts';
import { policyExtensions, type ChatPlatform, type PlatformModule, type PlatformServices } from '../app/platforms.ts';
import type { Config } from '../config.ts';
import type { CredentialIssuer } from '../core/credential-ports.ts';
import type { SecretSource } from '../core/mcp-ports.ts';
import type { CredentialKindPolicy, PlatformPolicy } from '../core/policy/extensions.ts';
import type { Policy } from '../core/policy/model.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Executor, Logger } from '../core/ports.ts';

/** What an issuer is built with. */
export interface IssuerDeps {
  secrets: SecretSource;
  logger: Logger;
}

/** A credential issuer kind: its policy keys, and its issuer's module, imported when a policy entry asks for it. */
export interface CredentialKind extends CredentialKindPolicy {
  issuer(): Promise<(deps: IssuerDeps) => CredentialIssuer>;
}

/** A platform module with its settings type hidden: the settings it gets are the ones it made (config.platforms). */
export interface WiredPlatform {
  readonly id: PlatformId;
  readonly policy: PlatformPolicy;
  readonly env: z.ZodRawShape;
  settings(env: Readonly<Record<string, unknown>>, production: boolean): unknown;
  /** How to build it when this process serves it, else null. */
  serve(config: Config, policy: Policy): ((services: PlatformServices) => Promise<ChatPlatform<RawHandler>>) | null;
}

function wire<S>(m: PlatformModule<S, RawHandler>): WiredPlatform {
  const settingsOf = (config: Config) => config.platforms.get(m.id) as S;
  return {
    id: m.id,
    policy: m.policy,
    env: m.env,
    settings: (env, production) => m.settings(env, production),
    serve(config, policy) {
      const settings = settingsOf(config);
      const routed = [...policy.channels.values()].some((c) => c.targets.has(m.id));
      return m.enabled(settings, routed, { production: config.production, policyFile: policy.file }) ? (services) => m.create(settings, services) : null;
    },
  };
}

export const PLATFORMS: readonly WiredPlatform[] = [
  wire(slackPlatform),
  wire(teamsPlatform),
  wire(consolePlatform),
];

/** Executors by kind; a policy's `executors` entry picks one with `kind` (webhook when absent). */
export const EXECUTORS: readonly Executor[] = [createWebhookExecutor()];

/**
 * Credential issuer kinds; a policy's `credentials` entry picks one with `kind`. The issuer
 * (and its driver: pg) is loaded only when the policy has an entry of its kind.
 */
export const CREDENTIAL_KINDS: readonly CredentialKind[] = [
  { kind: 'postgres', keys: postgresCredentialKeys, issuer: async () => (await import('../../adapters/credentials/postgres-issuer.ts')).createPostgresIssuer },
  { kind: 'redis-acl', keys: redisAclCredentialKeys, issuer: async () => (await import('../../adapters/credentials/redis-acl-issuer.ts')).createRedisAclIssuer },
];

export const POLICY_EXTENSIONS = policyExtensions(PLATFORMS, [webhookPolicy], CREDENTIAL_KINDS);

/** The platforms this process serves, built: every one a route posts to (refused at start when it cannot be) and every one configured. */
export async function createPlatforms(config: Config, policy: Policy, services: PlatformServices): Promise<Map<PlatformId, ChatPlatform<RawHandler>>> {
  const served = new Map<PlatformId, ChatPlatform<RawHandler>>();
  for (const p of PLATFORMS) {
    const create = p.serve(config, policy);
    if (create !== null) served.set(p.id, await create(services));
  }
  return served;
}

/** Checks, before anything starts, that every platform a route posts to can be served. */
export function checkPlatforms(config: Config, policy: Policy): void {
  for (const p of PLATFORMS) p.serve(config, policy);
}
