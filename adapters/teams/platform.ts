import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { PlatformModule } from '../../src/app/platforms.ts';
import * as envValue from '../../src/core/env-values.ts';
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

/**
 * Where the Bot Framework lives: the keys and issuers of the tokens Teams sends, and where
 * countersign gets its own tokens for answering. Each cloud has its set; a variable overrides one.
 */
export interface BotFrameworkEndpoints {
  /** null for the public cloud; the US Government cloud's channel service otherwise. */
  channelService: string | null;
  /** The OpenID metadata document that names the JWKS signing the channel's tokens. */
  openIdMetadataUrl: string;
  /** `iss` values accepted on the channel's tokens. */
  tokenIssuers: readonly string[];
  /** The authority countersign asks for its outbound tokens, and their scope. */
  loginUrl: string;
  oauthScope: string;
  /** The rest of the SDK's parameter set, fixed by the cloud (user token service, emulator keys, callerId). */
  oauthUrl: string;
  emulatorOpenIdMetadataUrl: string;
  callerId: string;
}

export const US_GOV_CHANNEL_SERVICE = 'https://botframework.azure.us';

// botframework-connector's AuthenticationConstants and GovernmentConstants (4.23), repeated here
// so that reading the configuration does not load botbuilder; a unit test keeps them in step.
export const CLOUD_ENDPOINTS: Readonly<Record<'public' | 'usgov', Omit<BotFrameworkEndpoints, 'channelService'>>> = {
  public: {
    openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
    tokenIssuers: ['https://api.botframework.com'],
    loginUrl: 'https://login.microsoftonline.com/botframework.com',
    oauthScope: 'https://api.botframework.com',
    oauthUrl: 'https://api.botframework.com',
    emulatorOpenIdMetadataUrl: 'https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration',
    callerId: 'urn:botframework:azure',
  },
  usgov: {
    openIdMetadataUrl: 'https://login.botframework.azure.us/v1/.well-known/openidconfiguration',
    tokenIssuers: ['https://api.botframework.us'],
    loginUrl: 'https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us',
    oauthScope: 'https://api.botframework.us',
    oauthUrl: 'https://api.botframework.azure.us',
    emulatorOpenIdMetadataUrl: 'https://login.microsoftonline.us/cab8a31a-1906-4287-a0d8-4eef66b95f6e/v2.0/.well-known/openid-configuration',
    callerId: 'urn:botframework:azureusgov',
  },
};

export interface TeamsSettings {
  appId: string | null;
  appPassword: string | null;
  tenantId: string | null;
  appType: string | null;
  endpoints: BotFrameworkEndpoints;
}

const ENDPOINT_VARIABLES = ['MICROSOFT_CHANNEL_SERVICE', 'MICROSOFT_BOT_OPENID_METADATA_URL', 'MICROSOFT_BOT_TOKEN_ISSUERS', 'MICROSOFT_BOT_LOGIN_URL', 'MICROSOFT_BOT_OAUTH_SCOPE'] as const;

function endpointsOf(env: Readonly<Record<string, unknown>>, production: boolean): BotFrameworkEndpoints {
  const value = (name: (typeof ENDPOINT_VARIABLES)[number]) => env[name] as string | undefined;
  const channelService = value('MICROSOFT_CHANNEL_SERVICE')?.replace(/\/$/, '') ?? null;
  if (channelService !== null && channelService !== US_GOV_CHANNEL_SERVICE) {
    throw new ConfigError(`MICROSOFT_CHANNEL_SERVICE: must be ${US_GOV_CHANNEL_SERVICE} (US Government) or unset (public cloud); for another cloud set MICROSOFT_BOT_* to its endpoints`);
  }
  const cloud = CLOUD_ENDPOINTS[channelService === null ? 'public' : 'usgov'];
  const issuers = value('MICROSOFT_BOT_TOKEN_ISSUERS')?.split(',').map((i) => i.trim()).filter((i) => i !== '');
  const endpoints: BotFrameworkEndpoints = {
    ...cloud,
    channelService,
    openIdMetadataUrl: value('MICROSOFT_BOT_OPENID_METADATA_URL') ?? cloud.openIdMetadataUrl,
    tokenIssuers: issuers === undefined || issuers.length === 0 ? cloud.tokenIssuers : issuers,
    loginUrl: value('MICROSOFT_BOT_LOGIN_URL') ?? cloud.loginUrl,
    oauthScope: value('MICROSOFT_BOT_OAUTH_SCOPE') ?? cloud.oauthScope,
  };
  // Keys fetched in the clear could be swapped on the way: the token check would mean nothing.
  if (production) {
    for (const [name, url] of [['MICROSOFT_BOT_OPENID_METADATA_URL', endpoints.openIdMetadataUrl], ['MICROSOFT_BOT_LOGIN_URL', endpoints.loginUrl]] as const) {
      if (!url.startsWith('https://')) throw new ConfigError(`NODE_ENV=production refuses unsafe defaults: ${name} must be an https:// URL`);
    }
  }
  return endpoints;
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
    MICROSOFT_CHANNEL_SERVICE: envValue.optionalHttpUrl,
    MICROSOFT_BOT_OPENID_METADATA_URL: envValue.optionalHttpUrl,
    MICROSOFT_BOT_TOKEN_ISSUERS: envValue.optionalString,
    MICROSOFT_BOT_LOGIN_URL: envValue.optionalHttpUrl,
    MICROSOFT_BOT_OAUTH_SCOPE: envValue.optionalString,
  },
  settings(env, production) {
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
    // Endpoints matter only when tokens are checked; set without an app id they would promise a check that never runs.
    const endpointSet = ENDPOINT_VARIABLES.find((name) => env[name] !== undefined);
    if (appId === null && endpointSet !== undefined) throw new ConfigError(`MICROSOFT_APP_ID: required when ${endpointSet} is set (without it no token is checked)`);
    return { appId, appPassword, tenantId, appType, endpoints: endpointsOf(env, production) };
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
