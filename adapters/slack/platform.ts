import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PlatformModule } from '../../src/app/platforms.ts';
import * as envValue from '../../src/core/env-values.ts';
import { ConfigError, PolicyError } from '../../src/core/errors.ts';
import { text } from '../../src/core/policy/schema.ts';
import type { PlatformPolicy } from '../../src/core/policy/extensions.ts';

// Slack as a platform: in the policy, a person's Slack user id (`slack: U0ALICE`) and a
// route's channel id (`slack: C0FINANCE`); in the environment, the bot token and signing
// secret. @slack/bolt is loaded only when Slack is served, so commands that only read the
// policy stay light.

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
  signingSecret: string;
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
    SLACK_API_URL: envValue.optionalHttpUrl,
  },
  settings(env) {
    const botToken = env['SLACK_BOT_TOKEN'] as string | undefined;
    const signingSecret = env['SLACK_SIGNING_SECRET'] as string | undefined;
    if ((botToken === undefined) !== (signingSecret === undefined)) {
      throw new ConfigError('SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: set both to turn Slack on, or neither');
    }
    if (botToken === undefined || signingSecret === undefined) return null;
    return { botToken, signingSecret, apiUrl: (env['SLACK_API_URL'] as string | undefined) ?? null };
  },
  // Configured Slack is served even when no route posts there: the slash command still works.
  enabled(settings, routed, { policyFile }) {
    if (routed && settings === null) throw new PolicyError(policyFile, undefined, 'a route posts to Slack, but SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set');
    return settings !== null;
  },
  async create(settings, services) {
    if (settings === null) throw new ConfigError('SLACK_BOT_TOKEN: Slack is not configured');
    const { createSlackAdapter } = await import('./slack-adapter.ts');
    return createSlackAdapter(settings, services);
  },
};
