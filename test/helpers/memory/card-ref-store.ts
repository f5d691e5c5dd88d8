import type { CardRef } from '../../../src/core/card.ts';
import type { CardRefStore, Clock } from '../../../src/core/ports.ts';
import type { PlatformId } from '../../../src/core/platform.ts';

// Where each proposal's cards were posted, in memory; held to the Redis adapter's behaviour by
// test/contracts/card-ref-store.contract.ts: one reference per platform and conversation (a re-post
// replaces it), listed in `platform:conversation` order, only the three CardRef fields kept;
// one posting claim per proposal and platform, lapsing after its TTL on the injected clock.

export interface MemoryCardRefStore extends CardRefStore {
  /** Claims currently held (not lapsed), as `proposal platform` strings. */
  claims(): string[];
}

export function createMemoryCardRefStore(opts: { clock: Clock }): MemoryCardRefStore {
  const { clock } = opts;
  const refs = new Map<string, Map<string, string>>();
  const claimed = new Map<string, number>();
  const claimKey = (proposalId: string, platform: PlatformId) => `${proposalId} ${platform}`;
  const held = (key: string) => {
    const until = claimed.get(key);
    if (until === undefined) return false;
    if (clock.now() < until) return true;
    claimed.delete(key);
    return false;
  };

  return {
    async list(proposalId) {
      const fields = refs.get(proposalId) ?? new Map<string, string>();
      return [...fields.keys()].sort().map((field) => JSON.parse(fields.get(field)!) as CardRef);
    },
    async save(proposalId, ref) {
      const value: CardRef = { platform: ref.platform, conversation: ref.conversation, message: ref.message };
      const fields = refs.get(proposalId) ?? new Map<string, string>();
      fields.set(`${ref.platform}:${ref.conversation}`, JSON.stringify(value));
      refs.set(proposalId, fields);
    },
    async claimPost(proposalId, platform, ttlSeconds) {
      const key = claimKey(proposalId, platform);
      if (held(key)) return false;
      claimed.set(key, clock.now() + ttlSeconds * 1000);
      return true;
    },
    async releasePost(proposalId, platform) {
      claimed.delete(claimKey(proposalId, platform));
    },
    claims: () => [...claimed.keys()].filter(held),
  };
}
