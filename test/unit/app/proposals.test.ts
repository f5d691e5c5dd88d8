import { afterEach, describe, expect, it, vi } from 'vitest';
import { cancelProposal, expireOverdue, expireProposal, getProposal, waitForProposal, type Viewer } from '../../../src/app/proposals.ts';
import { ForbiddenError, NotFoundError } from '../../../src/core/errors.ts';
import { createMemoryApp, type MemoryApp } from '../../helpers/memory/app.ts';
import { T0 } from '../../helpers/memory/clock.ts';

// get / wait / cancel / expire, as an agent (only its own proposals) or an admin. Time is the
// manual clock; the long-poll's timers (the change feed's timeout) are vitest's fake timers,
// moved together with it.

const billing: Viewer = { kind: 'agent', id: 'billing-agent' };
const ops: Viewer = { kind: 'agent', id: 'ops-agent' };
const admin: Viewer = { kind: 'admin' };
const TTL = 15 * 60_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('getProposal', () => {
  it('lets the owner and an admin read, refuses another agent, and names a missing id', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    expect(await getProposal(app.deps, billing, p.id)).toEqual(p);
    expect(await getProposal(app.deps, admin, p.id)).toEqual(p);
    await expect(getProposal(app.deps, ops, p.id)).rejects.toBeInstanceOf(ForbiddenError);
    await expect(getProposal(app.deps, admin, 'p_00000000000000000000000000')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('expires an overdue proposal on read (no job has run yet), once', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(TTL - 1);
    expect((await getProposal(app.deps, billing, p.id)).status).toBe('pending');
    app.clock.advance(1);
    const read = await getProposal(app.deps, billing, p.id);
    expect(read).toMatchObject({ status: 'expired', resolution: { status: 'expired', by: null, reason: 'no decision before the deadline', at: T0 + TTL } });
    await getProposal(app.deps, admin, p.id);
    expect(app.events({ proposal: p.id, type: 'expired' })).toHaveLength(1);
    expect(app.events({ proposal: p.id, type: 'expired' })[0]?.data).toEqual({ approvals: 0, required: 1 });
  });

  it('another agent cannot expire it by reading', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(TTL);
    await expect(getProposal(app.deps, ops, p.id)).rejects.toBeInstanceOf(ForbiddenError);
    expect((await app.get(p.id)).status).toBe('pending');
  });
});

describe('expiry', () => {
  it('the expiry job expires at the deadline, counts the approvals so far, and updates cards and waiters', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ context: { value: { amount: 25_000, currency: 'EUR' } } });
    await app.vote(p.id, 'alice');
    expect((await expireProposal(app.deps, p.id)).outcome.expired).toBe(false);
    app.clock.advance(30 * 60_000);
    await app.runDue();
    expect((await app.get(p.id)).status).toBe('expired');
    expect(app.events({ proposal: p.id, type: 'expired' })[0]?.data).toEqual({ approvals: 1, required: 2 });
    expect(app.changes.published.at(-1)).toEqual({ proposalId: p.id, status: 'expired' });
    expect(app.notifyJobs().filter((j) => j.kind === 'reply').map((j) => (j.kind === 'reply' ? j.reply.text : ''))).toContain('Expired: no decision before the deadline (1 of 2 approvals)');
  });

  it('expireProposal leaves a decided proposal alone', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    await app.vote(p.id, 'alice');
    app.clock.advance(TTL);
    const r = await expireProposal(app.deps, p.id);
    expect(r).toMatchObject({ changed: false, outcome: { expired: false } });
    expect(r.proposal.status).toBe('approved');
  });

  it('expireOverdue (the sweep) expires exactly the overdue pending proposals', async () => {
    const app = await createMemoryApp();
    const soon = await app.submit(); // 15m
    const later = await app.submit({ action: { tool: 'crm', operation: 'export', target: 'all' } }); // 15m, secops
    app.clock.advance(60_000);
    const last = await app.submit(); // due at 16m
    app.clock.advance(TTL - 60_000);
    expect(await expireOverdue(app.deps)).toBe(2);
    expect((await app.get(soon.id)).status).toBe('expired');
    expect((await app.get(later.id)).status).toBe('expired');
    expect((await app.get(last.id)).status).toBe('pending');
    expect(await expireOverdue(app.deps)).toBe(0);
  });
});

