import { AuthenticationConstants, GovernmentConstants } from 'botframework-connector';
import { CallerIdConstants } from 'botbuilder';
import { describe, expect, it } from 'vitest';
import { CLOUD_ENDPOINTS, teamsPlatform, type TeamsSettings } from '../../adapters/teams/platform.ts';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { PLATFORMS } from '../../src/wiring/platforms.ts';

// The Teams platform's variables: the app registration and the Bot Framework endpoints (public
// cloud by default, US Government with MICROSOFT_CHANNEL_SERVICE, each endpoint overridable).

const APP = { MICROSOFT_APP_ID: '11111111-2222-3333-4444-555555555555', MICROSOFT_APP_PASSWORD: 'p' };
const teams = (env: Record<string, string>) => loadConfig(env, PLATFORMS).platforms.get('teams') as TeamsSettings;

describe('Teams settings: Bot Framework endpoints', () => {
  it('are the SDK’s public-cloud endpoints by default', () => {
    expect(teams(APP).endpoints).toEqual({
      channelService: null,
      openIdMetadataUrl: AuthenticationConstants.ToBotFromChannelOpenIdMetadataUrl,
      tokenIssuers: [AuthenticationConstants.ToBotFromChannelTokenIssuer],
      loginUrl: AuthenticationConstants.ToChannelFromBotLoginUrl,
      oauthScope: AuthenticationConstants.ToChannelFromBotOAuthScope,
      oauthUrl: AuthenticationConstants.OAuthUrl,
      emulatorOpenIdMetadataUrl: AuthenticationConstants.ToBotFromEmulatorOpenIdMetadataUrl,
      callerId: CallerIdConstants.PublicAzureChannel,
    });
  });

  it('are the SDK’s US Government endpoints with MICROSOFT_CHANNEL_SERVICE', () => {
    expect(teams({ ...APP, MICROSOFT_CHANNEL_SERVICE: 'https://botframework.azure.us' }).endpoints).toEqual({
      channelService: GovernmentConstants.ChannelService,
      openIdMetadataUrl: GovernmentConstants.ToBotFromChannelOpenIdMetadataUrl,
      tokenIssuers: [GovernmentConstants.ToBotFromChannelTokenIssuer],
      loginUrl: GovernmentConstants.ToChannelFromBotLoginUrl,
      oauthScope: GovernmentConstants.ToChannelFromBotOAuthScope,
      oauthUrl: GovernmentConstants.OAuthUrl,
      emulatorOpenIdMetadataUrl: GovernmentConstants.ToBotFromEmulatorOpenIdMetadataUrl,
      callerId: CallerIdConstants.USGovChannel,
    });
    expect(CLOUD_ENDPOINTS.usgov.openIdMetadataUrl).toBe(GovernmentConstants.ToBotFromChannelOpenIdMetadataUrl);
  });

  it('takes each endpoint from its variable, over the cloud’s', () => {
    const e = teams({
      ...APP,
      MICROSOFT_CHANNEL_SERVICE: 'https://botframework.azure.us/',
      MICROSOFT_BOT_OPENID_METADATA_URL: 'https://keys.example/v1/.well-known/openidconfiguration',
      MICROSOFT_BOT_TOKEN_ISSUERS: ' https://api.example , https://api2.example ,',
      MICROSOFT_BOT_LOGIN_URL: 'https://login.example/tenant',
      MICROSOFT_BOT_OAUTH_SCOPE: 'https://api.example',
    }).endpoints;
    expect(e).toMatchObject({
      channelService: 'https://botframework.azure.us',
      openIdMetadataUrl: 'https://keys.example/v1/.well-known/openidconfiguration',
      tokenIssuers: ['https://api.example', 'https://api2.example'],
      loginUrl: 'https://login.example/tenant',
      oauthScope: 'https://api.example',
      callerId: CallerIdConstants.USGovChannel,
    });
  });

  it.each([
    [{ ...APP, MICROSOFT_CHANNEL_SERVICE: 'https://botframework.azure.cn' }, 'MICROSOFT_CHANNEL_SERVICE'],
    [{ ...APP, MICROSOFT_BOT_OPENID_METADATA_URL: 'keys.example' }, 'MICROSOFT_BOT_OPENID_METADATA_URL'],
    [{ ...APP, MICROSOFT_BOT_LOGIN_URL: 'ftp://login.example' }, 'MICROSOFT_BOT_LOGIN_URL'],
    // Without an app id no token is checked: an issuer or key URL there would promise a check that never runs.
    [{ MICROSOFT_BOT_TOKEN_ISSUERS: 'https://api.example' }, 'MICROSOFT_APP_ID: required when MICROSOFT_BOT_TOKEN_ISSUERS'],
    [{ MICROSOFT_CHANNEL_SERVICE: 'https://botframework.azure.us' }, 'MICROSOFT_APP_ID: required when MICROSOFT_CHANNEL_SERVICE'],
  ])('refuses %o naming %s', (env, name) => {
    expect(() => teams(env)).toThrow(ConfigError);
    expect(() => teams(env)).toThrow(name);
  });

  it('refuses keys or logins over plain http in production', () => {
    const production = { NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', AUDIT_SIGNING_KEY: 'k', REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://cs.example', ...APP };
    expect(() => teams({ ...production, MICROSOFT_BOT_OPENID_METADATA_URL: 'http://keys.example/openid' })).toThrow(/MICROSOFT_BOT_OPENID_METADATA_URL must be an https/);
    expect(() => teams({ ...production, MICROSOFT_BOT_LOGIN_URL: 'http://login.example' })).toThrow(/MICROSOFT_BOT_LOGIN_URL must be an https/);
    expect(teams(production).endpoints.openIdMetadataUrl).toBe(AuthenticationConstants.ToBotFromChannelOpenIdMetadataUrl);
  });

  it('in production still refuses Teams without MICROSOFT_APP_ID when a route posts there', () => {
    const settings = teams({});
    expect(() => teamsPlatform.enabled(settings, true, { production: true, policyFile: 'policy.yaml' })).toThrow(/MICROSOFT_APP_ID is required/);
    expect(teamsPlatform.enabled(settings, true, { production: false, policyFile: 'policy.yaml' })).toBe(true);
    expect(teamsPlatform.enabled(teams(APP), true, { production: true, policyFile: 'policy.yaml' })).toBe(true);
  });
});
