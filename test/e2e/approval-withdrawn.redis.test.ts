import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { restartTestApp, startTestApp, type TestApp } from '../helpers/app.ts';
import { signInWithKey } from '../helpers/console.ts';
import { actionBody, waitForStatus } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer, type RecordedRequest } from '../helpers/executor-server.ts';

// Issue 12, item 1: approvals are checked against the policy in force whenever they take
// effect. People approve under one policy; countersign restarts (same Redis) with a policy that
// removed alice, took frank out of the approvers group and made erin a sponsor of the agent.
// Their earlier approvals no longer count toward a quorum, and an approved proposal whose
// quorum no longer holds never hands its execution token out (poll read, callback, executor,
// redemption): it ends failed / not_run / approval_withdrawn. Approvals that still qualify,
// and proposals the policy allowed by itself, go on as before.

const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-0123456789', carol: 'carol-key-0123456789', erin: 'erin-key-0123456789', frank: 'frank-key-0123456789' };
type Person = keyof typeof KEYS;
const keyHash = (person: Person) => createHash('sha256').update(KEYS[person]).digest('hex');
// Tokens name PUBLIC_URL as issuer: the same on both sides of the restart, as in production.
const PUBLIC_URL = 'http://countersign.test';

function policy(opts: { executorUrl: string; callbackUrl: string; after: boolean }): string {
  const person = (p: Person) => `  ${p}: { console_key_sha256: ${keyHash(p)} }`;
  return `
version: 1
agents:
  - id: billing-agent
    sponsors: [dana${opts.after ? ', erin' : ''}]
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
    callback_url: ${opts.callbackUrl}
people:
${(opts.after ? (['bob', 'carol', 'erin', 'frank'] as const) : (['alice', 'bob', 'carol', 'erin', 'frank'] as const)).map(person).join('\n')}
  dana: { slack: U0DANA }
groups:
  finance: [${opts.after ? 'bob, carol, erin' : 'alice, bob, carol, erin, frank'}]
  admins: [bob]
channels:
  finance: { console: true }
executors:
  deploy: { url: ${opts.executorUrl}/execute, timeout: 2s }
rules:
  - name: two-people
    when: action.operation == "two-people"
    effect: approve
    risk: high
    route: finance
    approvers: finance
    approvals: 2
  - name: one-person
    when: action.operation == "one-person"
    effect: approve
    risk: high
    route: finance
    approvers: finance
  - name: everything-else
    when: "true"
    effect: allow
default: { effect: deny }
`;
}

let app: TestApp;
let executor: FakeHttpServer;
let callbacks: FakeHttpServer;
const sessions = new Map<Person, { cookie: string; csrf: string }>();

