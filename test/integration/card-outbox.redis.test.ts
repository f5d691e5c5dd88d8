import { afterAll, describe, expect, it } from 'vitest';
import { createRedisCardOutbox, type RedisCardOutbox } from '../../adapters/redis/card-outbox.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { event, proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// The card outbox on Redis: what the create script writes, a consumer group hands out once;
// an entry a consumer never finished is reclaimed; finished entries leave the stream.

const { redis, newPrefix } = testRedis();
const opened: RedisCardOutbox[] = [];
afterAll(async () => {
  for (const o of opened) await o.close();
});

function setUp() {
  const prefix = newPrefix();
  const outbox = createRedisCardOutbox(redis, { prefix });
  opened.push(outbox);
  const store = createRedisProposalStore(redis, { prefix });
  const create = async () => {
    const p = proposal();
    await store.create(p, [event(p, 'proposal_received')]);
    return p.id;
  };
  return { outbox, create, key: redisKeys(prefix).cardOutbox };
}

describe('the card outbox', () => {
  it('hands each new pending proposal to one consumer, in order; done removes it from the stream', async () => {
    const { outbox, create, key } = setUp();
    const ids = [await create(), await create(), await create()];
    const first = await outbox.take('a', 2, 10);
    const second = await outbox.take('b', 10, 10);
    expect(first.map((e) => e.proposal_id)).toEqual(ids.slice(0, 2));
    expect(second.map((e) => e.proposal_id)).toEqual(ids.slice(2));
    expect(await outbox.take('c', 10, 10)).toEqual([]);
    await outbox.done([...first, ...second]);
    expect(await redis.xlen(key)).toBe(0);
  });

  it('an entry a consumer took and never finished is reclaimed by another, once', async () => {
    const { outbox, create } = setUp();
    const id = await create();
    const [taken] = await outbox.take('died', 10, 10);
    expect(taken?.proposal_id).toBe(id);
    expect(await outbox.take('alive', 10, 10)).toEqual([]);
    const reclaimed = await outbox.reclaim('alive', 0, 10);
    expect(reclaimed).toEqual([taken]);
    await outbox.done(reclaimed);
    expect(await outbox.reclaim('alive', 0, 10)).toEqual([]);
  });

  it('reclaims go on where the last one stopped: entries that are never finished (a proposal that cannot be read) do not hide the ones behind them', async () => {
    const { outbox, create } = setUp();
    const ids = [await create(), await create(), await create()];
    expect((await outbox.take('died', 10, 10)).map((e) => e.proposal_id)).toEqual(ids);
    // The first two are poison: reclaimed at every round and never done.
    expect((await outbox.reclaim('alive', 0, 2)).map((e) => e.proposal_id)).toEqual(ids.slice(0, 2));
    expect((await outbox.reclaim('alive', 0, 2)).map((e) => e.proposal_id)).toEqual(ids.slice(2));
    // Then from the start again.
    expect((await outbox.reclaim('alive', 0, 2)).map((e) => e.proposal_id)).toEqual(ids.slice(0, 2));
  });

  it('a blocked take returns as soon as a proposal is created', async () => {
    const { outbox, create } = setUp();
    await outbox.take('warm', 1, 1); // the group exists before the wait
    const waiting = outbox.take('a', 10, 5000);
    const id = await create();
    expect((await waiting).map((e) => e.proposal_id)).toEqual([id]);
  });

  it('a stream deleted by hand (and its group with it) is made again on the next read', async () => {
    const { outbox, create, key } = setUp();
    await outbox.take('a', 1, 1);
    await redis.del(key);
    const id = await create();
    expect((await outbox.take('a', 10, 10)).map((e) => e.proposal_id)).toEqual([id]);
  });
});
