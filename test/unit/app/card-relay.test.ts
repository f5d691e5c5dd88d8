import { describe, expect, it } from 'vitest';
import { RECLAIM_IDLE_MS, relayCards } from '../../../src/app/card-relay.ts';
import type { Queues } from '../../../adapters/bullmq/queues.ts';
import { notifyHandlers } from '../../../src/wiring/workers.ts';
import { createMemoryApp } from '../../helpers/memory/app.ts';

// The card relay against crashes between its steps (the outbox entry taken, the card's post
// claimed, the card posted, the entry done): no card is lost, none is posted twice.

/** Longer than deliverNotification's POST_CLAIM_SECONDS: a dead poster's claim has lapsed. */
const CLAIM_LAPSED_MS = 121_000;

describe('the card relay after a crash', () => {
  it('a relay that died holding the post claim: the entry is not forgotten while the claim stands, and is posted once it lapses', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    // The dead relay took the entry and claimed the Slack post, then died before posting.
    const [taken] = await app.outbox.take('died', 10, 0);
    expect(taken?.proposal_id).toBe(p.id);
    expect((await app.cards.claimPost(p.id, 'slack', 120)).kind).toBe('claimed');

    // Another relay reclaims it while the dead one's claim still stands.
    app.clock.advance(RECLAIM_IDLE_MS);
    const reclaimed = await app.outbox.reclaim('alive', RECLAIM_IDLE_MS, 10);
    await app.outbox.done(await relayCards({ ...app.notify, jobs: app.jobs }, reclaimed));
    // Nobody is posting the Slack card: the entry must stay for a later reclaim.
    expect(app.channel('slack').posts).toHaveLength(0);
    expect(app.outbox.waiting()).toEqual([p.id]);

    app.clock.advance(CLAIM_LAPSED_MS);
    const again = await app.outbox.reclaim('alive', RECLAIM_IDLE_MS, 10);
    await app.outbox.done(await relayCards({ ...app.notify, jobs: app.jobs }, again));
    expect(app.channel('slack').posts.map((c) => c.card.proposalId)).toEqual([p.id]);
    expect(app.channel('console').posts.map((c) => c.card.proposalId)).toEqual([p.id]);
    expect(app.outbox.waiting()).toEqual([]);
  });

  it('a relay that died after the card was saved, before done: the reclaim posts nothing twice and forgets the entry', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const taken = await app.outbox.take('died', 10, 0);
    await relayCards({ ...app.notify, jobs: app.jobs }, taken); // posted; `done` never called
    app.clock.advance(RECLAIM_IDLE_MS);
    const reclaimed = await app.outbox.reclaim('alive', RECLAIM_IDLE_MS, 10);
    expect(reclaimed.map((e) => e.proposal_id)).toEqual([p.id]);
    await app.outbox.done(await relayCards({ ...app.notify, jobs: app.jobs }, reclaimed));
    expect(app.channel('slack').posts).toHaveLength(1);
    expect(app.channel('console').posts).toHaveLength(1);
    expect(app.outbox.waiting()).toEqual([]);
  });
});

describe('a post job after a crash', () => {
  it('a post job that finds the post claimed by a poster that died fails, so that the queue retries it (a completed one is never run again, and its id keeps the repair from adding it anew)', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    // The worker running the post job (queued after the relay's attempt failed) claimed and died;
    // BullMQ hands the stalled job out again while the claim stands.
    expect((await app.cards.claimPost(p.id, 'slack', 120)).kind).toBe('claimed');
    const handlers = notifyHandlers(app.deps, app.notify, app.jobs as unknown as Queues);
    const job = { kind: 'post', proposal_id: p.id, platform: 'slack' } as const;
    await expect(handlers.notify(job)).rejects.toThrow(/claim/);
    app.clock.advance(CLAIM_LAPSED_MS);
    await handlers.notify(job);
    expect(app.channel('slack').posts.map((c) => c.card.proposalId)).toEqual([p.id]);
  });
});

describe('the card relay and entries it cannot use', () => {
  it('an empty, oversized or key-like proposal id, or a proposal already decided: forgotten without a post; the good entry beside them is posted', async () => {
    const app = await createMemoryApp();
    const good = await app.submit();
    const denied = await app.submit({ action: { tool: 'postgres', operation: 'drop', target: 'db' } });
    const entries = [
      { id: '1-0', proposal_id: '' },
      { id: '2-0', proposal_id: 'p_'.padEnd(100_000, 'x') },
      { id: '3-0', proposal_id: `${good.id}:posting:slack` },
      { id: '4-0', proposal_id: denied.id },
      { id: '5-0', proposal_id: good.id },
    ];
    expect((await relayCards({ ...app.notify, jobs: app.jobs }, entries)).map((e) => e.id)).toEqual(['1-0', '2-0', '3-0', '4-0', '5-0']);
    expect(app.channel('slack').posts.map((c) => c.card.proposalId)).toEqual([good.id]);
    expect(app.jobs.notified).toEqual([]);
  });
});
