import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { createJwtSigner, generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { issueExecution } from '../../src/app/execute-approved.ts';
import { DEFAULT_EXECUTION_TUNING, type ExecutionDeps } from '../../src/app/execution-deps.ts';
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
      // The 201 comes before the token is issued; a read waits for it (same process).
      const before = await app.ops.request('GET', `/v1/proposals/${body.id}`);
      const job = await queue.queue.getJob(body.id);
      expect(job).toBeDefined();
      expect(job!.data).toEqual({ proposal_id: body.id }); // ids only: no token in job data
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

  it('a poll read whose claim is refused does not hand out the token', async () => {
    const { body } = await app.billing.propose(actionBody('selfserve', 'late-poll'));
    expect(body.status).toBe('approved');
    // Expired by countersign's clock, while the stored copy is still in Redis: the read takes
    // it, but the claim refuses to start an expired execution, so the token must not leave.
    clock.offset += 2000;
    const read = await app.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(read.body.execution_token).toBeUndefined();
    const done = await waitForStatus(app.billing, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired', started_at: null });
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
      // Any well-formed id: the switch reaches agents the policy does not name (any more); a malformed one is 400.
      expect((await revoke('nobody')).body).toMatchObject({ agent: 'nobody', in_policy: false, cancelled: [] });
      expect((await revoke('no%20body')).status).toBe(400);
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

  it('refuses the agent\'s proposals until it is restored, then leaves the new ones alone', async () => {
    const refused = await app.billing.propose(actionBody('deploy', 'while-revoked'));
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('agent_revoked');
    const res = await fetch(`${app.url}/v1/agents/billing-agent/restore`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    // Signed after the revocation: a signature's time has whole seconds, and one in the revocation's own second counts as before it.
    const revokedAt = Date.parse(((await res.json()) as { revoked_at: string }).revoked_at);
    const signedAt = Math.max(Date.now(), Math.floor(revokedAt / 1000) * 1000 + 1000);
    const { body } = await app.billing.request('POST', '/v1/proposals', actionBody('deploy', 'after-restore'), { now: signedAt });
    expect(body.status).toBe('approved');
    await waitForStatus(app.billing, body.id, (s) => s === 'succeeded');
  });

  it('a revocation that lands after a worker claimed: the worker does not send the revoked token', async () => {
    // The kill switch is pulled between the worker's claim and its send: the moment the
    // worker checks the token's state after the claim (the only read of it there).
    const redis = app.running.redis as unknown as { hget: (key: string, field: string) => Promise<string | null> };
    const hget = redis.hget;
    let revocation: Promise<{ status: number; body: any }> | null = null;
    redis.hget = async function (this: unknown, key: string, field: string) {
      if (revocation === null && key.includes(':token:') && field === 'state') {
        revocation = revoke('ops-agent');
        await revocation;
      }
      return hget.call(this, key, field);
    };
    try {
      const { body } = await app.ops.propose(actionBody('deploy', 'revoked-after-claim'));
      const done = await waitForStatus(app.ops, body.id, (s) => s === 'failed');
      expect(done.execution).toMatchObject({ outcome: 'not_run', reason: 'token_revoked' });
      expect((await revocation!)!.body).toMatchObject({ still_executing: [body.id] });
      expect(executor.requests.filter((r) => r.body.action.target === 'revoked-after-claim')).toHaveLength(0);
    } finally {
      redis.hget = hget;
    }
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

  function approvedProposal(target: string): Proposal {
    const now = Date.now();
    return {
      id: newId('p', now),
      agent: 'ops-agent',
      idempotency_key: null,
      intent: `deploy ${target}`,
      action: { tool: 'deploy', operation: 'run', target, parameters: {} },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
      decision: { effect: 'allow', risk: 'low', rule: 'everything-else', reasons: [], route: null, approvers: null, approvals_required: 0, ttl_ms: 0 },
      status: 'approved',
      created_at: now,
      expires_at: null,
      approvals: [],
      resolution: { status: 'approved', by: 'policy', reason: null, at: now },
      version: 1,
    };
  }

  async function storeApproved(p: Proposal) {
    const base = { at: new Date(p.created_at).toISOString(), proposal_id: p.id, agent: p.agent };
    await app.running.deps.store.create(p, [
      { ...base, type: 'proposal_received', actor: 'agent:ops-agent', data: {} },
      { ...base, type: 'decided', actor: 'policy', data: { status: 'approved', rule: 'everything-else' } },
    ]);
  }

  it('whose jobs were never added after the token was recorded: recovery adds them, and it runs', async () => {
    const p = approvedProposal('jobs-lost');
    await storeApproved(p);
    // The real issue path, with a queue that refuses: the token is minted, stored and
    // recorded, then adding the expiry / execute jobs throws.
    const ledger = createRedisTokenLedger(app.running.redis, { prefix: app.prefix });
    const refuse = async () => {
      throw new Error('queue unavailable');
    };
    const x: ExecutionDeps = {
      app: app.running.deps,
      signer: await createJwtSigner(await ledger.sharedDevKey(generateSigningKey), () => app.url),
      ledger,
      queue: { enqueueExecution: refuse, scheduleTokenExpiry: refuse, enqueueCallback: refuse, removeExecution: async () => false },
      executors: new Map([['webhook', { kind: 'webhook', connect: refuse }]]),
      callbacks: { post: refuse },
      tokenTtlMs: 60_000,
      tuning: DEFAULT_EXECUTION_TUNING,
    };
    await expect(issueExecution(x, p)).rejects.toThrow('queue unavailable');
    const recorded = await app.running.deps.store.get(p.id);
    expect(recorded).toMatchObject({ status: 'approved', execution: { mode: 'executor', started_at: null } });

    const [req] = await executor.waitFor(1, (r) => r.body?.proposal_id === p.id);
    const token = /^Bearer (\S+)$/.exec(String(req!.headers.authorization))![1]!;
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti).toBe(recorded!.execution!.token_id);
    const done = await waitForStatus(app.ops, p.id, (s) => s === 'succeeded');
    expect(done.execution).toMatchObject({ mode: 'executor', outcome: 'succeeded' });
  });

  it('whose recorded token expired with no job left to notice: recovery fails it as not run', async () => {
    const p = approvedProposal('jobs-lost-expired');
    const past = Date.now() - 1000;
    p.execution = {
      mode: 'executor', token_id: newId('t', past), token_expires_at: past, started_at: null, finished_at: null,
      status_code: null, outcome: null, reason: null, duration_ms: null, response_excerpt: null,
    };
    await storeApproved(p);
    const done = await waitForStatus(app.ops, p.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired', started_at: null });
    expect(executor.requests.filter((r) => r.body?.proposal_id === p.id)).toHaveLength(0);
  });
});
