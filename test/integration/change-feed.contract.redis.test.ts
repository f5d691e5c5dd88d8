import { afterAll } from 'vitest';
import { createRedisChangeFeed, type RedisChangeFeed } from '../../adapters/redis/change-feed.ts';
import { changeFeedContract } from '../contracts/change-feed.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The ChangeFeed contract against the Redis adapter: two replicas of one installation (a
// prefix of their own), each with its own subscriber connection, publishing on a shared one.
const { redis, newPrefix, connect } = testRedis();
const feeds: RedisChangeFeed[] = [];

afterAll(async () => {
  await Promise.all(feeds.map((f) => f.close()));
});

changeFeedContract('redis', async () => {
  const prefix = newPrefix();
  const feed = await createRedisChangeFeed(redis, connect(), prefix);
  const other = await createRedisChangeFeed(connect(), connect(), prefix);
  feeds.push(feed, other);
  return { feed, other };
});
