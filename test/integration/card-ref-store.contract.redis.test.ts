import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { cardRefStoreContract, claimed } from '../contracts/card-ref-store.contract.ts';
import { event, proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// The CardRefStore contract against the Redis adapter: each case on a prefix of its own.
const { redis, newPrefix } = testRedis();
const node = redis as Redis;

function parts() {
  const prefix = newPrefix();
  return { prefix, keys: redisKeys(prefix), cards: createRedisCardRefStore(redis, { prefix }), store: createRedisProposalStore(redis, { prefix }), audit: createRedisAuditLog(redis, { prefix }) };
}

cardRefStoreContract('redis', async () => parts());

// The post scripts skip the TYPE calls their reads make anyway (card-post-claim.lua,
// card-post-done.lua): a key of the wrong type must still stop them before their first write.
describe('Redis CardRefStore: a key of the wrong type writes nothing', () => {
  const ref = { platform: 'slack', conversation: 'C1', message: '1.1' };

  it('the claim: refused for a claim key of the wrong type, failed for a references or proposal key', async () => {
    const { keys, cards, store } = parts();
    const p = proposal();
    await store.create(p, []);
    await node.hset(keys.postingClaim(p.id, 'slack'), 'x', '1');
    await expect(cards.claimPost(p.id, 'slack', 60)).rejects.toThrow(/posting claim holds a hash/);
    await node.del(keys.postingClaim(p.id, 'slack'));
    await node.set(keys.cards(p.id), 'wrong type');
    await expect(cards.claimPost(p.id, 'slack', 60)).rejects.toThrow(/WRONGTYPE/);
    expect(await node.exists(keys.postingClaim(p.id, 'slack'))).toBe(0);
    const q = proposal();
    await node.set(keys.proposal(q.id), 'wrong type');
    await expect(cards.claimPost(q.id, 'slack', 60)).rejects.toThrow(/WRONGTYPE/);
    expect(await node.exists(keys.postingClaim(q.id, 'slack'))).toBe(0);
  });

  it('the finish: nothing saved, released or audited when any of its keys has the wrong type', async () => {
    const { keys, cards, store, audit } = parts();
    const p = proposal();
    await store.create(p, []);
    const claim = claimed(await cards.claimPost(p.id, 'slack', 60));
    const posted = [event(p, 'card_posted', ref)];
    const entries = async () => node.xlen(keys.audit);
    const before = await entries();
    for (const [key, wrong] of [
      [keys.cards(p.id), 'string'],
      [keys.proposal(p.id), 'string'],
      [keys.audit, 'string'],
    ] as const) {
      const saved = await node.dumpBuffer(key);
      await node.del(key);
      await node.set(key, wrong);
      await expect(cards.finishPost(claim, ref, posted)).rejects.toThrow();
      await node.del(key);
      if (saved !== null) await node.restore(key, 0, saved);
      expect(await entries()).toBe(before);
      expect(await node.get(keys.postingClaim(p.id, 'slack'))).toBe(claim.token);
    }
    expect(await cards.list(p.id)).toEqual([]);
    expect(await cards.finishPost(claim, ref, posted)).toBe(p.version);
    expect((await audit.search({ words: [], proposalId: p.id, limit: 5 })).events.map((e) => e.type)).toEqual(['card_posted']);
  });
});

describe('Redis CardRefStore: a late finish', () => {
  it("by a poster whose claim lapsed saves its card but ends nobody else's claim", async () => {
    const { keys, cards, store } = parts();
    const p = proposal();
    await store.create(p, []);
    const late = claimed(await cards.claimPost(p.id, 'slack', 60));
    // Its claim ran out (as after 120 s) and another poster took the post over.
    await node.del(keys.postingClaim(p.id, 'slack'));
    const current = claimed(await cards.claimPost(p.id, 'slack', 60));
    const ref = { platform: 'slack', conversation: 'C1', message: '1.1' };
    expect(await cards.finishPost(late, ref, [event(p, 'card_posted', ref)])).toBe(p.version);
    expect(await cards.list(p.id)).toEqual([ref]);
    expect(await node.get(keys.postingClaim(p.id, 'slack'))).toBe(current.token);
  });
});