describe('cancelProposal', () => {
  it('the agent cancels its pending proposal once, with its reason; the second cancel is refused', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const r = await cancelProposal(app.deps, billing, p.id, 'customer withdrew');
    expect(r.outcome).toEqual({ kind: 'cancelled' });
    expect(r.proposal).toMatchObject({ status: 'cancelled', resolution: { status: 'cancelled', by: 'agent:billing-agent', reason: 'customer withdrew' } });
    expect(app.events({ proposal: p.id, type: 'cancelled' })[0]).toMatchObject({ actor: 'agent:billing-agent', data: { reason: 'customer withdrew' } });

    const again = await cancelProposal(app.deps, billing, p.id, null);
    expect(again).toMatchObject({ changed: false, outcome: { kind: 'refused', status: 'cancelled', message: 'this proposal is already cancelled' } });
    expect(app.events({ proposal: p.id, type: 'cancelled' })).toHaveLength(1);
  });

  it("refuses another agent's cancel before touching the proposal; an admin cancels as admin", async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    await expect(cancelProposal(app.deps, ops, p.id, null)).rejects.toBeInstanceOf(ForbiddenError);
    expect((await app.get(p.id)).version).toBe(1);
    const r = await cancelProposal(app.deps, admin, p.id, null);
    expect(r.proposal.resolution).toMatchObject({ by: 'admin', reason: null });
  });

  it('a cancel after the deadline is refused, but the expiry it found is committed', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(TTL);
    const r = await cancelProposal(app.deps, billing, p.id, 'too late');
    expect(r.outcome).toEqual({ kind: 'refused', status: 'expired', message: 'this proposal has expired' });
    expect(r).toMatchObject({ changed: true, proposal: { status: 'expired' } });
    expect(app.trail(p.id)).toEqual(['proposal_received', 'policy_decided', 'expired']);
  });

  it('an approved proposal cannot be cancelled by its agent', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    await app.vote(p.id, 'alice');
    const r = await cancelProposal(app.deps, billing, p.id, null);
    expect(r.outcome).toMatchObject({ kind: 'refused', status: 'approved' });
  });
});

describe('waitForProposal', () => {
  /** Moves the manual clock and the long-poll's timers together. */
  const tick = async (app: MemoryApp, ms: number) => {
    app.clock.advance(ms);
    await vi.advanceTimersByTimeAsync(ms);
  };
  /** Until the waiter listens and has read the proposal once (its read comes after it listens). */
  const listening = async (app: MemoryApp, id: string) => {
    await app.changes.whenWaiting(id);
    await new Promise((resolve) => setImmediate(resolve));
  };
  const fakeTimers = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  /** The promise, and whether it has settled yet (so a wait that would hang fails at once). */
  const track = <T>(promise: Promise<T>) => {
    const state = { settled: false, promise: promise.finally(() => (state.settled = true)) };
    return state;
  };

  it('answers at once when the status is final', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ action: { tool: 'postgres', operation: 'drop', target: 'db' } });
    expect((await waitForProposal(app.deps, billing, p.id, 60_000)).status).toBe('rejected');
    expect(app.changes.waiting(p.id)).toBe(0);
  });

  it('wakes on a decision, with the new status, and leaves no listener behind', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const waiting = waitForProposal(app.deps, billing, p.id, 60_000);
    await listening(app, p.id);
    await app.vote(p.id, 'bob', 'deny', 'duplicate');
    expect((await waiting).status).toBe('denied');
    expect(app.changes.waiting(p.id)).toBe(0);
  });

  it('keeps waiting through a vote that does not change the status', async () => {
    fakeTimers();
    const app = await createMemoryApp();
    const p = await app.submit({ context: { value: { amount: 25_000, currency: 'EUR' } } });
    const waiting = track(waitForProposal(app.deps, billing, p.id, 60_000));
    await listening(app, p.id);
    await app.vote(p.id, 'alice');
    await tick(app, 30_000);
    expect(waiting.settled).toBe(false);
    await app.vote(p.id, 'bob');
    expect((await waiting.promise).status).toBe('approved');
  });

  it('returns the unchanged proposal at the timeout', async () => {
    fakeTimers();
    const app = await createMemoryApp();
    const p = await app.submit();
    const waiting = track(waitForProposal(app.deps, billing, p.id, 30_000));
    await listening(app, p.id);
    await tick(app, 29_999);
    expect(waiting.settled).toBe(false);
    await tick(app, 1);
    expect(waiting.settled).toBe(true);
    const r = await waiting.promise;
    expect(r).toMatchObject({ status: 'pending', version: 1 });
    expect(app.changes.waiting(p.id)).toBe(0);
  });

  it("wakes at the proposal's expiry, before its own timeout, and sees it expired although no job ran", async () => {
    fakeTimers();
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(TTL - 10_000);
    const waiting = track(waitForProposal(app.deps, billing, p.id, 60_000));
    await listening(app, p.id);
    // The expiry plus the 20 ms of slack the long-poll allows itself.
    await tick(app, 10_019);
    expect(waiting.settled).toBe(false);
    await tick(app, 1);
    expect(waiting.settled).toBe(true);
    const r = await waiting.promise;
    expect(r.status).toBe('expired');
    expect(app.clock.now()).toBe(T0 + TTL + 20);
  });

  it('stops when the caller aborts (the client left)', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const abort = new AbortController();
    const waiting = waitForProposal(app.deps, billing, p.id, 60_000, abort.signal);
    await listening(app, p.id);
    abort.abort();
    expect((await waiting).status).toBe('pending');
    expect(app.changes.waiting(p.id)).toBe(0);
  });

  it("refuses to wait on another agent's proposal", async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    await expect(waitForProposal(app.deps, ops, p.id, 1000)).rejects.toBeInstanceOf(ForbiddenError);
    expect(app.changes.waiting(p.id)).toBe(0);
  });
});
