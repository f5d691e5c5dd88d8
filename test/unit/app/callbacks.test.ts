import { describe, expect, it } from 'vitest';
import { CallbackImpossibleError, CallbackRefusedError, deliverCallback } from '../../../src/app/agent-callbacks.ts';
import { reportOutcome } from '../../../src/app/agent-execution.ts';
import { AGENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../../src/core/signing.ts';
import { AGENT_SECRETS, CALLBACK_URL, createMemoryApp, TEST_POLICY, type MemoryApp } from '../../helpers/memory/app.ts';

// Callbacks to agents: signed with the agent's own secret, to the policy's callback_url only;
// the execution token rides only in the `approved` callback of an agent that executes itself,
// which is claimed before the token leaves; a callback that never gets through is said in the thread.

const email = { action: { tool: 'email', operation: 'send', target: 'customer@example.com' } }; // default rule: secops, security
const deploy = { action: { tool: 'deploy', operation: 'ship', target: 'api' } }; // the executor runs it

async function approved(app: MemoryApp, request = email) {
  const p = await app.submit(request, 'callback-agent');
  await app.vote(p.id, 'carol');
  return app.get(p.id);
}

const bodyOf = (app: MemoryApp, i = -1) => JSON.parse(app.callbacks.posts.at(i)!.body) as Record<string, unknown>;

describe('the approved callback of an agent that executes itself', () => {
  it('is signed with the agent secret for the exact URL, carries the token, and starts the execution first', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    expect(app.queue.callbacks).toEqual([{ proposalId: p.id, status: 'approved' }]);
    app.clock.advance(1_000);
    expect(await app.runCallbacks()).toEqual([]);

    const [post] = app.callbacks.posts;
    expect(post).toMatchObject({ url: CALLBACK_URL, timeoutMs: 10_000 });
    expect(post?.headers[AGENT_HEADER]).toBe('callback-agent');
    const check = verifySignature(AGENT_SECRETS.AGENT_CALLBACK_SECRET, post?.headers[TIMESTAMP_HEADER], post?.headers[SIGNATURE_HEADER], { method: 'POST', path: '/countersign/hook?v=1', body: post!.body }, app.clock.now());
    expect(check).toEqual({ ok: true });
    expect(verifySignature(AGENT_SECRETS.AGENT_OPS_SECRET, post?.headers[TIMESTAMP_HEADER], post?.headers[SIGNATURE_HEADER], { method: 'POST', path: '/countersign/hook?v=1', body: post!.body }, app.clock.now()).ok).toBe(false);

    expect(bodyOf(app)).toMatchObject({
      proposal_id: p.id,
      agent: 'callback-agent',
      status: 'approved',
      current_status: 'executing', // claimed before the request left
      approvers: ['carol'],
      decision: { effect: 'approve', risk: 'medium', rule: 'default' },
      execution: { mode: 'callback', started_at: new Date(app.clock.now()).toISOString() },
      execution_token: app.ledger.saved[0]?.token,
    });
    expect(app.events({ proposal: p.id, type: 'callback_delivered' })[0]?.data).toEqual({ status: 'approved', http_status: 200, with_token: true });
  });

  it('a retry after the execution started sends the same token again, unless the agent was revoked since', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    await app.runCallbacks();
    await deliverCallback(app.x, p.id, 'approved');
    expect(bodyOf(app)['execution_token']).toBe(app.ledger.saved[0]?.token);
    await app.ledger.revoke(p.execution!.token_id);
    await deliverCallback(app.x, p.id, 'approved');
    expect(bodyOf(app)).not.toHaveProperty('execution_token');
  });

  it('a token that expired before the callback ran: no token, nothing started', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    app.clock.advance(5 * 60_000);
    await app.runCallbacks();
    expect(bodyOf(app)).toMatchObject({ status: 'approved', current_status: 'approved' });
    expect(bodyOf(app)).not.toHaveProperty('execution_token');
    expect(app.events({ proposal: p.id, type: 'callback_delivered' })[0]?.data).toMatchObject({ with_token: false });
    expect(app.events({ proposal: p.id, type: 'execution_started' })).toEqual([]);
  });

  it('a token revoked between its read and the claim does not leave: the agent is told, the execution ends not_run', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    const tokenFor = app.ledger.tokenFor.bind(app.ledger);
    app.ledger.tokenFor = async (id, jti) => {
      const token = await tokenFor(id, jti);
      await app.ledger.revoke(p.execution!.token_id); // the kill switch, at that moment
      return token;
    };
    await app.runCallbacks();
    expect(bodyOf(app)).not.toHaveProperty('execution_token');
    expect((await app.get(p.id)).execution).toMatchObject({ outcome: 'not_run', reason: 'token_revoked' });
  });

  it('the agent answering non-2xx: CallbackRefusedError for the queue to retry, nothing recorded as delivered', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    app.callbacks.answer(503);
    const [failure] = await app.runCallbacks();
    expect(failure?.error).toBeInstanceOf(CallbackRefusedError);
    expect((failure?.error as CallbackRefusedError).httpStatus).toBe(503);
    expect(app.events({ proposal: p.id, type: 'callback_delivered' })).toEqual([]);
  });
});

