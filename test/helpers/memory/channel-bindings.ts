import type { ChannelBinding, ChannelBindingStore } from '../../../src/core/ports.ts';

// ChannelBindingStore in memory, for use-case unit tests (test/contracts states what it
// shares with the Redis store). Bindings are kept as JSON, like Redis keeps them, so a
// caller changing an object after bind, or one it read, changes nothing stored.

export interface MemoryChannelBindingStore extends ChannelBindingStore {
  /** How many routes are bound on `platform` (for assertions). */
  size(platform: string): number;
}

export function createMemoryChannelBindingStore(): MemoryChannelBindingStore {
  const byKey = new Map<string, Map<string, string>>();
  const byConversation = new Map<string, Map<string, string>>();
  const table = (tables: Map<string, Map<string, string>>, platform: string) => {
    let t = tables.get(platform);
    if (t === undefined) tables.set(platform, (t = new Map()));
    return t;
  };
  const read = (raw: string | undefined): ChannelBinding | null => (raw === undefined ? null : (JSON.parse(raw) as ChannelBinding));
  return {
    async bind(platform, key, binding) {
      const value = JSON.stringify(binding);
      table(byKey, platform).set(key, value);
      table(byConversation, platform).set(binding.conversation, value);
    },
    async forKey(platform, key) {
      return read(byKey.get(platform)?.get(key));
    },
    async forConversation(platform, conversation) {
      return read(byConversation.get(platform)?.get(conversation));
    },
    size: (platform) => byKey.get(platform)?.size ?? 0,
  };
}
