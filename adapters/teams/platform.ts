import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { PlatformModule } from '../../src/app/platforms.ts';
import { envValue } from '../../src/config.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { httpUrl, text } from '../../src/core/policy/schema.ts';
import type { PlatformPolicy } from '../../src/core/policy/extensions.ts';

// Microsoft Teams as a platform. In the policy: a person's Entra (AAD) object id (`teams:
// 0000…`), and a route's channel: a key that `@countersign connect <route>` binds at run
// time, or the channel itself, fixed there (`conversation` is the channel's `19:…@thread…` id).
// In the environment: the bot's app registration. botbuilder, the largest code in the heap,
// is loaded only when Teams is served.

export const TEAMS = 'teams';

/** A channel fixed in the policy, as `route(...).details` carries it. */
export interface FixedTeamsChannel {
  conversation: string;
  service_url: string;
  tenant: string;
}

const channelSchema = z.union([text(200), z.strictObject({ conversation: text(300), service_url: httpUrl, tenant: text(100) })]);

export const teamsPolicy: PlatformPolicy = {
  id: TEAMS,
  personKeys: { teams: text(200).optional() },
  person: (v) => (typeof v['teams'] === 'string' ? { userId: v['teams'], details: {} } : null),
  // Entra object ids are GUIDs whose case varies between APIs.
  normalizeUserId: (userId) => userId.toLowerCase(),
  channelKeys: { teams: channelSchema.optional() },
  route: (v) => {
    const t = v['teams'] as z.output<typeof channelSchema> | undefined;
    if (t === undefined) return null;
    // A fixed channel's address is its conversation id; its service URL and tenant ride along.
    return typeof t === 'string' ? { target: t, details: {}, bindable: true } : { target: t.conversation, details: { fixed: { ...t } satisfies FixedTeamsChannel } };
  },
};

/** The channel a route fixes in the policy, when it does. */
export function fixedChannelOf(details: Readonly<Record<string, unknown>>): FixedTeamsChannel | null {
  const fixed = details['fixed'];
  return typeof fixed === 'object' && fixed !== null ? (fixed as FixedTeamsChannel) : null;
}

export interface TeamsSettings {
  appId: string | null;
  appPassword: string | null;
  tenantId: string | null;
  appType: string | null;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export const teamsPlatform: PlatformModule<TeamsSettings, Handler> = {
  id: TEAMS,
  policy: teamsPolicy,
  env: {
    MICROSOFT_APP_ID: envValue.optionalString,
    MICROSOFT_APP_PASSWORD: envValue.optionalString,
    MICROSOFT_APP_TENANT_ID: envValue.optionalString,
    MICROSOFT_APP_TYPE: z.preprocess(envValue.blankToUndefined, z.enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI']).optional()),
  },
  settings(env) {
    const appId = (env['MICROSOFT_APP_ID'] as string | undefined) ?? null;
    const appPassword = (env['MICROSOFT_APP_PASSWORD'] as string | undefined) ?? null;
    const tenantId = (env['MICROSOFT_APP_TENANT_ID'] as string | undefined) ?? null;
    const appType = (env['MICROSOFT_APP_TYPE'] as string | undefined) ?? null;
    // Credentials that cannot work would show up only as failed posts: refuse them at start.
    if (appId === null && (appPassword !== null || tenantId !== null)) {
      throw new ConfigError('MICROSOFT_APP_ID: required when MICROSOFT_APP_PASSWORD or MICROSOFT_APP_TENANT_ID is set');
    }
    if (appId !== null && appType !== 'UserAssignedMSI' && appPassword === null) {
      throw new ConfigError('MICROSOFT_APP_PASSWORD: required with MICROSOFT_APP_ID (unless MICROSOFT_APP_TYPE=UserAssignedMSI)');
    }
    if (appType !== null && appType !== 'MultiTenant' && tenantId === null) {
      throw new ConfigError(`MICROSOFT_APP_TENANT_ID: required when MICROSOFT_APP_TYPE is ${appType}`);
    }
    return { appId, appPassword, tenantId, appType };
  },
  // On when a route posts to Teams or an app id is configured. Without an app id the Bot
  // Framework tokens are not checked: fine for local tests, never for production.
  enabled(settings, routed, { production }) {
    const on = routed || settings.appId !== null;
    if (on && production && settings.appId === null) {
      throw new ConfigError('NODE_ENV=production refuses unsafe defaults: MICROSOFT_APP_ID is required when a route posts to Teams (without it requests are not authenticated)');
    }
    return on;
  },
  async create(settings, services) {
    const { createTeamsAdapter } = await import('./teams-adapter.ts');
    return createTeamsAdapter(settings, services);
  },
};
