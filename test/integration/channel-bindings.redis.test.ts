import { describe, expect, it } from 'vitest';
import { createRedisChannelBindingStore } from '../../adapters/redis/channel-bindings.ts';
import { channelBindingStoreContract } from '../contracts/channel-binding-store.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The Redis channel binding store: the port's contract, and what only Redis shows: the data
// the Teams adapter has written so far (`{prefix}:teams:bindings` and `:teams:channels`,
// route key / channel id -> JSON.stringify(binding)) reads back, and is what it writes.

const { redis, prefix, newPrefix } = testRedis();

channelBindingStoreContract(() => createRedisChannelBindingStore(redis, prefix));

// As adapters/teams/bindings.ts (createTeamsBindingStore) writes a binding, spelled out here
// so that this test keeps the format when that file goes.
const teamsBinding = {
  conversation: '19:f1n4nce@thread.tacv2',
  serviceUrl: 'https://smba.trafficmanager.net/emea/',
  tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  boundBy: 'alice',
  at: '2026-03-01T09:30:00.000Z',
};

async function keysOf(p: string): Promise<string[]> {
  return (await (redis as import('ioredis').Redis).keys(`{${p}}:*`)).sort();
}

describe('Redis channel bindings', () => {
  it('reads the bindings the Teams adapter wrote before this store existed', async () => {
    const p = newPrefix();
    const json = JSON.stringify(teamsBinding);
    await redis.multi().hset(`{${p}}:teams:bindings`, 'finance', json).hset(`{${p}}:teams:channels`, teamsBinding.conversation, json).exec();
    const store = createRedisChannelBindingStore(redis, p);
    expect(await store.forKey('teams', 'finance')).toEqual(teamsBinding);
    expect(await store.forConversation('teams', teamsBinding.conversation)).toEqual(teamsBinding);
  });

  it('writes what the Teams adapter wrote: the same two hashes, the same bytes', async () => {
    const p = newPrefix();
    await createRedisChannelBindingStore(redis, p).bind('teams', 'finance', teamsBinding);
    expect(await keysOf(p)).toEqual([`{${p}}:teams:bindings`, `{${p}}:teams:channels`]);
    expect(await redis.hgetall(`{${p}}:teams:bindings`)).toEqual({ finance: JSON.stringify(teamsBinding) });
    expect(await redis.hgetall(`{${p}}:teams:channels`)).toEqual({ [teamsBinding.conversation]: JSON.stringify(teamsBinding) });
  });

  it('a stored value that is not JSON, not an object, or has no string conversation reads as no binding', async () => {
    const p = newPrefix();
    const store = createRedisChannelBindingStore(redis, p);
    const broken: Record<string, string> = {
      text: 'not json',
      array: '["19:x"]',
      nul: 'null',
      number: '42',
      missing: '{"serviceUrl":"https://x"}',
      numeric: '{"conversation":19}',
      good: '{"conversation":"19:ok"}',
    };
    await redis.hset(`{${p}}:teams:bindings`, broken);
    await redis.hset(`{${p}}:teams:channels`, broken);
    for (const field of Object.keys(broken).filter((f) => f !== 'good')) {
      expect(await store.forKey('teams', field)).toBeNull();
      expect(await store.forConversation('teams', field)).toBeNull();
    }
    expect(await store.forKey('teams', 'good')).toEqual({ conversation: '19:ok' });
  });

  it('refuses a platform id that would name keys outside its own, and writes nothing', async () => {
    const p = newPrefix();
    const store = createRedisChannelBindingStore(redis, p);
    const escapes = [
      'teams:bindings', // a `:` reaches into another key's name
      `teams}:x:{${prefix}`, // braces would leave the hash tag
      'te*ms', // a glob character
      'Teams',
      '',
      'teams ',
      'x'.repeat(33),
      // First segments of other stores: `agent-tokens:channels` is the token set of an agent named "channels".
      'agent-tokens',
      'token',
      'audit',
      'cards',
      'bull',
    ];
    for (const platform of escapes) {
      await expect(store.bind(platform, 'finance', teamsBinding), platform).rejects.toThrow(/invalid platform id/);
      await expect(store.forKey(platform, 'finance'), platform).rejects.toThrow(/invalid platform id/);
      await expect(store.forConversation(platform, teamsBinding.conversation), platform).rejects.toThrow(/invalid platform id/);
    }
    expect(await keysOf(p)).toEqual([]);
    // Any plain lower-case id is a platform of its own.
    await store.bind('google-chat', 'finance', teamsBinding);
    expect(await keysOf(p)).toEqual([`{${p}}:google-chat:bindings`, `{${p}}:google-chat:channels`]);
  });

  it('keeps installations apart: another prefix sees none of these bindings', async () => {
    const [p1, p2] = [newPrefix(), newPrefix()];
    await createRedisChannelBindingStore(redis, p1).bind('teams', 'finance', teamsBinding);
    const other = createRedisChannelBindingStore(redis, p2);
    expect(await other.forKey('teams', 'finance')).toBeNull();
    expect(await other.forConversation('teams', teamsBinding.conversation)).toBeNull();
  });
});
