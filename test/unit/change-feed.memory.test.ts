import { describe, expect, it } from 'vitest';
import { changeFeedContract } from '../contracts/change-feed.contract.ts';
import { createMemoryChangeFeed } from '../helpers/memory/change-feed.ts';

changeFeedContract('memory', async () => {
  const feed = createMemoryChangeFeed();
  return { feed, other: feed.replica() };
});

describe('memory ChangeFeed', () => {
  it('records what was published and tells a test when a long-poll is waiting', async () => {
    const feed = createMemoryChangeFeed();
    const other = feed.replica();
    const waiting = other.whenWaiting('p_1');
    const poll = feed.waitForChange('p_1', 10_000);
    await waiting;
    expect(other.waiting('p_1')).toBe(1);
    await other.publish('p_1', 'approved');
    expect(await poll).toBe('approved');
    expect(feed.waiting('p_1')).toBe(0);
    expect(feed.published).toEqual([{ proposalId: 'p_1', status: 'approved' }]);
  });

  it('keeps nothing for later: a change published while nobody waits is gone', async () => {
    const feed = createMemoryChangeFeed();
    await feed.publish('p_2', 'denied');
    expect(await feed.waitForChange('p_2', 10)).toBeNull();
  });
});
