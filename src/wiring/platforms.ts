// The platforms and executor kinds this build of countersign knows. Adding a chat platform
// is one folder under adapters/ and one line here (README, "Adding a platform").
import { consolePolicy } from '../../adapters/console/platform.ts';
import { webhookPolicy } from '../../adapters/executors/webhook.ts';
import { slackPolicy } from '../../adapters/slack/platform.ts';
import { teamsPolicy } from '../../adapters/teams/platform.ts';
import type { PolicyExtensions } from '../core/policy/extensions.ts';

export const POLICY_EXTENSIONS: PolicyExtensions = {
  platforms: [slackPolicy, teamsPolicy, consolePolicy],
  executors: [webhookPolicy],
};
