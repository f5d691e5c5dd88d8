import type { Cluster, Redis } from 'ioredis';
import type { Policy } from '../../src/core/policy/model.ts';
import { fixedChannelOf, TEAMS } from './platform.ts';

// Where a route's Teams channel is: bound at run time by `@countersign connect <route>`
// (kept in Redis, so every replica posts to it) or fixed in the policy. A card's thread lives
// under its channel (`<channel id>;messageid=<id>`), so updates and replies find the service
// URL and tenant through the channel id too.

export interface TeamsChannelAddress {
  /** The channel's conversation id (`19:…@thread.tacv2`), without `;messageid=`. */
  conversation: string;
  serviceUrl: string;
  tenant: string | null;
}

export interface TeamsBinding extends TeamsChannelAddress {
  /** The policy person who bound it, and when (ISO). */
  boundBy: string;
  at: string;
}

export interface TeamsBindingStore {
  /** `key` is the route's `teams:` value in the policy. */
  bind(key: string, binding: TeamsBinding): Promise<void>;
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

export function createTeamsBindingStore(redis: Redis | Cluster, prefix: string, policy: () => Policy): TeamsBindingStore {
  // Same `{prefix}` hash tag as every other countersign key (one cluster slot).
  const key = `{${prefix}}:teams:bindings`;
  // Every channel ever bound, kept when its route is bound elsewhere: its old cards still update.
  const channelsKey = `{${prefix}}:teams:channels`;

  const fixed = (conversation: string): TeamsChannelAddress | null => {
    for (const c of policy().channels.values()) {
      const t = fixedChannelOf(c.targets.get(TEAMS)?.details ?? {});
      if (t !== null && t.conversation === conversation) return { conversation: t.conversation, serviceUrl: t.service_url, tenant: t.tenant };
    }
    return null;
  };
  const parse = (raw: string | null | undefined): TeamsBinding | null => {
    if (raw === null || raw === undefined) return null;
    try {
      return JSON.parse(raw) as TeamsBinding;
    } catch {
      return null;
    }
  };
  const address = (b: TeamsBinding): TeamsChannelAddress => ({ conversation: b.conversation, serviceUrl: b.serviceUrl, tenant: b.tenant });

  return {
    async bind(routeKey, binding) {
      await redis.multi().hset(key, routeKey, JSON.stringify(binding)).hset(channelsKey, binding.conversation, JSON.stringify(binding)).exec();
    },
    async forKey(routeKey) {
      const f = fixed(routeKey);
      if (f !== null) return f;
      const b = parse(await redis.hget(key, routeKey));
      return b === null ? null : address(b);
    },
    async forConversation(conversation) {
      const channel = channelOf(conversation);
      const f = fixed(channel);
      if (f !== null) return f;
      const b = parse(await redis.hget(channelsKey, channel));
      return b === null ? null : address(b);
    },
  };
}
