import { describe, expect, it } from 'vitest';
import { redeemToken, reportOutcome, returnExecutionToken, takeExecutionToken, type OutcomeReport } from '../../../src/app/agent-execution.ts';
import { sweepExecutions } from '../../../src/app/execute-approved.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../../../src/core/errors.ts';
import { createMemoryApp, type MemoryApp } from '../../helpers/memory/app.ts';

// Agents that execute themselves: the poll read that takes the token (once) starts the
// execution; the outcome report must present that very token; a downstream redeems it once.

const agent = { kind: 'agent', id: 'billing-agent' } as const;
const HOUR = 60 * 60_000;

/** billing-agent's refund, approved: poll mode (payments has no executor, no callback_url). */
async function approved(app: MemoryApp) {
  const p = await app.submit();
  await app.vote(p.id, 'alice');
  const read = await app.get(p.id);
  expect(read.execution?.mode).toBe('poll');
  return { p: read, token: app.ledger.saved.at(-1)!.token, jti: read.execution!.token_id };
}

const report = (token: string, over: Partial<OutcomeReport> = {}): OutcomeReport => ({ token, status: 'succeeded', status_code: 200, detail: 'refund re_123', ...over });

describe('poll pick-up', () => {
  it("the agent's first read takes the token and starts the execution; later reads get nothing", async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    app.clock.advance(2_000);
    expect(await takeExecutionToken(app.x, p, agent)).toBe(token);
    const started = await app.get(p.id);
    expect(started).toMatchObject({ status: 'executing', execution: { started_at: app.clock.now() } });
    expect(app.events({ proposal: p.id, type: 'execution_started' })[0]?.actor).toBe('agent:billing-agent');
    expect(await app.ledger.executingDeadline(p.id)).toBe(app.clock.now() + HOUR);

    expect(await takeExecutionToken(app.x, p, agent)).toBeNull();
    expect(await takeExecutionToken(app.x, started, agent)).toBeNull();
    expect(app.events({ proposal: p.id, type: 'execution_started' })).toHaveLength(1);
  });

  it('another agent or an admin reading it takes nothing, and leaves the token for its agent', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    expect(await takeExecutionToken(app.x, p, { kind: 'agent', id: 'ops-agent' })).toBeNull();
    expect(await takeExecutionToken(app.x, p, { kind: 'admin' })).toBeNull();
    expect((await app.get(p.id)).status).toBe('approved');
    expect(await takeExecutionToken(app.x, p, agent)).toBe(token);
  });

  it('a token past its expiry is not handed out, and nothing starts', async () => {
    const app = await createMemoryApp();
    const { p } = await approved(app);
    app.clock.advance(5 * 60_000);
    expect(await takeExecutionToken(app.x, p, agent)).toBeNull();
    expect((await app.get(p.id)).status).toBe('approved');
  });

  it('a read whose client left puts the token back for the next read, without starting twice', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    expect(await takeExecutionToken(app.x, p, agent)).toBe(token);
    await returnExecutionToken(app.x, p.id, token);
    const executing = await app.get(p.id);
    expect(await takeExecutionToken(app.x, executing, agent)).toBe(token);
    expect(await takeExecutionToken(app.x, executing, agent)).toBeNull();
    expect(app.events({ proposal: p.id, type: 'execution_started' })).toHaveLength(1);
  });

  it('a token revoked after the claim is never handed out: the execution ends not_run', async () => {
    const app = await createMemoryApp();
    const { p, jti } = await approved(app);
    const take = app.ledger.takePickup.bind(app.ledger);
    app.ledger.takePickup = async (id, j) => {
      const t = await take(id, j);
      await app.ledger.revoke(jti); // the kill switch, between the read and the hand-over
      return t;
    };
    expect(await takeExecutionToken(app.x, p, agent)).toBeNull();
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'token_revoked' });
  });

  it('taken but never reported: the sweep ends it failed / unknown after the report window', async () => {
    const app = await createMemoryApp();
    const { p } = await approved(app);
    await takeExecutionToken(app.x, p, agent);
    app.clock.advance(HOUR - 1);
    expect(await sweepExecutions(app.x)).toBe(0);
    app.clock.advance(1);
    expect(await sweepExecutions(app.x)).toBe(1);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'unknown', reason: 'no_outcome_reported' });
  });
});

