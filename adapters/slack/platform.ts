import { text } from '../../src/core/policy/schema.ts';
import type { PlatformPolicy } from '../../src/core/policy/extensions.ts';

// Slack in the policy: a person's Slack user id (`slack: U0ALICE`) and a route's channel id
// (`slack: C0FINANCE`). Nothing here loads @slack/bolt, so commands that only read the policy stay light.

export const SLACK = 'slack';

export const slackPolicy: PlatformPolicy = {
  id: SLACK,
  personKeys: { slack: text(100).optional() },
  person: (v) => (typeof v['slack'] === 'string' ? { userId: v['slack'], details: {} } : null),
  channelKeys: { slack: text(100).optional() },
  route: (v) => (typeof v['slack'] === 'string' ? { target: v['slack'], details: {} } : null),
};
