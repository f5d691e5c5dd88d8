import type { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { createQueues } from '../../adapters/bullmq/queues.ts';
import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { claimed } from '../contracts/card-ref-store.contract.ts';
import { proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// Names that other versions' replicas share with this one, written and read through Redis:
// the card posting claim and BullMQ's prefix.

const { redis, newPrefix } = testRedis();
const node = redis as Redis;

describe('key names shared with other versions', () => {
  it("the card posting claim is `{prefix}:cards:<id>:posting:<platform>`: an older replica's claim holds this one off, and this one an older replica's", async () => {
    const p = newPrefix();
    const cards = createRedisCardRefStore(redis, { prefix: p });
    const older = proposal();
    await createRedisProposalStore(redis, { prefix: p }).create(older, []);
    await node.set(`{${p}}:cards:${older.id}:posting:slack`, '1', 'EX', 60, 'NX');
    expect((await cards.claimPost(older.id, 'slack', 60)).kind).toBe('busy');
    const teams = claimed(await cards.claimPost(older.id, 'teams', 60));
    expect(await node.ttl(`{${p}}:cards:${older.id}:posting:teams`)).toBeGreaterThan(0);
    // An older replica claims with SET NX, and ends its claim with DEL.
    expect(await node.set(`{${p}}:cards:${older.id}:posting:teams`, '1', 'EX', 60, 'NX')).toBeNull();
    await cards.releasePost(teams);
    expect(await node.exists(`{${p}}:cards:${older.id}:posting:teams`)).toBe(0);
    await node.del(`{${p}}:cards:${older.id}:posting:slack`);
    expect((await cards.claimPost(older.id, 'slack', 60)).kind).toBe('claimed');
  });

  it('a platform id or proposal id that would reach another key is refused before Redis is asked', async () => {
    const p = newPrefix();
    const cards = createRedisCardRefStore(redis, { prefix: p });
    await expect(cards.claimPost('p_1', 'slack:x', 60)).rejects.toThrow(/invalid platform id/);
    await expect(cards.claimPost('p_1:posting:teams', 'slack', 60)).rejects.toThrow(/invalid proposal id/);
    await expect(cards.releasePost({ kind: 'claimed', proposal: proposal({ id: 'p_1' }), platform: '{x}', step: 0, token: 't' })).rejects
.toThrow(/invalid platform id/);
    expect(await node.keys(`{${p}}:*`)).toEqual([]);
  });

  it("BullMQ's prefix: the one the config carries, as keys.ts names it (the name every release has used)", async () => {
    const url = inject('redisUrl')!;
    const queueConnection = createRedisConnection({ url, role: 'queue' });
    try {
      const p = newPrefix();
      expect(redisKeys(p).bull).toBe(`{${p}}:bull`);
      const given = createQueues({ bullPrefix: redisKeys(p).bull, queueConnection, workerConnection: queueConnection });
      await given.notify([{ kind: 'post', proposal_id: 'p_given', platform: 'slack' }]);
      expect(await node.exists(`{${p}}:bull:notify:post-p_given-slack`)).toBe(1);
      await given.close();
    } finally {
      await queueConnection.quit();
    }
  });
});
