import { describe, expect, it } from 'vitest';
import { BACKGROUND_LIMIT, countDecisions, createCommitFlow, FollowUpFailed, wakeWaiters, type CommitSubscriber, type Committed } from '../../../src/app/after-commit.ts';
import type { Proposal } from '../../../src/core/proposal.ts';
import { afterCommitSubscribers } from '../../../src/wiring/after-commit.ts';
import { createMemoryApp } from '../../helpers/memory/app.ts';
import { proposalAt, T0 } from '../../contracts/fixtures.ts';
import { createMemoryChangeFeed } from '../../helpers/memory/change-feed.ts';
import { createMemoryJobScheduler } from '../../helpers/memory/job-scheduler.ts';
import { createMemoryLogger } from '../../helpers/memory/logger.ts';
import { createMemoryMetrics } from '../../helpers/memory/metrics.ts';

// The after-commit flow: every commit goes through the subscribers registered once at wiring;
// they run side by side; commits they make themselves are dispatched after the current one,
// never from inside it; a failure is logged and stops nobody.

const commit = (id: string, before: Proposal['status'] | null = 'pending', after: Proposal['status'] = 'approved'): Committed => ({
  before: before === null ? null : proposalAt(id, 'billing-agent', before),
  after: { ...proposalAt(id, 'billing-agent', after), version: 2 },
  events: [],
});

/** A subscriber that logs `name:proposal` when it starts and `/name:proposal` when it ends. */
function recorder(name: string, log: string[], then: (c: Committed) => readonly Committed[] | void = () => undefined): CommitSubscriber {
  return {
    name,
    async onCommitted(c) {
      log.push(`${name}:${c.after.id}`);
      await new Promise((resolve) => setImmediate(resolve));
      log.push(`/${name}:${c.after.id}`);
      return then(c);
    },
  };
}

describe('createCommitFlow', () => {
  it('runs every subscriber once per commit, side by side, in the order they are listed', async () => {
    const log: string[] = [];
    const flow = createCommitFlow(createMemoryLogger());
    flow.subscribe([recorder('a', log), recorder('b', log), recorder('c', log)]);
    await flow.dispatch(commit('p1'));
    // All three started before any finished: none waits for another.
    expect(log).toEqual(['a:p1', 'b:p1', 'c:p1', '/a:p1', '/b:p1', '/c:p1']);
  });

  it("dispatches a subscriber's own commits after the current commit is done, in order, never re-entrantly", async () => {
    const log: string[] = [];
    const flow = createCommitFlow(createMemoryLogger());
    const follow: Record<string, Committed[]> = { p1: [commit('p2'), commit('p3')], p2: [commit('p4')] };
    flow.subscribe([recorder('issue', log, (c) => follow[c.after.id]), recorder('notify', log)]);
    await flow.dispatch(commit('p1'));
    expect(log).toEqual([
      'issue:p1', 'notify:p1', '/issue:p1', '/notify:p1',
      'issue:p2', 'notify:p2', '/issue:p2', '/notify:p2',
      'issue:p3', 'notify:p3', '/issue:p3', '/notify:p3',
      'issue:p4', 'notify:p4', '/issue:p4', '/notify:p4',
    ]);
  });

  it('logs a failing subscriber by name and proposal; the others still run and their commits still follow', async () => {
    const log: string[] = [];
    const logger = createMemoryLogger();
    const flow = createCommitFlow(logger);
    const broken: CommitSubscriber = { name: 'broken', onCommitted: async () => Promise.reject(new Error('chat is down')) };
    flow.subscribe([broken, recorder('ok', log, (c) => (c.after.id === 'p1' ? [commit('p2')] : undefined))]);
    await expect(flow.dispatch(commit('p1'))).resolves.toBeUndefined();
    expect(log).toEqual(['ok:p1', '/ok:p1', 'ok:p2', '/ok:p2']);
    const errors = logger.at('error');
    expect(errors).toHaveLength(2);
    expect(errors[0]?.obj).toMatchObject({ proposal_id: 'p1', subscriber: 'broken' });
    expect((errors[0]?.obj as { err: Error }).err.message).toBe('chat is down');
    expect(errors[1]?.obj).toMatchObject({ proposal_id: 'p2', subscriber: 'broken' });
  });

  it('a subscriber that fails after committing (FollowUpFailed) still has its commits followed up; the cause is logged', async () => {
    const log: string[] = [];
    const logger = createMemoryLogger();
    const flow = createCommitFlow(logger);
    const cause = new Error('queue unavailable');
    const issuer: CommitSubscriber = {
      name: 'issue',
      onCommitted: async (c) => {
        if (c.after.id === 'p1') throw new FollowUpFailed(cause, [commit('p2')]);
      },
    };
    flow.subscribe([issuer, recorder('notify', log)]);
    await flow.dispatch(commit('p1'));
    expect(log).toEqual(['notify:p1', '/notify:p1', 'notify:p2', '/notify:p2']);
    expect(logger.at('error').map((l) => l.obj)).toEqual([{ err: cause, proposal_id: 'p1', subscriber: 'issue' }]);
  });

  it('refuses to dispatch before the subscribers are wired (a commit nobody follows up)', async () => {
    const flow = createCommitFlow(createMemoryLogger());
    await expect(flow.dispatch(commit('p1'))).rejects.toThrow('no subscribers');
  });

  it('takes its subscribers once: a second subscribe throws and the first list stays', async () => {
    const log: string[] = [];
    const flow = createCommitFlow(createMemoryLogger());
    flow.subscribe([recorder('first', log)]);
    expect(() => flow.subscribe([recorder('second', log)])).toThrow('registered once');
    expect(() => flow.subscribe([])).toThrow();
    await flow.dispatch(commit('p1'));
    expect(log).toEqual(['first:p1', '/first:p1']);
  });

  it('holds a copy of the list: changing the array after subscribe changes nothing', async () => {
    const log: string[] = [];
    const flow = createCommitFlow(createMemoryLogger());
    const list = [recorder('a', log)];
    flow.subscribe(list);
    list.push(recorder('late', log));
    await flow.dispatch(commit('p1'));
    expect(log).toEqual(['a:p1', '/a:p1']);
  });
});

