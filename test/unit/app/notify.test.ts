import { describe, expect, it } from 'vitest';
import { CardNotPostedError, deliverNotification, recordCardFailure } from '../../../src/app/deliver-notification.ts';
import { relayCards, RECLAIM_IDLE_MS } from '../../../src/app/card-relay.ts';
import { repairMissingCards } from '../../../src/app/repair-cards.ts';
import type { NotifyJob } from '../../../src/core/ports.ts';
import { BOARD_CONVERSATION, createMemoryApp, PUBLIC_URL } from '../../helpers/memory/app.ts';

// Cards on every platform of the route: the card relay posts a new proposal's cards from the
// outbox its create step wrote; notify-platforms turns later commits into one job per
// platform; deliverNotification runs a job (at least once) rendering the proposal as it is
// now; repairMissingCards re-posts what a crash never enqueued.

const secops = { action: { tool: 'crm', operation: 'export', target: 'all' } }; // default: slack, teams, console
const replies = (jobs: NotifyJob[]) => jobs.flatMap((j) => (j.kind === 'reply' ? [`${j.platform} ${j.key} ${j.reply.kind}: ${j.reply.text}`] : []));

describe('notify jobs per platform of the route', () => {
  it('a new pending proposal: no job, but the relay posts one card per platform of its route', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(secops);
    const board = await app.submit({ action: { tool: 'minutes', operation: 'publish', target: 'q3' } });
    expect(app.notifyJobs()).toEqual([]);
    expect(await app.relayCards()).toEqual([]);
    const postedOn = (id: string) => ['slack', 'teams', 'console'].filter((platform) => app.channel(platform).posts.some((c) => c.card.proposalId === id));
    expect(postedOn(p.id)).toEqual(['slack', 'teams', 'console']);
    expect(postedOn(board.id)).toEqual(['teams']);
  });

  it('the relay: a card that fails goes to the notify queue for retries; the entry is done, and a second read posts nothing twice', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(secops);
    app.channel('teams').failNext(new Error('rate_limited'));
    expect(await app.relayCards()).toEqual([]);
    expect(app.notifyJobs()).toEqual([{ kind: 'post', proposal_id: p.id, platform: 'teams' }]);
    expect(app.logger.at('warn').map((l) => l.msg)).toContain('card not posted at once: queued for retries');
    expect(await app.runNotifyJobs()).toEqual([]);
    // The same entry read again (a relay that died before `done`): every card exists, nothing is posted twice.
    await relayCards({ ...app.notify, jobs: app.jobs }, [{ id: 'again', proposal_id: p.id }]);
    for (const platform of ['slack', 'teams', 'console']) expect(app.channel(platform).posts).toHaveLength(1);
  });

  it('the relay: an entry whose proposal cannot be read is left for a reclaim, which posts it', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const get = app.store.get;
    app.store.get = async () => {
      throw new Error('redis down');
    };
    expect(await app.relayCards()).toEqual([p.id]);
    app.store.get = get;
    expect(await app.outbox.take('other-relay', 10, 0)).toEqual([]);
    app.clock.advance(RECLAIM_IDLE_MS);
    const reclaimed = await app.outbox.reclaim('other-relay', RECLAIM_IDLE_MS, 10);
    expect(reclaimed.map((e) => e.proposal_id)).toEqual([p.id]);
    await app.outbox.done(await relayCards({ ...app.notify, jobs: app.jobs }, reclaimed));
    expect(app.outbox.waiting()).toEqual([]);
    expect(app.channel('slack').posts).toHaveLength(1);
  });

  it('a decision: an update per platform with the version, and a thread reply per platform and event', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(secops);
    app.jobs.clear();
    await app.vote(p.id, 'carol', 'approve', null, 'teams');
    // Version 2 is the decision; version 3 (the token recorded) updates the cards again.
    const v2 = app.jobs.notified.filter((j) => (j.kind === 'update' ? j.version === 2 : j.kind === 'reply' && j.key.startsWith('2-')));
    expect(v2.filter((j) => j.kind === 'update')).toEqual(['slack', 'teams', 'console'].map((platform) => ({ kind: 'update', proposal_id: p.id, platform, version: 2 })));
    expect(replies(v2)).toEqual([
      'slack 2-0 approval: carol approved (1 of 1, via teams)',
      'slack 2-1 decided: Approved by carol',
      'teams 2-0 approval: carol approved (1 of 1, via teams)',
      'teams 2-1 decided: Approved by carol',
      'console 2-0 approval: carol approved (1 of 1, via teams)',
      'console 2-1 decided: Approved by carol',
    ]);
  });

  it('a denial says its reason once (no separate "decided" reply); nothing for refusals', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.jobs.clear();
    await app.vote(p.id, 'erin');
    expect(app.jobs.notified).toEqual([]);
    await app.vote(p.id, 'bob', 'deny', 'duplicate');
    expect(replies(app.jobs.notified)).toEqual(['slack 2-0 denial: bob denied: duplicate', 'console 2-0 denial: bob denied: duplicate']);
  });

  it('proposals the policy decided have no card, ever', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ action: { tool: 'deploy', operation: 'restart', target: 'api' } }, 'ops-agent');
    await app.runExecute(p.id);
    expect((await app.get(p.id)).status).toBe('succeeded');
    expect(app.jobs.notified).toEqual([]);
  });
});