async function decide(person: Person, id: string, vote: 'approve' | 'deny' = 'approve'): Promise<{ ok: boolean; status?: string; message: string; why?: string }> {
  let session = sessions.get(person);
  if (session === undefined) {
    session = await signInWithKey(app.url, person, KEYS[person]);
    sessions.set(person, session);
  }
  const res = await fetch(`${app.url}/console/proposals/${id}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: session.cookie, origin: app.url },
    body: new URLSearchParams({ csrf: session.csrf, vote }).toString(),
  });
  return (await res.json()) as { ok: boolean; status?: string; message: string };
}

async function propose(agent: 'billing' | 'ops', tool: string, operation: string, target: string): Promise<string> {
  const res = await app[agent].propose(actionBody(tool, target, operation));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function eventsOf(id: string): Promise<{ type: string; actor: string; data: any }[]> {
  const res = await app.admin<{ events: { type: string; actor: string; data: any }[] }>(`/v1/audit?proposal_id=${id}&limit=500`);
  return res.body.events.reverse();
}

const asAdmin = async (id: string) => (await app.admin<any>(`/v1/proposals/${id}`)).body;
const about = (id: string, status?: string) => (r: RecordedRequest) => r.body?.proposal_id === id && (status === undefined || r.body?.status === status);

function queueHandle(name: 'execute' | 'callback', prefix: string) {
  const url = inject('redisUrl');
  if (url === null) throw new Error('no test Redis');
  const connection = createRedisConnection({ url, role: 'worker' });
  const queue = new Queue(name, { connection, prefix: `{${prefix}}:bull` });
  afterAll(async () => {
    await queue.close();
    await connection.quit().catch(() => undefined);
  });
  return queue;
}

// Proposal ids, by what happens to them before the restart.
const ids = {
  // two approvals needed, one given before the restart by…
  quorumAlice: '', // …alice (removed from the policy)
  quorumErin: '', // …erin (now a sponsor of billing-agent)
  quorumFrank: '', // …frank (still a person, no longer in finance)
  quorumCarol: '', // …carol (still qualifies)
  // approved by one person before the restart, the token not yet handed out
  pollAlice: '',
  pollCarol: '',
  pollAllowed: '', // allowed by the policy itself
  callbackAlice: '',
  executorAlice: '',
  executorCarol: '',
  // approved by alice and its token already with the agent (executing)
  takenAlice: '',
};
let takenToken = '';

beforeAll(async () => {
  executor = await startFakeHttpServer();
  callbacks = await startFakeHttpServer();
  callbacks.respond = (req) => req.reply(204, '');
  const urls = { executorUrl: executor.url, callbackUrl: `${callbacks.url}/countersign` };
  const options = { env: { PUBLIC_URL }, start: { execution: { callbackAttempts: 2, callbackBackoffMs: 20 } } };
  app = await startTestApp({ policy: policy({ ...urls, after: false }), ...options });

  ids.quorumAlice = await propose('billing', 'payments', 'two-people', 'quorum-alice');
  ids.quorumErin = await propose('billing', 'payments', 'two-people', 'quorum-erin');
  ids.quorumFrank = await propose('billing', 'payments', 'two-people', 'quorum-frank');
  ids.quorumCarol = await propose('billing', 'payments', 'two-people', 'quorum-carol');
  for (const [id, person] of [
    [ids.quorumAlice, 'alice'],
    [ids.quorumErin, 'erin'],
    [ids.quorumFrank, 'frank'],
    [ids.quorumCarol, 'carol'],
  ] as const) {
    expect(await decide(person, id)).toMatchObject({ ok: true, status: 'pending', message: expect.stringContaining('1 of 2') });
  }

  // Held where a backlog would hold them: the approvals' execute and callback jobs wait for the restart.
  const executeQueue = queueHandle('execute', app.prefix);
  const callbackQueue = queueHandle('callback', app.prefix);
  await executeQueue.pause();
  await callbackQueue.pause();

  ids.pollAlice = await propose('billing', 'selfserve', 'one-person', 'poll-alice');
  ids.pollCarol = await propose('billing', 'selfserve', 'one-person', 'poll-carol');
  ids.callbackAlice = await propose('ops', 'selfserve', 'one-person', 'callback-alice');
  ids.executorAlice = await propose('billing', 'deploy', 'one-person', 'executor-alice');
  ids.executorCarol = await propose('billing', 'deploy', 'one-person', 'executor-carol');
  ids.takenAlice = await propose('billing', 'selfserve', 'one-person', 'taken-alice');
  for (const [id, person] of [
    [ids.pollAlice, 'alice'],
    [ids.pollCarol, 'carol'],
    [ids.callbackAlice, 'alice'],
    [ids.executorAlice, 'alice'],
    [ids.executorCarol, 'carol'],
    [ids.takenAlice, 'alice'],
  ] as const) {
    expect(await decide(person, id)).toMatchObject({ ok: true, status: 'approved' });
    expect((await asAdmin(id)).execution).toMatchObject({ token_id: expect.any(String), started_at: null });
  }
  const allowed = await app.billing.propose(actionBody('selfserve', 'poll-allowed', 'anything'));
  expect(allowed.body.status).toBe('approved');
  ids.pollAllowed = allowed.body.id;
  const taken = await app.billing.request('GET', `/v1/proposals/${ids.takenAlice}`);
  expect(taken.body.execution_token).toEqual(expect.any(String));
  takenToken = taken.body.execution_token;

  sessions.clear();
  app = await restartTestApp(app, { policy: policy({ ...urls, after: true }), ...options });
  await executeQueue.resume();
  await callbackQueue.resume();
});

describe('an approval that no longer qualifies does not count toward the quorum', () => {
  it('a removed approver does not complete a 2-approval quorum: the next approval leaves it pending, 1 of 2', async () => {
    const id = ids.quorumAlice;
    expect(await decide('bob', id)).toMatchObject({ ok: true, status: 'pending', message: expect.stringContaining('1 of 2') });
    const p = await asAdmin(id);
    expect(p.status).toBe('pending');
    expect(p.approvals.map((a: { person: string }) => a.person)).toEqual(['bob']);
    expect(p.execution).toBeNull();
    // The card shows the count that is true.
    const card = await (await fetch(`${app.url}/console/proposals/${id}/card`, { headers: { cookie: sessions.get('bob')!.cookie } })).text();
    expect(card).toContain('<span class="count">1 of 2 approvals: bob</span>');
    expect(card).toContain('<li class="approve">bob approved</li>');
    expect(card).not.toContain('<li class="approve">alice approved');
    // …and its timeline says why alice's approval went.
    expect(card).toContain('alice&#39;s approval no longer counts: alice is no longer a person in the policy');

    const events = await eventsOf(id);
    const voided = events.filter((e) => e.type === 'approval_void');
    expect(voided).toHaveLength(1);
    expect(voided[0]).toMatchObject({ actor: 'policy', data: { person: 'alice', why: 'unknown_person', approvals: 0, required: 2 } });
    // Voided in the same commit, before bob's approval is counted.
    expect(events.map((e) => e.type).slice(-2)).toEqual(['approval_void', 'approval_recorded']);
    expect(events.at(-1)!.data).toMatchObject({ person: 'bob', approvals: 1, required: 2 });

    // A second person who qualifies completes it.
    expect(await decide('carol', id)).toMatchObject({ ok: true, status: 'approved' });
    expect((await eventsOf(id)).filter((e) => e.type === 'approval_void')).toHaveLength(1);
  });

  it('an approver who has since become a sponsor of the agent, or left the approvers group, no longer counts', async () => {
    expect(await decide('bob', ids.quorumErin)).toMatchObject({ ok: true, status: 'pending', message: expect.stringContaining('1 of 2') });
    expect(await decide('bob', ids.quorumFrank)).toMatchObject({ ok: true, status: 'pending', message: expect.stringContaining('1 of 2') });
    expect((await eventsOf(ids.quorumErin)).find((e) => e.type === 'approval_void')?.data).toMatchObject({ person: 'erin', why: 'sponsor' });
    expect((await eventsOf(ids.quorumFrank)).find((e) => e.type === 'approval_void')?.data).toMatchObject({ person: 'frank', why: 'not_an_approver' });
    expect((await asAdmin(ids.quorumErin)).approvals.map((a: { person: string }) => a.person)).toEqual(['bob']);
    // The console says why erin may not decide any more.
    expect((await decide('erin', ids.quorumErin)).why).toBe('sponsor');
  });

  it('nothing changes for an approval that still qualifies', async () => {
    expect(await decide('bob', ids.quorumCarol)).toMatchObject({ ok: true, status: 'approved' });
    const p = await asAdmin(ids.quorumCarol);
    expect(p.approvals.map((a: { person: string }) => a.person)).toEqual(['carol', 'bob']);
    expect((await eventsOf(ids.quorumCarol)).map((e) => e.type)).not.toContain('approval_void');
  });
});

describe('an approved proposal whose quorum no longer holds does not execute', () => {
  it('poll mode: the agent read does not carry the token; the proposal ends failed, not_run, approval_withdrawn, its token revoked', async () => {
    const id = ids.pollAlice;
    const jti = (await asAdmin(id)).execution.token_id as string;
    const read = await app.billing.request('GET', `/v1/proposals/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.execution_token).toBeUndefined();
    expect(read.body).toMatchObject({ status: 'failed', execution: { outcome: 'not_run', reason: 'approval_withdrawn' } });
    // The decision stays as people made it.
    expect(read.body.resolution).toMatchObject({ status: 'approved', by: 'alice' });
    expect((await app.billing.request('GET', `/v1/proposals/${id}`)).body.execution_token).toBeUndefined();

    const events = await eventsOf(id);
    expect(events.find((e) => e.type === 'approval_void')?.data).toMatchObject({ person: 'alice', why: 'unknown_person', approvals: 0, required: 1 });
    expect(events.find((e) => e.type === 'execution_finished')?.data).toMatchObject({ status: 'failed', outcome: 'not_run', reason: 'approval_withdrawn', void_approvers: ['alice'] });
    expect(events.map((e) => e.type)).not.toContain('execution_started');
    expect(await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).state(jti)).toBe('revoked');
  });

  it('callback mode: the approved callback carries no token, the proposal ends failed, approval_withdrawn, and the agent is told', async () => {
    const id = ids.callbackAlice;
    const [approved] = await callbacks.waitFor(1, about(id, 'approved'));
    expect(approved!.body.execution_token).toBeUndefined();
    const [failed] = await callbacks.waitFor(1, about(id, 'failed'));
    expect(failed!.body).toMatchObject({ current_status: 'failed', execution: { outcome: 'not_run', reason: 'approval_withdrawn' } });
    expect(failed!.body.execution_token).toBeUndefined();
    const events = await eventsOf(id);
    expect(events.find((e) => e.type === 'execution_finished')?.data).toMatchObject({ reason: 'approval_withdrawn', void_approvers: ['alice'] });
    expect(events.map((e) => e.type)).not.toContain('execution_started');
  });

  it('executor mode: the executor is never called; an approval that still holds runs as before', async () => {
    const withdrawn = await waitForStatus(app.billing, ids.executorAlice, (s) => s === 'failed' || s === 'succeeded');
    expect(withdrawn).toMatchObject({ status: 'failed', execution: { mode: 'executor', outcome: 'not_run', reason: 'approval_withdrawn' } });
    const kept = await waitForStatus(app.billing, ids.executorCarol, (s) => s === 'failed' || s === 'succeeded');
    expect(kept).toMatchObject({ status: 'succeeded', execution: { outcome: 'succeeded' } });
    expect(executor.requests.filter((r) => r.body?.proposal_id === ids.executorCarol)).toHaveLength(1);
    expect(executor.requests.filter((r) => r.body?.proposal_id === ids.executorAlice)).toHaveLength(0);
  });

  it('a token that left before the restart is no longer redeemable', async () => {
    const redeem = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: takenToken }) });
    expect(await redeem.json()).toEqual({ active: false });
    const events = await eventsOf(ids.takenAlice);
    expect(events.map((e) => e.type)).not.toContain('token_redeemed');
    expect(events.find((e) => e.type === 'approval_void')?.data).toMatchObject({ person: 'alice', why: 'unknown_person' });
    const jti = (await asAdmin(ids.takenAlice)).execution.token_id as string;
    expect(await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).state(jti)).toBe('revoked');
  });

  it('nothing changes when the approvals still hold, or when the policy itself allowed the action', async () => {
    for (const id of [ids.pollCarol, ids.pollAllowed]) {
      const read = await app.billing.request('GET', `/v1/proposals/${id}`);
      expect(read.body.execution_token).toEqual(expect.any(String));
      const redeem = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: read.body.execution_token }) });
      expect(await redeem.json()).toMatchObject({ active: true, proposal_id: id });
      expect((await eventsOf(id)).map((e) => e.type)).not.toContain('approval_void');
    }
  });
});