describe('reportOutcome', () => {
  it('records the reported outcome with the token, closes the token and stops the tracking', async () => {
    const app = await createMemoryApp();
    const { p, token, jti } = await approved(app);
    await takeExecutionToken(app.x, p, agent);
    app.clock.advance(3_000);
    const done = await reportOutcome(app.x, 'billing-agent', p.id, report(token));
    expect(done).toMatchObject({ status: 'succeeded', execution: { outcome: 'succeeded', status_code: 200, duration_ms: 3_000, response_excerpt: 'refund re_123' } });
    expect(await app.ledger.state(jti)).toBe('closed');
    expect(await app.ledger.executingDeadline(p.id)).toBeNull();
    // The agent knows: no callback, and a second report is a conflict.
    await expect(reportOutcome(app.x, 'billing-agent', p.id, report(token))).rejects.toThrow(ConflictError);
  });

  it('a failure report: failed with reason reported_failed', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    await takeExecutionToken(app.x, p, agent);
    const done = await reportOutcome(app.x, 'billing-agent', p.id, report(token, { status: 'failed', status_code: 402, detail: 'card declined' }));
    expect(done.execution).toMatchObject({ outcome: 'failed', reason: 'reported_failed', status_code: 402 });
  });

  it('refuses the wrong agent, a token of another proposal, a forged token, and a missing proposal', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    const other = await approved(app);
    await expect(reportOutcome(app.x, 'ops-agent', p.id, report(token))).rejects.toBeInstanceOf(ForbiddenError);
    await expect(reportOutcome(app.x, 'billing-agent', p.id, report(other.token))).rejects.toThrow('does not belong to this proposal');
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'billing-agent' })).toString('base64url')}.${s}`;
    await expect(reportOutcome(app.x, 'billing-agent', p.id, report(forged))).rejects.toBeInstanceOf(ForbiddenError);
    await expect(reportOutcome(app.x, 'billing-agent', 'p_00000000000000000000000000', report(token))).rejects.toBeInstanceOf(NotFoundError);
    expect((await app.get(p.id)).status).toBe('approved');
  });

  it('a proposal with no token yet, or one the executor runs, is a conflict', async () => {
    const app = await createMemoryApp();
    const pending = await app.submit();
    const { token } = await approved(app);
    await expect(reportOutcome(app.x, 'billing-agent', pending.id, report(token))).rejects.toThrow('has no execution token');
    const deploy = await app.submit({ action: { tool: 'deploy', operation: 'restart', target: 'api' } }, 'ops-agent');
    await expect(reportOutcome(app.x, 'ops-agent', deploy.id, report(app.ledger.saved.at(-1)!.token))).rejects.toThrow('executor runs this action');
  });

  it('a report before any pick-up starts and finishes the execution; after the token expired it is refused', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    expect((await reportOutcome(app.x, 'billing-agent', p.id, report(token))).status).toBe('succeeded');
    expect(app.trail(p.id).slice(-2)).toEqual(['execution_started', 'execution_finished']);

    const late = await approved(app);
    app.clock.advance(5 * 60_000);
    await expect(reportOutcome(app.x, 'billing-agent', late.p.id, report(late.token))).rejects.toThrow('expired before the action started');
  });

  it('an execution under way outlives its token: the report is accepted after the expiry', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    await takeExecutionToken(app.x, p, agent);
    app.clock.advance(30 * 60_000);
    expect((await reportOutcome(app.x, 'billing-agent', p.id, report(token))).status).toBe('succeeded');
  });

  it('a revoked token starts nothing, but the real outcome of a run under way is kept, marked token_revoked', async () => {
    const app = await createMemoryApp();
    const idle = await approved(app);
    await app.ledger.revoke(idle.jti);
    await expect(reportOutcome(app.x, 'billing-agent', idle.p.id, report(idle.token))).rejects.toThrow('was revoked');

    const running = await approved(app);
    await takeExecutionToken(app.x, running.p, agent);
    await app.ledger.revoke(running.jti);
    const done = await reportOutcome(app.x, 'billing-agent', running.p.id, report(running.token));
    expect(done.status).toBe('succeeded');
    expect(app.events({ proposal: running.p.id, type: 'execution_finished' })[0]?.data).toMatchObject({ token_revoked: true });
  });
});

describe('redeemToken', () => {
  it('the first redemption is active with the claims and audited; every later one is not', async () => {
    const app = await createMemoryApp();
    const { p, token, jti } = await approved(app);
    await takeExecutionToken(app.x, p, agent);
    const first = await redeemToken(app.x, token, 'service:payments');
    expect(first).toMatchObject({ active: true, jti, proposal_id: p.id, sub: 'billing-agent', aud: 'payments' });
    expect(await redeemToken(app.x, token, 'service:payments')).toEqual({ active: false });
    expect(app.events({ type: 'token_redeemed' })).toMatchObject([{ proposal_id: p.id, actor: 'service:payments', data: { jti, audience: 'payments' } }]);
  });

  it('a redemption before the pick-up is proof the execution started', async () => {
    const app = await createMemoryApp();
    const { p, token } = await approved(app);
    expect((await redeemToken(app.x, token, 'service:payments')).active).toBe(true);
    expect((await app.get(p.id)).status).toBe('executing');
  });

  it('refuses a garbage token, an expired one, and one whose execution ended', async () => {
    const app = await createMemoryApp();
    expect(await redeemToken(app.x, 'not-a-jwt', 'x')).toEqual({ active: false });
    const expired = await approved(app);
    app.clock.advance(5 * 60_000);
    expect(await redeemToken(app.x, expired.token, 'x')).toEqual({ active: false });

    const ended = await approved(app);
    await reportOutcome(app.x, 'billing-agent', ended.p.id, report(ended.token));
    expect(await redeemToken(app.x, ended.token, 'x')).toEqual({ active: false });
    expect(app.events({ type: 'token_redeemed' })).toEqual([]);
  });

  it('refuses a token whose execution ended even in the moment before the ledger closed it', async () => {
    const app = await createMemoryApp();
    const { p, token, jti } = await approved(app);
    app.ledger.close = async () => false; // the final transition committed, the close not yet run
    await reportOutcome(app.x, 'billing-agent', p.id, report(token));
    expect(await app.ledger.state(jti)).toBe('issued');
    expect(await redeemToken(app.x, token, 'x')).toEqual({ active: false });
  });
});

describe('a poll token redeemed before the pick-up', () => {
  // The redemption starts the execution; the agent's next read must neither hand the spent
  // token out again nor end an execution the downstream may be carrying out as "not run".
  it("is not ended as not_run by the agent's next read, and is not handed out again", async () => {
    const app = await createMemoryApp();
    const p = await app.submit(); // billing-agent: poll mode
    await app.vote(p.id, 'alice');
    const token = app.ledger.saved[0]!.token;
    expect((await redeemToken(app.x, token, 'service:payments')).active).toBe(true);
    const executing = await app.get(p.id);
    expect(executing.status).toBe('executing');

    expect(await takeExecutionToken(app.x, executing, { kind: 'agent', id: 'billing-agent' })).toBeNull();

    const after = await app.get(p.id);
    expect(after.status).toBe('executing');
    expect(after.execution?.outcome).toBeNull();
  });
});
