import { z } from 'zod';
import { httpUrl, text } from '../../src/core/policy/schema.ts';
import type { PlatformPolicy } from '../../src/core/policy/extensions.ts';

// Teams in the policy: a person's Entra (AAD) object id (`teams: 0000…`), and a route's
// channel: a key that `@countersign connect <route>` binds at run time, or the channel
// itself, fixed here (`conversation` is the channel's `19:…@thread…` id). Nothing here loads botbuilder.

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
    return typeof t === 'string' ? { target: t, details: {} } : { target: t.conversation, details: { fixed: { ...t } satisfies FixedTeamsChannel } };
  },
};

/** The channel a route fixes in the policy, when it does. */
export function fixedChannelOf(details: Readonly<Record<string, unknown>>): FixedTeamsChannel | null {
  const fixed = details['fixed'];
  return typeof fixed === 'object' && fixed !== null ? (fixed as FixedTeamsChannel) : null;
}
