import { beforeAll, describe, expect, it } from 'vitest';
import { recordDecision } from '../../src/app/record-decision.ts';
import { newId } from '../../src/core/ids.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { actionBody, executeQueue, executionPolicy, waitForStatus, type ExecuteQueueHandle } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';

// Executions held back in the queue: a token that expires while queued, and the kill switch.
// The execute queue is paused from outside (as a backlog would hold it); time moves through
// the app's injected clock, so nothing here sleeps for the token to expire.

let app: TestApp;
let executor: FakeHttpServer;
let queue: ExecuteQueueHandle;

async function revoke(agent: string) {
  const res = await fetch(`${app.url}/v1/agents/${agent}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  return { status: res.status, body: (await res.json()) as any };
}

describe('a token that expires in the queue', () => {
  const clock = { offset: 0, now: () => Date.now() + clock.offset };
  beforeAll(async () => {
    executor = await startFakeHttpServer();
    app = await startTestApp({ policy: executionPolicy({ executorUrl: executor.url }), env: { EXECUTION_TOKEN_TTL: '1s' }, start: { clock } });
    queue = await executeQueue(app.prefix);
  });

  it('is never executed: the proposal fails with token_expired', async () => {
    await queue.queue.pause();
    let id = '';
    try {
      const { body } = await app.ops.propose(actionBody('deploy', 'late-1'));
      id = body.id;
      expect(body.status).toBe('approved');
      const job = await queue.queue.getJob(body.id);
      expect(job).toBeDefined();
      expect(job!.data).toEqual({ proposal_id: body.id }); // ids only: no token in job data
      const before = await app.ops.request('GET', `/v1/proposals/${body.id}`);
      expect(Date.parse(before.body.execution.token_expires_at) - Date.now()).toBeLessThanOrEqual(1000);
      clock.offset += 2000;
    } finally {
      await queue.queue.resume();
    }
    await queue.finished(id);
    const done = await waitForStatus(app.ops, id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired', started_at: null });
    expect(executor.requests).toHaveLength(0);
  });
});

describe('revoking an agent', () => {
  beforeAll(async () => {
    executor = await startFakeHttpServer();
    app = await startTestApp({ policy: executionPolicy({ executorUrl: executor.url }) });
    queue = await executeQueue(app.prefix);
  });

  it('stops its queued executions, spends its tokens and cancels its pending proposals', async () => {
    await queue.queue.pause();
    let queued = '';
    let pending = '';
    let otherAgent = '';
    try {
      queued = (await app.billing.propose(actionBody('deploy', 'revoked-1'))).body.id;
      pending = (await app.billing.propose(actionBody('deploy', 'revoked-2', 'approve-me'))).body.id;
      otherAgent = (await app.ops.propose(actionBody('deploy', 'not-revoked'))).body.id;
      expect(await queue.queue.getJob(queued)).toBeDefined();

      const unauthorised = await app.billing.request('POST', '/v1/agents/billing-agent/revoke', {});
      expect(unauthorised.status).toBe(403);
      const res = await revoke('billing-agent');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ agent: 'billing-agent', tokens_revoked: 1, still_executing: [] });
      expect([...res.body.cancelled].sort()).toEqual([queued, pending].sort());
      expect(await queue.queue.getJob(queued)).toBeUndefined();
      expect((await revoke('nobody')).status).toBe(404);
    } finally {
      await queue.queue.resume();
    }
    // Even if a delivery of it still ran, the claim refuses a cancelled proposal.
    await queue.redeliver(queued, `after-revoke-${queued}`);
    await queue.finished(`after-revoke-${queued}`);
    await waitForStatus(app.ops, otherAgent, (s) => s === 'succeeded');
    expect(executor.requests.map((r) => r.body.action.target)).toEqual(['not-revoked']);

    const q = await app.billing.request('GET', `/v1/proposals/${queued}`);
    expect(q.body).toMatchObject({ status: 'cancelled', execution: { outcome: 'not_run', reason: 'cancelled' } });
    expect((await app.billing.request('GET', `/v1/proposals/${pending}`)).body.status).toBe('cancelled');
    // A decision arriving after the switch changes nothing.
    const late = await recordDecision(app.running.deps, { proposalId: pending, person: 'alice', platform: 'console', vote: 'approve' });
    expect(late.proposal.status).toBe('cancelled');

    const audit = await app.admin<{ events: { type: string; actor: string; proposal_id: string | null; data: any }[] }>('/v1/audit?agent=billing-agent&limit=200');
    const revoked = audit.body.events.find((e) => e.type === 'agent_revoked');
    expect(revoked).toMatchObject({ actor: 'admin', data: { tokens_revoked: 1, cancelled_count: 2 } });
    const cancelled = audit.body.events.filter((e) => e.type === 'cancelled').map((e) => e.proposal_id);
    expect(cancelled.sort()).toEqual([queued, pending].sort());
  });

  it('leaves proposals the agent makes afterwards alone', async () => {
    const { body } = await app.billing.propose(actionBody('deploy', 'after-revocation'));
    expect(body.status).toBe('approved');
    await waitForStatus(app.billing, body.id, (s) => s === 'succeeded');
  });
});

describe('an approval whose process died before the token was issued', () => {
  beforeAll(async () => {
    executor = await startFakeHttpServer();
    app = await startTestApp({
      policy: executionPolicy({ executorUrl: executor.url }),
      start: { execution: { reconcileEveryMs: 200, reconcileGraceMs: 0 } },
    });
  });

  it('is found in the audit log and issued, replacing what the dead issuer left', async () => {
    const now = Date.now();
    const id = newId('p', now);
    const proposal: Proposal = {
      id,
      agent: 'ops-agent',
      idempotency_key: null,
      intent: 'deploy after a crash',
      action: { tool: 'deploy', operation: 'run', target: 'orphan', parameters: {} },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
      decision: { effect: 'allow', risk: 'low', rule: 'everything-else', reasons: [], route: null, approvers: null, approvals_required: 0, ttl_ms: 0 },
      status: 'approved',
      created_at: now,
      expires_at: null,
      approvals: [],
      resolution: { status: 'approved', by: 'policy', reason: null, at: now },
      version: 1,
    };
    const base = { at: new Date(now).toISOString(), proposal_id: id, agent: 'ops-agent' };
    // Committed, then the process died: no follow-up ran, and a token it had stored was never recorded.
    await app.running.redis.set(`{${app.prefix}}:ptoken:${id}`, 'stale-token', 'PX', 60_000);
    await app.running.deps.store.create(proposal, [
      { ...base, type: 'proposal_received', actor: 'agent:ops-agent', data: {} },
      { ...base, type: 'decided', actor: 'policy', data: { status: 'approved', rule: 'everything-else' } },
    ]);
    const [req] = await executor.waitFor(1);
    expect(req!.body.proposal_id).toBe(id);
    expect(String(req!.headers.authorization)).not.toContain('stale-token');
    const done = await waitForStatus(app.ops, id, (s) => s === 'succeeded');
    expect(done.execution).toMatchObject({ mode: 'executor', outcome: 'succeeded' });
  });
});