describe('deliverNotification', () => {
  it("posts the card to the route's target once, saves where it is and audits it", async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    expect(await app.runNotifyJobs()).toEqual([]);
    const slack = app.channel('slack');
    expect(slack.posts).toHaveLength(1);
    expect(slack.posts[0]).toMatchObject({ target: 'C0FINANCE', card: { proposalId: p.id, status: 'pending', actionable: true, reasonRequired: true, link: `${PUBLIC_URL}/console/proposals/${p.id}` } });
    expect(app.channel('console').posts[0]?.target).toBe('finance');
    expect(app.channel('teams').posts).toEqual([]);
    expect(await app.cards.list(p.id)).toEqual([
      { platform: 'console', conversation: 'finance', message: 'console-m1' },
      { platform: 'slack', conversation: 'C0FINANCE', message: 'slack-m1' },
    ]);
    expect(app.events({ type: 'card_posted' }).map((e) => e.data)).toEqual([
      { platform: 'slack', conversation: 'C0FINANCE', message: 'slack-m1' },
      { platform: 'console', conversation: 'finance', message: 'console-m1' },
    ]);
    // The same job delivered again (at least once): no second card.
    await deliverNotification(app.notify, { kind: 'post', proposal_id: p.id, platform: 'slack' });
    expect(slack.posts).toHaveLength(1);
  });

  it('two posters of the same card at once (two relays, a job run twice): one card, one card_posted, no claim left', async () => {
    const app = await createMemoryApp({ platforms: ['slack'] });
    const p = await app.submit();
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    await Promise.all([deliverNotification(app.notify, job), deliverNotification(app.notify, job), deliverNotification(app.notify, job)]);
    await app.runNotifyJobs();
    expect(app.channel('slack').posts).toHaveLength(1);
    expect(app.events({ type: 'card_posted' })).toHaveLength(1);
    expect(app.cards.claims()).toEqual([]);
  });

  it('posts to the channel a route fixes in the policy', async () => {
    const app = await createMemoryApp();
    await app.submit({ action: { tool: 'minutes', operation: 'publish', target: 'q3' } });
    await app.runNotifyJobs();
    expect(app.channel('teams').posts.map((x) => x.target)).toEqual([BOARD_CONVERSATION]);
  });

  it('does not post while another poster holds the claim, and posts after it lapses', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    expect((await app.cards.claimPost(p.id, 'slack', 120)).kind).toBe('claimed');
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    await deliverNotification(app.notify, job);
    expect(app.channel('slack').posts).toEqual([]);
    app.clock.advance(120_000);
    await deliverNotification(app.notify, job);
    expect(app.channel('slack').posts).toHaveLength(1);
  });

  it('a failed post releases its claim, so the retry posts; nothing is audited for the failure itself', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    app.channel('slack').failNext(new Error('rate_limited'));
    await expect(deliverNotification(app.notify, job)).rejects.toThrow('rate_limited');
    expect(app.cards.claims()).toEqual([]);
    expect(app.events({ type: 'card_posted' })).toEqual([]);
    await deliverNotification(app.notify, job);
    expect(app.channel('slack').posts).toHaveLength(1);
  });

  it('a proposal decided while its card was on the way: the card is updated to the latest state at once', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const slack = app.channel('slack');
    const post = slack.postCard.bind(slack);
    slack.postCard = async (target, card) => {
      await app.vote(p.id, 'alice');
      return post(target, card);
    };
    await deliverNotification(app.notify, { kind: 'post', proposal_id: p.id, platform: 'slack' });
    expect(slack.posts[0]?.card.status).toBe('pending');
    expect(slack.updates.map((u) => u.card.status)).toEqual(['approved']);
  });

  it('does not post a card for a proposal that is no longer pending, and refuses a platform without an adapter', async () => {
    const app = await createMemoryApp({ platforms: ['slack'] });
    const p = await app.submit();
    await expect(deliverNotification(app.notify, { kind: 'post', proposal_id: p.id, platform: 'console' })).rejects.toThrow('no console adapter is configured');
    await app.vote(p.id, 'alice');
    await deliverNotification(app.notify, { kind: 'post', proposal_id: p.id, platform: 'slack' });
    expect(app.channel('slack').posts).toEqual([]);
    expect(app.cards.claims()).toEqual([]);
  });

  it('an update renders the proposal as it is now, even from a job made for an older version', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ context: { value: { amount: 25_000, currency: 'EUR' } } });
    await app.runNotifyJobs();
    await app.vote(p.id, 'alice');
    await app.vote(p.id, 'bob');
    const stale = app.notifyJobs().find((j) => j.kind === 'update' && j.platform === 'slack' && j.version === 2);
    expect(stale).toBeDefined();
    await deliverNotification(app.notify, stale!);
    const slack = app.channel('slack');
    expect(slack.updates.map((u) => [u.ref.message, u.card.status, u.card.approvals.length])).toEqual([['slack-m1', 'approved', 2]]);
  });

  it('a reply waits for its card (the queue retries), then goes to the thread of every card on that platform', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const reply = { kind: 'reply', proposal_id: p.id, platform: 'slack', reply: { proposalId: p.id, kind: 'notice', text: 'hello' }, key: 'k' } as const;
    await expect(deliverNotification(app.notify, reply)).rejects.toBeInstanceOf(CardNotPostedError);
    await app.runNotifyJobs();
    await deliverNotification(app.notify, reply);
    expect(app.channel('slack').replies).toEqual([{ ref: { platform: 'slack', conversation: 'C0FINANCE', message: 'slack-m1' }, reply: reply.reply }]);
    expect(app.channel('console').replies).toEqual([]);
  });

  it('a job for a proposal that no longer exists is dropped', async () => {
    const app = await createMemoryApp();
    await expect(deliverNotification(app.notify, { kind: 'post', proposal_id: 'p_00000000000000000000000000', platform: 'slack' })).resolves.toBeUndefined();
  });
});