describe('background dispatch (a new proposal answered before its follow-ups)', () => {
  /** A subscriber each commit of which waits until the test lets it go. */
  function gated() {
    const gates = new Map<string, () => void>();
    const sub: CommitSubscriber = { name: 'gated', onCommitted: (c) => new Promise<void>((r) => gates.set(c.after.id, r)) };
    return { sub, open: (id: string) => gates.get(id)?.(), held: () => [...gates.keys()] };
  }

  it('returns at once; settled and idle wait for the follow-ups; a failure is logged, not thrown', async () => {
    const logger = createMemoryLogger();
    const flow = createCommitFlow(logger);
    const g = gated();
    flow.subscribe([g.sub, { name: 'broken', onCommitted: async () => Promise.reject(new Error('boom')) }]);
    await flow.dispatchInBackground(commit('p1', null));
    expect(g.held()).toEqual(['p1']);
    expect(await flow.settled('other')).toBe(false);
    let settled = false;
    const waiting = flow.settled('p1').then((v) => (settled = v));
    let idle = false;
    const allDone = flow.idle().then(() => (idle = true));
    await Promise.resolve();
    expect([settled, idle]).toEqual([false, false]);
    g.open('p1');
    await Promise.all([waiting, allDone]);
    expect([settled, idle]).toEqual([true, true]);
    expect(logger.at('error').map((l) => l.msg)).toEqual(['follow-up after a committed change failed']);
    expect(await flow.settled('p1')).toBe(false);
  });

  it('past BACKGROUND_LIMIT running, the caller waits for its own follow-ups (a flood slows its senders down)', async () => {
    const flow = createCommitFlow(createMemoryLogger());
    const g = gated();
    flow.subscribe([g.sub]);
    for (let i = 0; i < BACKGROUND_LIMIT; i++) await flow.dispatchInBackground(commit(`p${i}`, null));
    let returned = false;
    const over = flow.dispatchInBackground(commit('over', null)).then(() => (returned = true));
    await new Promise((r) => setImmediate(r));
    expect(returned).toBe(false);
    g.open('over');
    await over;
    expect(returned).toBe(true);
    // idle with a deadline gives up on the ones still held.
    await flow.idle(Date.now() + 5);
    expect(g.held()).toHaveLength(BACKGROUND_LIMIT + 1);
  });
});

