import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { runCli } from '../../src/cli.ts';
import { restartTestApp, startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { signInWithKey } from '../helpers/console.ts';
import { actionBody } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer, type RecordedRequest } from '../helpers/executor-server.ts';

// An agent dropped from the policy is a failed check wherever an approval takes effect. People
// approve billing-agent's actions under one policy; countersign restarts (same Redis) with a
// policy that no longer names billing-agent. A vote on its proposal is refused (agent_unknown),
// its former sponsor included; an approved proposal not yet run never hands its token out
// (executor, callback, redemption) and ends failed / not_run / agent_removed. The kill switch
// still reaches it: revoke and restore take any well-formed agent id and say it is not in the policy.

const KEYS = { bob: 'bob-key-0123456789', carol: 'carol-key-0123456789', erin: 'erin-key-0123456789' };
type Person = keyof typeof KEYS;
const keyHash = (person: Person) => createHash('sha256').update(KEYS[person]).digest('hex');
const PUBLIC_URL = 'http://countersign.test';

function policy(opts: { executorUrl: string; callbackUrl: string; withBilling: boolean }): string {
  const billing = `
  - id: billing-agent
    sponsors: [erin]
    secret_env: AGENT_BILLING_SECRET
    callback_url: ${opts.callbackUrl}`;
  return `
version: 1
agents:${opts.withBilling ? billing : ''}
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
${(['bob', 'carol', 'erin'] as const).map((p) => `  ${p}: { console_key_sha256: ${keyHash(p)} }`).join('\n')}
groups:
  finance: [bob, carol, erin]
  admins: [bob]
channels:
  finance: { console: true }
executors:
  deploy: { url: ${opts.executorUrl}/execute, timeout: 2s }
rules:
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
let afterPolicy = '';
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
    body: new URLSearchParams({ csrf: session.csrf, vote, reason: 'not this one' }).toString(),
  });
  return (await res.json()) as { ok: boolean; status?: string; message: string; why?: string };
}

async function propose(operation: string, tool: string, target: string): Promise<{ id: string; status: string }> {
  const res = await app.billing.propose(actionBody(tool, target, operation));
  expect(res.status).toBe(201);
  return res.body;
}

const admin = (path: string, method = 'GET') => fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
const asAdmin = async (id: string) => (await (await admin(`/v1/proposals/${id}`)).json()) as any;

/** Long-polls as the admin (the removed agent can no longer read its own proposals). */
async function waitAsAdmin(id: string, done: (status: string) => boolean): Promise<any> {
  const deadline = Date.now() + 15_000;
  for (let first = true; ; first = false) {
    const p = (await (await admin(`/v1/proposals/${id}${first ? '' : '/wait?timeout=5'}`)).json()) as any;
    if (done(p.status)) return p;
    if (Date.now() > deadline) throw new Error(`proposal ${id} is still ${p.status}`);
  }
}

async function eventsOf(id: string): Promise<{ type: string; actor: string; data: any }[]> {
  const res = (await (await admin(`/v1/audit?proposal_id=${id}&limit=500`)).json()) as { events: { type: string; actor: string; data: any }[] };
  return res.events.reverse();
}

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

const about = (id: string) => (r: RecordedRequest) => r.body?.proposal_id === id;

const ids = { pending: '', executor: '', callback: '', allowed: '', taken: '' };
let takenToken = '';

beforeAll(async () => {
  executor = await startFakeHttpServer();
  callbacks = await startFakeHttpServer();
  callbacks.respond = (req) => req.reply(204, '');
  const urls = { executorUrl: executor.url, callbackUrl: `${callbacks.url}/countersign` };
  const options = { env: { PUBLIC_URL }, start: { execution: { callbackAttempts: 2, callbackBackoffMs: 20 } } };
  app = await startTestApp({ policy: policy({ ...urls, withBilling: true }), ...options });

  ids.pending = (await propose('one-person', 'selfserve', 'pending')).id;
  // Under this policy erin sponsors the agent: she may not approve its actions.
  expect(await decide('erin', ids.pending)).toMatchObject({ ok: false, why: 'sponsor' });

  // Its token already with the agent (the callback carried it): executing.
  ids.taken = (await propose('one-person', 'selfserve', 'taken')).id;
  expect(await decide('bob', ids.taken)).toMatchObject({ ok: true, status: 'approved' });
  const [withToken] = await callbacks.waitFor(1, (r) => about(ids.taken)(r) && typeof r.body?.execution_token === 'string');
  takenToken = withToken!.body.execution_token;

  // Approved, their execute and callback jobs held where a backlog would hold them until the restart.
  const executeQueue = queueHandle('execute', app.prefix);
  const callbackQueue = queueHandle('callback', app.prefix);
  await executeQueue.pause();
  await callbackQueue.pause();
  ids.executor = (await propose('one-person', 'deploy', 'executor')).id;
  expect(await decide('bob', ids.executor)).toMatchObject({ ok: true, status: 'approved' });
  ids.callback = (await propose('one-person', 'selfserve', 'callback')).id;
  expect(await decide('carol', ids.callback)).toMatchObject({ ok: true, status: 'approved' });
  const allowed = await propose('anything', 'selfserve', 'allowed');
  expect(allowed.status).toBe('approved');
  ids.allowed = allowed.id;
  for (const id of [ids.executor, ids.callback, ids.allowed]) expect((await asAdmin(id)).execution).toMatchObject({ token_id: expect.any(String), started_at: null });

  sessions.clear();
  afterPolicy = policy({ ...urls, withBilling: false });
  app = await restartTestApp(app, { policy: afterPolicy, ...options });
  await executeQueue.resume();
  await callbackQueue.resume();
});

afterAll(async () => {
  await executor.close();
  await callbacks.close();
});

describe('a vote on a removed agent’s proposal', () => {
  it('is refused (agent_unknown) and audited, for its former sponsor and everyone else; nothing is counted', async () => {
    const erin = await decide('erin', ids.pending);
    expect(erin).toMatchObject({ ok: false, why: 'agent_unknown' });
    expect(erin.message).toMatch(/billing-agent.*no longer in the policy/);
    expect(await decide('bob', ids.pending)).toMatchObject({ ok: false, why: 'agent_unknown' });
    expect(await decide('carol', ids.pending, 'deny')).toMatchObject({ ok: false, why: 'agent_unknown' });
    const p = await asAdmin(ids.pending);
    expect(p).toMatchObject({ status: 'pending', approvals: [] });
    const refusals = (await eventsOf(ids.pending)).filter((e) => e.type === 'approval_refused' && e.data.why === 'agent_unknown');
    expect(refusals.map((e) => e.data.person)).toEqual(['erin', 'bob', 'carol']);
    // The console says why before anyone clicks, and offers no buttons.
    const card = await (await fetch(`${app.url}/console/proposals/${ids.pending}/card`, { headers: { cookie: sessions.get('bob')!.cookie } })).text();
    expect(card).toContain('no longer in the policy');
    expect(card).not.toContain('class="decide"');
  });
});

describe('an approved proposal of a removed agent does not run', () => {
  it('executor: never called; the proposal ends failed, not_run, agent_removed, its token revoked', async () => {
    const p = await waitAsAdmin(ids.executor, (s) => s !== 'approved' && s !== 'executing');
    expect(p).toMatchObject({ status: 'failed', execution: { mode: 'executor', outcome: 'not_run', reason: 'agent_removed' } });
    // The decision stays as people made it.
    expect(p.resolution).toMatchObject({ status: 'approved', by: 'bob' });
    expect(executor.requests.filter(about(ids.executor))).toHaveLength(0);
    const events = await eventsOf(ids.executor);
    expect(events.find((e) => e.type === 'execution_finished')?.data).toMatchObject({ status: 'failed', outcome: 'not_run', reason: 'agent_removed' });
    expect(events.map((e) => e.type)).not.toContain('execution_started');
    expect(await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).state(p.execution.token_id)).toBe('revoked');
  });

  it('callback: no token leaves; approved by people or allowed by the policy, it ends failed, agent_removed', async () => {
    for (const id of [ids.callback, ids.allowed]) {
      const p = await waitAsAdmin(id, (s) => s !== 'approved' && s !== 'executing');
      expect(p).toMatchObject({ status: 'failed', execution: { outcome: 'not_run', reason: 'agent_removed' } });
      expect(await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).state(p.execution.token_id)).toBe('revoked');
      expect((await eventsOf(id)).map((e) => e.type)).not.toContain('execution_started');
    }
    expect(callbacks.requests.filter((r) => about(ids.callback)(r) || about(ids.allowed)(r))).toHaveLength(0);
  });

  it('a token that left before the restart no longer redeems, and the audit says why', async () => {
    const redeem = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: takenToken }) });
    expect(await redeem.json()).toEqual({ active: false });
    const events = await eventsOf(ids.taken);
    expect(events.map((e) => e.type)).not.toContain('token_redeemed');
    const p = await asAdmin(ids.taken);
    expect(events.find((e) => e.type === 'token_revoked')?.data).toEqual({ jti: p.execution.token_id, reason: 'agent_removed' });
    expect(await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).state(p.execution.token_id)).toBe('revoked');
  });
});

describe('the kill switch reaches an agent the policy no longer names', () => {
  it('revoke (admin API) cancels its pending proposals and says the agent is not in the policy; a malformed id is 400', async () => {
    const res = await admin('/v1/agents/billing-agent/revoke', 'POST');
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ agent: 'billing-agent', in_policy: false });
    expect(body.cancelled).toContain(ids.pending);
    expect((await asAdmin(ids.pending)).status).toBe('cancelled');

    const bad = await admin('/v1/agents/bad%20agent/revoke', 'POST');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_request', issues: [{ path: 'agent' }] });
    const stranger = await admin('/v1/agents/never-heard-of/revoke', 'POST');
    expect(stranger.status).toBe(200);
    expect(await stranger.json()).toMatchObject({ agent: 'never-heard-of', in_policy: false, cancelled: [] });
  });

  it('restore (CLI) lifts it, and says so', async () => {
    const policyFile = join(mkdtempSync(join(tmpdir(), 'countersign-removed-')), 'policy.yaml');
    writeFileSync(policyFile, afterPolicy);
    const env = { REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix, POLICY_FILE: policyFile, AGENT_OPS_SECRET: 'y', PUBLIC_URL, LOG_LEVEL: 'silent' };
    const lines = { out: [] as string[], err: [] as string[] };
    expect(await runCli(['restore', '--agent', 'billing-agent'], env, { out: (l) => lines.out.push(l), err: (l) => lines.err.push(l) })).toBe(0);
    expect(lines.out[0]).toMatch(/^restored agent billing-agent: /);
    expect(lines.out.join('\n')).toContain('billing-agent is not in the policy');
  });
});
