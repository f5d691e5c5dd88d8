import { describe, expect, it } from 'vitest';
import { checkTokenExpiry, reissueMissingTokens, sweepExecutions } from '../../../src/app/execute-approved.ts';
import { createMemoryApp, type MemoryApp } from '../../helpers/memory/app.ts';

// The safety nets of execution: the sweep settles an execution whose worker is gone (never
// re-running it), the token-expiry job ends an approval nobody acted on, and reconcile issues
// the token of an approval whose process stopped between the two commits.

const TOKEN_TTL = 5 * 60_000;
const LEASE = 5_000 + 30_000; // the deploy executor's timeout + the lease margin
const ship = { action: { tool: 'deploy', operation: 'ship', target: 'api' } };

async function approvedDeploy(app: MemoryApp) {
  const p = await app.submit(ship, 'ops-agent');
  await app.vote(p.id, 'carol');
  return app.get(p.id);
}

/** A worker that dies while the request is out: the proposal is left executing, tracked. */
async function abandoned(app: MemoryApp) {
  const p = await approvedDeploy(app);
  app.executor.answer(() => Promise.reject(new Error('SIGKILL')));
  await app.runExecute(p.id).catch(() => undefined);
  expect((await app.get(p.id)).status).toBe('executing');
  return p;
}

describe('sweepExecutions', () => {
  it('leaves a claimed execution alone until its deadline, then settles it failed / unknown, never re-sent', async () => {
    const app = await createMemoryApp();
    const p = await abandoned(app);
    expect(await app.ledger.executingDeadline(p.id)).toBe(app.clock.now() + LEASE);

    app.clock.advance(LEASE - 1);
    expect(await sweepExecutions(app.x)).toBe(0);
    // BullMQ delivers the stalled job again meanwhile: someone is on it.
    await app.runExecute(p.id);
    expect((await app.get(p.id)).status).toBe('executing');

    app.clock.advance(1);
    expect(await sweepExecutions(app.x)).toBe(1);
    const settled = await app.get(p.id);
    expect(settled).toMatchObject({ status: 'failed', execution: { outcome: 'unknown', reason: 'interrupted' } });
    expect(await app.ledger.state(p.execution!.token_id)).toBe('closed');
    expect(await app.ledger.executingDeadline(p.id)).toBeNull();
    expect(app.executor.sent).toHaveLength(1);
    expect(await sweepExecutions(app.x)).toBe(0);
  });

  it('the stalled job re-delivered after the deadline settles it the same way', async () => {
    const app = await createMemoryApp();
    const p = await abandoned(app);
    app.clock.advance(LEASE);
    await app.runExecute(p.id);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'unknown', reason: 'interrupted' });
    expect(app.executor.sent).toHaveLength(1);
  });

  it('drops tracking of a proposal that is no longer executing, without counting it', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    await app.runExecute(p.id);
    await app.ledger.trackExecuting(p.id, app.clock.now());
    expect(await sweepExecutions(app.x)).toBe(0);
    expect(await app.ledger.executingDeadline(p.id)).toBeNull();
    expect((await app.get(p.id)).status).toBe('succeeded');
  });
});

describe('the token-expiry job', () => {
  it('ends an approval whose token nobody used: failed / not_run, token revoked, at expiry + 250 ms', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(); // billing-agent polls
    await app.vote(p.id, 'alice');
    const { token_id } = (await app.get(p.id)).execution!;
    app.clock.advance(TOKEN_TTL + 249);
    await app.runDue();
    expect((await app.get(p.id)).status).toBe('approved');
    app.clock.advance(1);
    await app.runDue();
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired' });
    expect(await app.ledger.state(token_id)).toBe('revoked');
  });

  it('does nothing to an execution under way, or before the token really expired', async () => {
    const app = await createMemoryApp();
    const p = await abandoned(app);
    app.clock.advance(TOKEN_TTL);
    await checkTokenExpiry(app.x, p.id);
    expect((await app.get(p.id)).status).toBe('executing');

    const q = await approvedDeploy(app);
    await checkTokenExpiry(app.x, q.id);
    expect((await app.get(q.id)).status).toBe('approved');
  });
});