describe('the built-in subscribers', () => {
  it('wakeWaiters publishes when the status changes, not for a new proposal (nobody can wait on it yet) nor on a counted vote', async () => {
    const changes = createMemoryChangeFeed();
    const s = wakeWaiters(changes);
    await s.onCommitted(commit('p1', null, 'pending'));
    await s.onCommitted(commit('p1', 'pending', 'pending'));
    await s.onCommitted(commit('p1', 'pending', 'denied'));
    expect(changes.published).toEqual([{ proposalId: 'p1', status: 'denied' }]);
  });

  it('countDecisions times the end of the wait for people (not a policy decision), in seconds', async () => {
    const metrics = createMemoryMetrics();
    const s = countDecisions(metrics);
    const decided = commit('p1', 'pending', 'denied');
    decided.after.resolution = { status: 'denied', by: 'bob', reason: 'no', at: T0 + 42_500 };
    await s.onCommitted(decided);
    const byPolicy = commit('p2', null, 'approved');
    byPolicy.after.resolution = { status: 'approved', by: 'policy', reason: null, at: T0 };
    await s.onCommitted(byPolicy);
    await s.onCommitted(commit('p3', 'approved', 'executing'));
    await s.onCommitted(commit('p4', 'pending', 'pending'));
    // An expiry ends the wait too: counted under its own status.
    const expired = commit('p5', 'pending', 'expired');
    expired.after.resolution = { status: 'expired', by: null, reason: null, at: T0 + 1000 };
    await s.onCommitted(expired);
    expect(metrics.decisions).toEqual([
      { status: 'denied', seconds: 42.5 },
      { status: 'expired', seconds: 1 },
    ]);
  });
});

describe('the wired flow (src/wiring/after-commit.ts)', () => {
  it('lists the follow-ups in this order', async () => {
    const app = await createMemoryApp();
    expect(afterCommitSubscribers(app.deps, app.x).map((s) => s.name)).toEqual([
      'wake-waiters', 'count-decisions', 'notify-platforms', 'issue-execution', 'call-agent-back', 'revoke-task-credential',
    ]);
  });

  it('an approval: its own commit first, then the token commit it caused, each through every subscriber once', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ action: { tool: 'email', operation: 'send', target: 'customer@example.com' } }, 'callback-agent'); // secops: 3 platforms
    app.jobs.clear();
    await app.vote(p.id, 'alice');
    const approved = await app.get(p.id);

    expect(approved.version).toBe(3); // 2: approved, 3: token recorded
    expect(app.ledger.saved).toHaveLength(1);
    // notify-platforms ran for both commits: version 2 replies to the decision, version 3 has nothing to say.
    expect(app.jobs.notified.filter((j) => j.kind === 'update').map((j) => (j.kind === 'update' ? j.version : 0))).toEqual([2, 2, 2, 3, 3, 3]);
    expect(app.jobs.notified.filter((j) => j.kind === 'reply')).toHaveLength(6);
    // The approved callback (with the token) once, from issueExecution; call-agent-back stays quiet.
    expect(app.queue.callbacks).toEqual([{ proposalId: p.id, status: 'approved' }]);
    expect(app.changes.published.filter((c) => c.proposalId === p.id).map((c) => c.status)).toEqual(['approved']);
    expect(app.metrics.decisions).toHaveLength(1);
    expect(app.logger.at('error')).toEqual([]);
  });

  it('a subscriber that fails (the notify queue is down) does not keep the token from being issued', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ action: { tool: 'deploy', operation: 'ship', target: 'api' } }, 'ops-agent');
    app.jobs.failNext(new Error('queue unavailable'), 'notify');
    const r = await app.vote(p.id, 'carol');
    expect(r.outcome.kind).toBe('decided');
    expect((await app.get(p.id)).execution?.mode).toBe('executor');
    expect(app.queue.executions).toEqual([p.id]);
    expect(app.logger.at('error').map((l) => l.obj)).toMatchObject([{ proposal_id: p.id, subscriber: 'notify-platforms' }]);
  });
});