describe('other callbacks carry no token', () => {
  it('approved for the executor to run: the agent is told, the proposal is not claimed by the callback', async () => {
    const app = await createMemoryApp();
    const p = await approved(app, deploy);
    await app.runCallbacks();
    expect(bodyOf(app)).toMatchObject({ status: 'approved', current_status: 'approved', execution: { mode: 'executor' } });
    expect(bodyOf(app)).not.toHaveProperty('execution_token');
    await app.runExecute(p.id);
    expect(app.queue.callbacks.map((c) => c.status)).toEqual(['approved', 'succeeded']);
    await app.runCallbacks();
    expect(bodyOf(app)).toMatchObject({ status: 'succeeded', execution: { outcome: 'succeeded' } });
    expect(bodyOf(app)).not.toHaveProperty('execution_token');
  });

  it('denied, expired, cancelled: one callback each with the resolution', async () => {
    const app = await createMemoryApp();
    const denied = await app.submit(email, 'callback-agent');
    await app.vote(denied.id, 'carol', 'deny', 'not to customers');
    const expired = await app.submit(email, 'callback-agent');
    app.clock.advance(15 * 60_000);
    await app.runDue();
    expect(app.queue.callbacks).toEqual([
      { proposalId: denied.id, status: 'denied' },
      { proposalId: expired.id, status: 'expired' },
    ]);
    await app.runCallbacks();
    expect(bodyOf(app, 0)).toMatchObject({ status: 'denied', resolution: { status: 'denied', by: 'carol', reason: 'not to customers' }, approvers: [] });
    expect(bodyOf(app, 1)).toMatchObject({ status: 'expired', current_status: 'expired' });
  });

  it('nothing for what the agent reported itself, nor for agents without a callback_url', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    await app.runCallbacks();
    await reportOutcome(app.x, 'callback-agent', p.id, { token: app.ledger.saved[0]!.token, status: 'succeeded' });
    expect(app.queue.callbacks.map((c) => c.status)).toEqual(['approved']);

    const q = await app.submit(email, 'ops-agent');
    await app.vote(q.id, 'carol', 'deny');
    expect(app.queue.callbacks.filter((c) => c.proposalId === q.id)).toEqual([]);
  });

  it('an execution that ended without the agent (its token expired unused) is called back as failed', async () => {
    const app = await createMemoryApp();
    const p = await approved(app);
    app.clock.advance(5 * 60_000 + 250);
    await app.runDue();
    expect(app.queue.callbacks).toEqual([
      { proposalId: p.id, status: 'approved' },
      { proposalId: p.id, status: 'failed' },
    ]);
  });
});

describe('callbacks that cannot be delivered', () => {
  it('an agent without a secret (OIDC only) cannot be called back: CallbackImpossibleError, nothing sent', async () => {
    const policy = TEST_POLICY.replace(
      '    secret_env: AGENT_CALLBACK_SECRET\n',
      '    oidc: { issuer: "https://issuer.test", subject: "callback", audience: countersign }\n',
    );
    const app = await createMemoryApp({ policy });
    const p = await approved(app);
    await expect(deliverCallback(app.x, p.id, 'approved')).rejects.toBeInstanceOf(CallbackImpossibleError);
    expect(app.callbacks.posts).toEqual([]);
  });

  it('after the last attempt: callback_failed audited without secrets, and said in the thread on every platform', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(email, 'callback-agent');
    await app.vote(p.id, 'carol', 'deny', 'no');
    app.jobs.clear();
    const error = new CallbackRefusedError(500);
    await app.callbackGaveUp(p.id, 'denied', 5, error);
    expect(app.events({ type: 'callback_failed' })[0]).toMatchObject({ proposal_id: p.id, data: { status: 'denied', attempts: 5, http_status: 500, error: "the agent's callback answered HTTP 500" } });
    const replies = app.notifyJobs().flatMap((j) => (j.kind === 'reply' ? [[j.platform, j.key, j.reply.kind, j.reply.text]] : []));
    const text = 'Could not tell agent callback-agent that the proposal is denied (5 attempts, last HTTP 500)';
    expect(replies).toEqual([
      ['slack', 'callback-denied-0', 'notice', text],
      ['teams', 'callback-denied-0', 'notice', text],
      ['console', 'callback-denied-0', 'notice', text],
    ]);

    await app.callbackGaveUp(p.id, 'denied', 5, new Error('connect ECONNREFUSED; Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln'));
    const redacted = String(app.events({ type: 'callback_failed' })[1]?.data['error']);
    expect(redacted).not.toContain('eyJ');
    expect(redacted).toContain('ECONNREFUSED');
  });
});
