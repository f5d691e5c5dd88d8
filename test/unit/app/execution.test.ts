import { describe, expect, it } from 'vitest';
import { executionGaveUp, issueExecution, RetryBeforeSendError } from '../../../src/app/execute-approved.ts';
import { actionDigest } from '../../../src/core/execution.ts';
import { createMemoryApp, EXECUTOR_URL, type MemoryApp } from '../../helpers/memory/app.ts';
import { T0 } from '../../helpers/memory/clock.ts';

// From approval to outcome with the policy's executor (ops-agent's deploys, webhook, 5 s): the
// token minted once on approval, the approved -> executing claim before anything is sent, and
// an execution whose request may have left never retried.

const TOKEN_TTL = 5 * 60_000;
const ship = { action: { tool: 'deploy', operation: 'ship', target: 'api', parameters: { version: '1.2.3' } } };
const restart = { action: { tool: 'deploy', operation: 'restart', target: 'api' } }; // allowed by the policy

async function approvedDeploy(app: MemoryApp) {
  const p = await app.submit(ship, 'ops-agent');
  await app.vote(p.id, 'carol');
  return app.get(p.id);
}

describe('issuing the execution', () => {
  it('on approval: the token is minted, stored in the ledger and recorded on the proposal; then the jobs', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);

    expect(p.execution).toMatchObject({ mode: 'executor', token_expires_at: T0 + TOKEN_TTL, started_at: null, outcome: null });
    expect(app.ledger.saved).toEqual([expect.objectContaining({ jti: p.execution?.token_id, proposal_id: p.id, agent: 'ops-agent', expires_at: T0 + TOKEN_TTL, pickup: false })]);
    expect(app.events({ proposal: p.id, type: 'token_issued' })[0]?.data).toEqual({ jti: p.execution?.token_id, mode: 'executor', audience: 'deploy', expires_at: new Date(T0 + TOKEN_TTL).toISOString(), approvers: ['carol'], action_digest: actionDigest(p.action) });
    expect(app.queue.tokenExpiries).toEqual([{ proposalId: p.id, at: T0 + TOKEN_TTL + 250 }]);
    expect(app.queue.executions).toEqual([p.id]);
    expect(app.queue.callbacks).toEqual([]); // ops-agent has no callback_url

    const claims = await app.signer.verify(app.ledger.saved[0]!.token, app.clock.now());
    expect(claims).toMatchObject({ sub: 'ops-agent', aud: 'deploy', jti: p.execution?.token_id, proposal_id: p.id, approvers: ['carol'], action_digest: actionDigest(p.action) });
    expect(claims?.exp).toBe((T0 + TOKEN_TTL) / 1000);
  });

  it('on allow by the policy: at submission, with no person among the approvers', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(restart, 'ops-agent');
    expect(p.status).toBe('approved');
    expect((await app.get(p.id)).execution?.mode).toBe('executor');
    expect(app.queue.executions).toEqual([p.id]);
    expect((await app.signer.verify(app.ledger.saved[0]!.token, app.clock.now()))?.approvers).toEqual([]);
  });

  it('once: a second issue of the same approval, or of a stale read of it, records nothing more', async () => {
    const app = await createMemoryApp();
    const stale = await app.submit(ship, 'ops-agent');
    await app.vote(stale.id, 'carol');
    const issued = await app.get(stale.id);
    expect(await issueExecution(app.x, issued)).toEqual([]);
    // A replica that read the proposal approved but before its token was recorded: the ledger refuses it.
    const { execution: _recorded, ...beforeToken } = issued;
    expect(await issueExecution(app.x, beforeToken)).toEqual([]);
    expect(app.ledger.saved).toHaveLength(1);
    expect(app.events({ proposal: stale.id, type: 'token_issued' })).toHaveLength(1);
    expect(app.queue.executions).toEqual([stale.id]);
  });

  it('the mode follows the policy: executor for a tool with one, callback for an agent with a callback_url, else poll', async () => {
    const app = await createMemoryApp();
    const email = { action: { tool: 'email', operation: 'send', target: 'x@example.com' } };
    const modes = [];
    for (const [request, agent] of [[ship, 'callback-agent'], [email, 'callback-agent'], [email, 'ops-agent']] as const) {
      const p = await app.submit(request, agent);
      await app.vote(p.id, 'carol');
      modes.push((await app.get(p.id)).execution?.mode);
    }
    expect(modes).toEqual(['executor', 'callback', 'poll']);
  });
});

