import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PlatformModule } from '../../src/app/platforms.ts';
import * as envValue from '../../src/core/env-values.ts';
import { ConfigError, PolicyError } from '../../src/core/errors.ts';
import { text } from '../../src/core/policy/schema.ts';
import type { PlatformPolicy } from '../../src/core/policy/extensions.ts';
import type { SlackOptions } from './slack-adapter.ts';

// Slack as a platform: in the policy, a person's Slack user id (`slack: U0ALICE`) and a
// route's channel id (`slack: C0FINANCE`); in the environment, the bot token and either an
// app-level token (Socket Mode: countersign connects out to Slack, no public URL) or the
// signing secret (Slack posts to /slack/events). @slack/bolt is loaded only when Slack is
// served, so commands that only read the policy stay light.

export const SLACK = 'slack';

const slackPolicy: PlatformPolicy = {
  id: SLACK,
  personKeys: { slack: text(100).optional() },
  person: (v) => (typeof v['slack'] === 'string' ? { userId: v['slack'], details: {} } : null),
  channelKeys: { slack: text(100).optional() },
  route: (v) => (typeof v['slack'] === 'string' ? { target: v['slack'], details: {} } : null),
};

export interface SlackSettings {
  botToken: string;
  /**
   * Socket Mode's app-level token (xapp-…), or null for HTTP. The socket is opened with it, so
   * it authenticates everything that arrives there: no signing secret is needed then.
   */
  appToken: string | null;
  /** HTTP's signing secret (null in Socket Mode, where nothing arrives over HTTP). */
  signingSecret: string | null;
  /** Web API base (tests, GovSlack); Slack's own when null. */
  apiUrl: string | null;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export const slackPlatform: PlatformModule<SlackSettings | null, Handler> = {
  id: SLACK,
  policy: slackPolicy,
  env: {
    SLACK_BOT_TOKEN: envValue.optionalString,
    SLACK_SIGNING_SECRET: envValue.optionalString,
    SLACK_APP_TOKEN: envValue.optionalString,
    SLACK_API_URL: envValue.optionalHttpUrl,
  },
  settings(env) {
    const botToken = env['SLACK_BOT_TOKEN'] as string | undefined;
    const signingSecret = env['SLACK_SIGNING_SECRET'] as string | undefined;
    const appToken = env['SLACK_APP_TOKEN'] as string | undefined;
    const apiUrl = (env['SLACK_API_URL'] as string | undefined) ?? null;
    if (appToken !== undefined) {
      // A bot token (xoxb-) here is the usual mix-up; Slack would refuse it only once connecting.
      if (!appToken.startsWith('xapp-')) throw new ConfigError('SLACK_APP_TOKEN must be an app-level token (it starts with xapp-; Basic Information → App-Level Tokens, scope connections:write)');
      if (botToken === undefined) throw new ConfigError('SLACK_APP_TOKEN is set (Socket Mode): set SLACK_BOT_TOKEN (xoxb-…) too, to post the cards');
      return { botToken, appToken, signingSecret: null, apiUrl };
    }
    if ((botToken === undefined) !== (signingSecret === undefined)) {
      throw new ConfigError('SLACK_BOT_TOKEN: set it with SLACK_APP_TOKEN (xapp-…, Socket Mode) or with SLACK_SIGNING_SECRET (HTTP) to turn Slack on, or set none of them');
    }
    if (botToken === undefined || signingSecret === undefined) return null;
    return { botToken, appToken: null, signingSecret, apiUrl };
  },
  // Configured Slack is served even when no route posts there: the slash command still works.
  enabled(settings, routed, { policyFile }) {
    if (routed && settings === null) throw new PolicyError(policyFile, undefined, 'a route posts to Slack, but Slack is not configured: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)');
    return settings !== null;
  },
  async create(settings, services) {
    if (settings === null) throw new ConfigError('SLACK_BOT_TOKEN: Slack is not configured');
    const { createSlackAdapter } = await import('./slack-adapter.ts');
    return createSlackAdapter(settings, services, (services.options?.[SLACK] ?? {}) as SlackOptions);
  },
};
