import { randomUUID } from 'node:crypto';
import type { CardRef } from '../../../src/core/card.ts';
import type { AuditLog, CardRefStore, Clock, PostClaim, ProposalStore } from '../../../src/core/ports.ts';
import type { PlatformId } from '../../../src/core/platform.ts';

// Where each proposal's cards were posted, in memory; held to the Redis adapter's behaviour by
// test/contracts/card-ref-store.contract.ts: one reference per platform and conversation (a re-post
// replaces it), listed in `platform:conversation` order, only the three CardRef fields kept;
// one posting claim per proposal and platform, lapsing after its TTL on the injected clock, ended
// only by its holder. It reads proposals from `store` and audits into `audit`, as the Redis
// scripts read and write the keys of both; nothing awaits between a check and its write, so a
// step is as atomic as the script it stands for.

export interface MemoryCardRefStore extends CardRefStore {
  /** Claims currently held (not lapsed), as `proposal platform` strings. */
  claims(): string[];
}

export function createMemoryCardRefStore(opts: { clock: Clock; store: Pick<ProposalStore, 'get'>; audit: Pick<AuditLog, 'append'> }): MemoryCardRefStore {
  const { clock, store, audit } = opts;
  const refs = new Map<string, Map<string, string>>();
  const claimed = new Map<string, { until: number; token: string }>();
  const claimKey = (proposalId: string, platform: PlatformId, step = 0) => `${proposalId} ${platform}${step === 0 ? '' : ` ${step}`}`;
  const prefix = (platform: PlatformId, step: number) => (step === 0 ? platform : `${platform}#${step}`);
  const holder = (key: string) => {
    const claim = claimed.get(key);
    if (claim === undefined) return null;
    if (clock.now() < claim.until) return claim.token;
    claimed.delete(key);
    return null;
  };
  const save = (proposalId: string, ref: CardRef) => {
    const step = ref.step ?? 0;
    const value: CardRef = { platform: ref.platform, conversation: ref.conversation, message: ref.message, ...(step === 0 ? {} : { step }) };
    const fields = refs.get(proposalId) ?? new Map<string, string>();
    fields.set(`${prefix(ref.platform, step)}:${ref.conversation}`, JSON.stringify(value));
    refs.set(proposalId, fields);
  };

  return {
    async list(proposalId) {
      const fields = refs.get(proposalId) ?? new Map<string, string>();
      return [...fields.keys()].sort().map((field) => JSON.parse(fields.get(field)!) as CardRef);
    },
    async save(proposalId, ref) {
      save(proposalId, ref);
    },
    async claimPost(proposalId, platform, ttlSeconds, step = 0): Promise<PostClaim> {
      const proposal = await store.get(proposalId);
      if ([...(refs.get(proposalId)?.keys() ?? [])].some((f) => f.startsWith(`${prefix(platform, step)}:`))) return { kind: 'posted' };
      if (proposal === null) return { kind: 'missing' };
      if (proposal.status !== 'pending') return { kind: 'settled' };
      const key = claimKey(proposalId, platform, step);
      if (holder(key) !== null) return { kind: 'busy' };
      const token = randomUUID();
      claimed.set(key, { until: clock.now() + ttlSeconds * 1000, token });
      return { kind: 'claimed', proposal, platform, step, token };
    },
    async finishPost(claim, ref, events) {
      const id = claim.proposal.id;
      save(id, ref);
      const key = claimKey(id, claim.platform, claim.step);
      if (holder(key) === claim.token) claimed.delete(key);
      await audit.append(events);
      return (await store.get(id))?.version ?? null;
    },
    async releasePost(claim) {
      const key = claimKey(claim.proposal.id, claim.platform, claim.step);

      if (holder(key) === claim.token) claimed.delete(key);
    },
    claims: () => [...claimed.keys()].filter((key) => holder(key) !== null),
  };
}