describe('runExecution with the scripted executor', () => {
  it('success: sends the token and the approved action once, records the answer, closes the token', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.executor.answer({ kind: 'response', status_code: 201, body: '{"deployed":"1.2.3"}', duration_ms: 42 });
    app.clock.advance(1_000);
    await app.runExecute(p.id);

    expect(app.executor.connects).toEqual([{ url: EXECUTOR_URL, timeoutMs: 5_000 }]);
    expect(app.executor.sent).toHaveLength(1);
    expect(app.executor.sent[0]?.token).toBe(app.ledger.saved[0]?.token);
    expect(JSON.parse(app.executor.sent[0]!.body)).toEqual({
      proposal_id: p.id,
      agent: 'ops-agent',
      action: p.action,
      approvals: [{ person: 'carol', platform: 'slack', at: new Date(T0).toISOString() }],
    });
    const done = await app.get(p.id);
    expect(done.status).toBe('succeeded');
    expect(done.execution).toMatchObject({ started_at: T0 + 1_000, finished_at: T0 + 1_000, status_code: 201, outcome: 'succeeded', reason: null, duration_ms: 42, response_excerpt: '{"deployed":"1.2.3"}' });
    expect(app.trail(p.id).slice(-2)).toEqual(['execution_started', 'execution_finished']);
    expect(await app.ledger.state(p.execution!.token_id)).toBe('closed');
    expect(await app.ledger.executingDeadline(p.id)).toBeNull();
    expect(app.executor.open()).toBe(0);

    // The job delivered again: nothing is sent twice.
    await app.runExecute(p.id);
    expect(app.executor.sent).toHaveLength(1);
  });

  it('an HTTP error answer: failed, outcome failed, the status in the reason, secrets cut from the excerpt', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.executor.answer({ kind: 'response', status_code: 503, body: 'upstream down; Authorization: Bearer abc.def.ghi', duration_ms: 7 });
    await app.runExecute(p.id);
    const failed = await app.get(p.id);
    expect(failed.status).toBe('failed');
    expect(failed.execution).toMatchObject({ outcome: 'failed', reason: 'http_503', status_code: 503 });
    expect(failed.execution?.response_excerpt).toMatch(/^upstream down; Authorization: /);
    expect(failed.execution?.response_excerpt).not.toContain('abc.def.ghi');
  });

  it('a timeout: failed with outcome unknown, and never sent again', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.executor.answer({ kind: 'timeout', duration_ms: 5_000 });
    await app.runExecute(p.id);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'unknown', reason: 'timeout', status_code: null });
    await app.runExecute(p.id);
    expect(app.executor.sent).toHaveLength(1);
    const reply = app.notifyJobs().find((j) => j.kind === 'reply' && j.reply.kind === 'execution_finished');
    expect(reply?.kind === 'reply' && reply.reply.text).toMatch(/^Outcome unknown: .* after 5\.00 s\. It is not retried/);
  });

  it('a connection lost after sending: outcome unknown too, and the error thrown by send is not a retry', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.executor.answer({ kind: 'lost', error: 'socket hang up', duration_ms: 900 });
    await app.runExecute(p.id);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'unknown', reason: 'connection_lost' });

    const q = await approvedDeploy(app);
    app.executor.answer(() => Promise.reject(new Error('worker crashed mid-call')));
    const thrown = await app.runExecute(q.id).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Error);
    expect(thrown).not.toBeInstanceOf(RetryBeforeSendError);
    expect((await app.get(q.id)).status).toBe('executing');
  });

  it('unreachable: RetryBeforeSendError, still approved and nothing sent; the retry runs it', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.executor.unreachable(1);
    const thrown = await app.runExecute(p.id).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(RetryBeforeSendError);
    expect((thrown as RetryBeforeSendError).reason).toBe('executor_unreachable');
    expect((await app.get(p.id)).status).toBe('approved');
    expect(app.executor.sent).toEqual([]);
    expect(await app.ledger.executingDeadline(p.id)).toBeNull();

    await app.runExecute(p.id);
    expect((await app.get(p.id)).status).toBe('succeeded');
  });

  it('unreachable on every attempt: the queue gives up, and it ends failed / not_run with its token revoked', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.executor.unreachable(Infinity);
    const error = await app.runExecute(p.id).catch((e: unknown) => e);
    await executionGaveUp(app.x, p.id, error);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'executor_unreachable' });
    expect(await app.ledger.state(p.execution!.token_id)).toBe('revoked');
  });

  it('a store failure before sending is retryable (error_before_send)', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.store.failNext(new Error('redis down'));
    const thrown = await app.runExecute(p.id).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(RetryBeforeSendError);
    expect((thrown as RetryBeforeSendError).reason).toBe('error_before_send');
    expect(app.executor.sent).toEqual([]);
    expect(app.executor.open()).toBe(0);
  });

  it('the token expired before the job ran: failed / not_run, nothing connected or sent', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    app.clock.advance(TOKEN_TTL);
    await app.runExecute(p.id);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired' });
    expect(app.executor.connects).toEqual([]);
    expect(await app.ledger.state(p.execution!.token_id)).toBe('revoked');
  });

  it('a revoked token found at the job: failed / not_run token_revoked', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    await app.ledger.revoke(p.execution!.token_id);
    await app.runExecute(p.id);
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'token_revoked' });
    expect(app.executor.sent).toEqual([]);
  });

  it('the token revoked between the read and the claim: claimed, then ended not_run before sending', async () => {
    const app = await createMemoryApp();
    const p = await approvedDeploy(app);
    const track = app.ledger.trackExecuting.bind(app.ledger);
    app.ledger.trackExecuting = async (id, deadline) => {
      await app.ledger.revoke(p.execution!.token_id);
      await track(id, deadline);
    };
    await app.runExecute(p.id);
    const done = await app.get(p.id);
    expect(done).toMatchObject({ status: 'failed', execution: { outcome: 'not_run', reason: 'token_revoked' } });
    expect(app.trail(p.id).slice(-2)).toEqual(['execution_started', 'execution_finished']);
    expect(app.executor.sent).toEqual([]);
    expect(app.executor.open()).toBe(0);
  });
});
