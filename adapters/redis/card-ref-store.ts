import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { seal } from '../../src/core/audit.ts';
import type { CardRef } from '../../src/core/card.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import type { CardRefStore, PostClaim } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';
import type { RedisStoreOptions } from './proposal-store.ts';
import { eventArgs, runWithKeys } from './scripts.ts';

// One hash per proposal, one field per `platform:conversation` (`platform#step:conversation` for
// an escalation step's card, fieldPrefix below): a route may post to several
// channels of one platform, and re-posting to the same channel replaces the old reference
// (so a retried notify job does not leave two cards to update).
//
// A post is two scripts, one round trip each (a card used to cost six): card-post-claim.lua
// checks for a card, checks the proposal is pending, claims the post and hands back the
// proposal's document; card-post-done.lua saves the reference, appends card_posted and ends the
// claim together, and answers the proposal's version now. The claim holds a random token, so a
// poster whose claim lapsed never ends the claim of the poster that took it over.

const CLAIM_REFUSALS = new Set(['posted', 'busy', 'settled', 'missing']);

/**
 * What a card's field starts with: `slack` for the rule's route (the fields of before escalation
 * steps, still read as step 0), `slack#2` for step 2's. card-post-claim.lua adds the `:` and
 * looks for a field of the step, so the cards of two routes on one platform are told apart.
 */
function fieldPrefix(platform: string, step: number): string {
  return step === 0 ? platform : `${platform}#${step}`;
}


export function createRedisCardRefStore(redis: Redis | Cluster, opts: RedisStoreOptions): CardRefStore {
  const keys = redisKeys(opts.prefix);
  const field = (ref: CardRef) => `${fieldPrefix(ref.platform, ref.step ?? 0)}:${ref.conversation}`;
  const stored = (ref: CardRef) =>
    JSON.stringify({ platform: ref.platform, conversation: ref.conversation, message: ref.message, ...(ref.step === undefined || ref.step === 0 ? {} : { step: ref.step }) } satisfies CardRef);
  return {
    async list(proposalId: string): Promise<CardRef[]> {
      const raw = await redis.hgetall(keys.cards(proposalId));
      // Hash order is arbitrary; sort so that callers (and tests) see a stable order.
      return Object.keys(raw)
        .sort()
        .map((f) => JSON.parse(raw[f]!) as CardRef);
    },
    async save(proposalId: string, ref: CardRef): Promise<void> {
      await redis.hset(keys.cards(proposalId), field(ref), stored(ref));
    },
    async claimPost(proposalId, platform, ttlSeconds, step = 0): Promise<PostClaim> {
      const token = randomUUID();
      const reply = await runWithKeys(
        redis,
        'countersignCardPostClaim',
        [keys.cards(proposalId), keys.postingClaim(proposalId, platform, step), keys.proposal(proposalId)],
        [fieldPrefix(platform, step), token, String(ttlSeconds)],
      );
      if (!Array.isArray(reply)) throw new Error('countersign card-post-claim: unexpected reply');
      const [kind, doc] = reply as unknown[];
      if (kind === 'claimed' && typeof doc === 'string') return { kind: 'claimed', proposal: JSON.parse(doc) as Proposal, platform, step, token };
      if (typeof kind === 'string' && CLAIM_REFUSALS.has(kind)) return { kind } as PostClaim;
      throw new Error('countersign card-post-claim: unexpected reply');
    },
    async finishPost(claim, ref, events) {
      const id = claim.proposal.id;
      const reply = await runWithKeys(
        redis,
        'countersignCardPostDone',
        [keys.cards(id), keys.postingClaim(id, claim.platform, claim.step), keys.proposal(id), keys.audit, keys.auditHead],
        [field(ref), stored(ref), claim.token, ...eventArgs(events.map(seal))],
      );
      return reply === '' || reply === null ? null : Number(reply);
    },
    async releasePost(claim) {
      await runWithKeys(redis, 'countersignCardPostRelease', [keys.postingClaim(claim.proposal.id, claim.platform, claim.step)], [claim.token]);
    },
  };
}