describe('reissueMissingTokens (reconcile)', () => {
  /** An approval whose token was never issued: the issuer's process stopped after the approval commit. */
  async function approvedWithoutToken(app: MemoryApp) {
    const save = app.ledger.save.bind(app.ledger);
    app.ledger.save = async () => Promise.reject(new Error('process stopped'));
    const p = await approvedDeploy(app);
    app.ledger.save = save;
    expect(p.status).toBe('approved');
    expect(p.execution).toBeUndefined();
    return p;
  }

  it('issues the missing token once the grace period has passed, and only once', async () => {
    const app = await createMemoryApp();
    const p = await approvedWithoutToken(app);
    expect(app.logger.at('error').map((l) => l.obj)).toMatchObject([{ proposal_id: p.id, subscriber: 'issue-execution' }]);

    app.clock.advance(30_000 - 1);
    expect(await reissueMissingTokens(app.x)).toBe(0);
    app.clock.advance(1);
    expect(await reissueMissingTokens(app.x)).toBe(1);
    expect((await app.get(p.id)).execution?.mode).toBe('executor');
    expect(app.queue.executions).toEqual([p.id]);
    expect(app.logger.said('approved proposal had no execution token')).toBe(true);
    // The token commit went through the flow: the cards are updated for it.
    expect(app.jobs.notified.some((j) => j.kind === 'update' && j.version === 3)).toBe(true);

    expect(await reissueMissingTokens(app.x)).toBe(0);
    expect(app.ledger.saved).toHaveLength(1);
    await app.runExecute(p.id);
    expect((await app.get(p.id)).status).toBe('succeeded');
  });

  it('looks back only over its window', async () => {
    const app = await createMemoryApp();
    const p = await approvedWithoutToken(app);
    app.clock.advance(30 * 60_000 + 1);
    expect(await reissueMissingTokens(app.x)).toBe(0);
    expect((await app.get(p.id)).execution).toBeUndefined();
  });

  it('replaces a token a stopped issuer stored but never recorded on the proposal', async () => {
    const app = await createMemoryApp();
    const record = app.store.commit.bind(app.store);
    let failed = false;
    app.store.commit = async (next, version, events) => {
      if (!failed && next.execution !== undefined) {
        failed = true;
        throw new Error('process stopped');
      }
      return record(next, version, events);
    };
    const p = await approvedDeploy(app);
    expect(app.ledger.saved).toHaveLength(1);
    expect(p.execution).toBeUndefined();
    app.clock.advance(30_000);
    expect(await reissueMissingTokens(app.x)).toBe(1);
    const issued = await app.get(p.id);
    expect(app.ledger.saved).toHaveLength(2);
    expect(issued.execution?.token_id).toBe(app.ledger.saved[1]?.jti);
    expect(await app.ledger.tokenFor(p.id, issued.execution!.token_id)).toBe(app.ledger.saved[1]?.token);
  });

  it('adds the jobs again for a token recorded whose jobs were never added', async () => {
    const app = await createMemoryApp();
    app.queue.failNext(new Error('queue unavailable'), 'scheduleTokenExpiry');
    const p = await approvedDeploy(app);
    expect(p.execution).toBeDefined();
    expect(app.queue.executions).toEqual([]);
    app.clock.advance(30_000);
    expect(await reissueMissingTokens(app.x)).toBe(0); // nothing issued: resumed
    expect(app.queue.tokenExpiries).toEqual([{ proposalId: p.id, at: p.execution!.token_expires_at + 250 }]);
    expect(app.queue.executions).toEqual([p.id]);
  });

  it('still follows up the token commit when its jobs could not be added: the card is updated to the recorded version', async () => {
    const app = await createMemoryApp();
    app.queue.failNext(new Error('queue unavailable'), 'scheduleTokenExpiry');
    const p = await approvedDeploy(app);
    const updates = app.notifyJobs().filter((j) => j.kind === 'update' && j.proposal_id === p.id).map((j) => (j.kind === 'update' ? j.version : 0));
    expect(updates).toContain(p.version); // the version that carries the token
    expect(app.logger.lines.some((l) => l.msg === 'follow-up after a committed change failed')).toBe(true);
  });

  it('fails as not run an approval whose recorded token expired before its jobs were added', async () => {
    const app = await createMemoryApp({ tokenTtlMs: 20_000 });
    app.queue.failNext(new Error('queue unavailable'), 'scheduleTokenExpiry');
    const p = await approvedDeploy(app);
    app.clock.advance(30_000);
    await reissueMissingTokens(app.x);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired' });
    expect(app.queue.executions).toEqual([]);
  });
});
