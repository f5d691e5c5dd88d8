import type { Policy } from '../../src/core/policy/model.ts';
import type { ChannelBindingStore } from '../../src/core/ports.ts';
import { fixedChannelOf, TEAMS } from './platform.ts';

// Where a route's Teams channel is: bound at run time by `@countersign connect <route>` (in
// the channel-binding store, so every replica posts to it) or fixed in the policy. A card's
// thread lives under its channel (`<channel id>;messageid=<id>`), so updates and replies find
// the service URL and tenant through the channel id too.

export interface TeamsChannelAddress {
  /** The channel's conversation id (`19:…@thread.tacv2`), without `;messageid=`. */
  conversation: string;
  serviceUrl: string;
  tenant: string | null;
}

export interface TeamsChannels {
  /** The channel a route key posts to: the policy's fixed channel first, else the binding. */
  forKey(key: string): Promise<TeamsChannelAddress | null>;
  /** The address of a channel, from the conversation id of the channel or of a thread in it. */
  forConversation(conversation: string): Promise<TeamsChannelAddress | null>;
}

/** `19:abc@thread.tacv2;messageid=171` → `19:abc@thread.tacv2`. */
export function channelOf(conversation: string): string {
  const at = conversation.indexOf(';messageid=');
  return at < 0 ? conversation : conversation.slice(0, at);
}

/** The root message id of a thread conversation id, or null. */
export function threadMessageOf(conversation: string): string | null {
  const m = /;messageid=([^;]+)$/.exec(conversation);
  return m === null ? null : m[1]!;
}

/** A stored binding as `connect` wrote it (bind-channel.ts with Teams' details), or null when it is not one. */
function addressOf(b: Record<string, unknown> | null): TeamsChannelAddress | null {
  if (b === null || typeof b['conversation'] !== 'string' || typeof b['serviceUrl'] !== 'string') return null;
  return { conversation: b['conversation'], serviceUrl: b['serviceUrl'], tenant: typeof b['tenant'] === 'string' ? b['tenant'] : null };
}

export function teamsChannels(store: ChannelBindingStore, policy: () => Policy): TeamsChannels {
  const fixed = (conversation: string): TeamsChannelAddress | null => {
    for (const c of policy().channels.values()) {
      const t = fixedChannelOf(c.targets.get(TEAMS)?.details ?? {});
      if (t !== null && t.conversation === conversation) return { conversation: t.conversation, serviceUrl: t.service_url, tenant: t.tenant };
    }
    return null;
  };
  return {
    async forKey(key) {
      return fixed(key) ?? addressOf(await store.forKey(TEAMS, key));
    },
    async forConversation(conversation) {
      const channel = channelOf(conversation);
      return fixed(channel) ?? addressOf(await store.forConversation(TEAMS, channel));
    },
  };
}