describe('after the last retry: recordCardFailure', () => {
  it('a post: card_failed audited, and another round later while the proposal is pending', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    expect(await recordCardFailure(app.notify, job, new Error('channel_not_found'))).toBe(true);
    expect(app.events({ type: 'card_failed' })[0]).toMatchObject({ proposal_id: p.id, agent: 'billing-agent', data: { platform: 'slack', error: 'channel_not_found', retry_later: true } });
    expect((await app.get(p.id)).status).toBe('pending');
    await app.vote(p.id, 'alice');
    expect(await recordCardFailure(app.notify, job, new Error('channel_not_found'))).toBe(false);
  });

  it('an update or reply: logged only', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    expect(await recordCardFailure(app.notify, { kind: 'update', proposal_id: p.id, platform: 'slack', version: 2 }, 'boom')).toBe(false);
    expect(app.events({ type: 'card_failed' })).toEqual([]);
    expect(app.logger.at('error')[0]?.obj).toMatchObject({ proposal_id: p.id, platform: 'slack', kind: 'update', error: 'boom' });
  });
});

describe('repairMissingCards', () => {
  it('re-posts the cards of pending proposals past the grace period that are missing on a served platform', async () => {
    const app = await createMemoryApp({ platforms: ['slack', 'console'] });
    const missing = await app.submit(secops); // slack, teams (not served here), console
    const posted = await app.submit();
    await deliverNotification(app.notify, { kind: 'post', proposal_id: posted.id, platform: 'slack' });
    await deliverNotification(app.notify, { kind: 'post', proposal_id: posted.id, platform: 'console' });
    const decided = await app.submit();
    await app.vote(decided.id, 'alice');
    app.clock.advance(60_000 - 1);
    const young = await app.submit();
    app.jobs.clear();
    const repair = { ...app.notify, jobs: app.jobs };

    expect(await repairMissingCards(repair)).toBe(0);
    app.clock.advance(1);
    expect(await repairMissingCards(repair)).toBe(2);
    expect(app.jobs.notified).toEqual([
      { kind: 'post', proposal_id: missing.id, platform: 'slack' },
      { kind: 'post', proposal_id: missing.id, platform: 'console' },
    ]);
    expect(app.jobs.notified.some((j) => j.proposal_id === young.id)).toBe(false);
  });
});
