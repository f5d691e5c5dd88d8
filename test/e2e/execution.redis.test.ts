import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { actionBody, executeQueue, executionPolicy, waitForStatus, type ExecuteQueueHandle } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer, type RecordedRequest } from '../helpers/executor-server.ts';
import { waitFor } from '../helpers/fake-slack.ts';

// The webhook executor end to end: real app, real Redis, a local executor. The executor's
// answer is scripted by the action's target.

const canonicalize = canonicalizeModule as unknown as (v: unknown) => string;
const digest = (action: unknown) => createHash('sha256').update(canonicalize(action)).digest('base64url');

let app: TestApp;
let executor: FakeHttpServer;
let queue: ExecuteQueueHandle;
const forTarget = (target: string) => (r: RecordedRequest) => r.body?.action?.target === target;

beforeAll(async () => {
  executor = await startFakeHttpServer();
  executor.respond = (req) => {
    const target = String(req.body?.action?.target ?? '');
    if (target.startsWith('hold') || target.startsWith('never')) return 'hold';
    if (target.startsWith('fail')) return req.reply(500, '{"error":"disk full"}');
    // Echo things a careless executor would: the bearer token, a password, a long key.
    req.reply(200, JSON.stringify({ done: true, echo: req.headers.authorization, password: 'hunter2', key: 'a'.repeat(40) }));
  };
  app = await startTestApp({ policy: executionPolicy({ executorUrl: executor.url }), start: { execution: { executeAttempts: 2, executeBackoffMs: 50 } } });
  queue = await executeQueue(app.prefix);
});

async function jwks() {
  const res = await fetch(`${app.url}/.well-known/jwks.json`);
  expect(res.status).toBe(200);
  return createLocalJWKSet((await res.json()) as { keys: any[] });
}

describe('webhook executor', () => {
  it('sends the approved action with a token that verifies against the JWKS and binds the action', async () => {
    const body = actionBody('deploy', 'ok-1');
    const submitted = await app.ops.propose(body);
    expect(submitted.body.status).toBe('approved');
    const id = submitted.body.id as string;
    const [req] = await executor.waitFor(1, forTarget('ok-1'));
    expect(req!.path).toBe('/execute');
    expect(Object.keys(req!.body).sort()).toEqual(['action', 'agent', 'approvals', 'proposal_id']);
    expect(req!.body).toMatchObject({ proposal_id: id, agent: 'ops-agent', approvals: [] });

    const token = /^Bearer (\S+)$/.exec(String(req!.headers.authorization))![1]!;
    // The same token in its own header, which every executor kind gets.
    expect(req!.headers['x-countersign-execution-token']).toBe(token);
    const { payload, protectedHeader } = await jwtVerify(token, await jwks(), { issuer: app.url, audience: 'deploy', subject: 'ops-agent' });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload).toMatchObject({ proposal_id: id, approvers: [] });
    expect(payload.action_digest).toBe(digest(req!.body.action));
    expect(payload.action_digest).toBe(digest({ ...body['action'] as object }));
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);

    const done = await waitForStatus(app.ops, id, (s) => s === 'succeeded');
    expect(done.execution).toMatchObject({ mode: 'executor', status_code: 200, outcome: 'succeeded', reason: null });
    expect(done.execution.duration_seconds).toBeGreaterThanOrEqual(0);
    // The executor echoed the token, a password and a key: none of it is kept.
    const excerpt = done.execution.response_excerpt as string;
    expect(excerpt).not.toContain(token);
    expect(excerpt).not.toContain('hunter2');
    expect(excerpt).not.toContain('a'.repeat(40));
    expect(excerpt).toContain('"done":true');
    expect(JSON.stringify(done)).not.toContain(token);

    const audit = await app.admin<{ events: { type: string; data: unknown }[] }>(`/v1/audit?proposal_id=${id}&limit=100`);
    const types = audit.body.events.map((e) => e.type).reverse();
    expect(types).toEqual(['proposal_received', 'policy_decided', 'decided', 'token_issued', 'execution_started', 'execution_finished']);
    expect(JSON.stringify(audit.body)).not.toContain(token);
    expect(JSON.stringify(audit.body)).not.toContain(token.split('.')[2]!);
  });

  it('redeems a token exactly once, even under 50 concurrent redemptions', async () => {
    // Held: the downstream redeems while it handles the request, as a real one would.
    const { body } = await app.ops.propose(actionBody('deploy', 'hold-redeem'));
    const [req] = await executor.waitFor(1, forTarget('hold-redeem'));
    const token = String(req!.headers.authorization).slice('Bearer '.length);
    const redeem = (t: string) =>
      fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t }) }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as any }),
      );
    const answers = await Promise.all(Array.from({ length: 50 }, () => redeem(token)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const active = answers.filter((a) => a.body.active === true);
    expect(active).toHaveLength(1);
    expect(active[0]!.body).toMatchObject({ active: true, proposal_id: body.id, sub: 'ops-agent', aud: 'deploy', iss: app.url });
    expect(answers.filter((a) => a.body.active === false)).toHaveLength(49);
    expect((await redeem(token)).body).toEqual({ active: false });

    // Forged: same claims, signature of another token.
    const [h, p] = token.split('.');
    const other = String((await executor.waitFor(1, forTarget('ok-1')))[0]!.headers.authorization).slice(7);
    expect((await redeem(`${h}.${p}.${other.split('.')[2]}`)).body).toEqual({ active: false });
    expect((await redeem('not-a-token')).body).toEqual({ active: false });
    const bad = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":"x","extra":1}' });
    expect(bad.status).toBe(400);
    req!.reply(200, '{"ok":true}');
    await waitForStatus(app.ops, body.id, (s) => s === 'succeeded');
  });

  it('closes the token of an execution that ended: it no longer redeems', async () => {
    // Timed out (failed / unknown) without the executor ever redeeming the token.
    const { body } = await app.ops.propose(actionBody('quick', 'never-redeemed'));
    const [req] = await executor.waitFor(1, forTarget('never-redeemed'));
    const token = String(req!.headers.authorization).slice('Bearer '.length);
    const done = await waitForStatus(app.ops, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'unknown', reason: 'timeout' });
    const tokenKey = `{${app.prefix}}:token:${done.execution.token_id}`;
    // The ledger closes the token just after the final commit that the status shows.
    await waitFor(async () => (await app.running.redis.hget(tokenKey, 'state')) === 'closed', { what: 'the token closed' });
    const redeem = async () => (await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })).json();
    expect(await redeem()).toEqual({ active: false });
    // Even a token the ledger still had as issued (the moment between the final commit and the
    // close) is refused: redemption needs the proposal approved or executing.
    await app.running.redis.hset(tokenKey, 'state', 'issued');
    expect(await redeem()).toEqual({ active: false });
  });

  it('marks an executor that does not answer in time failed with outcome unknown, and never retries it', async () => {
    const { body } = await app.ops.propose(actionBody('quick', 'never-1'));
    await executor.waitFor(1, forTarget('never-1'));
    const done = await waitForStatus(app.ops, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'unknown', reason: 'timeout', status_code: null });
    await queue.finished(body.id);
    expect((await queue.queue.getJob(body.id))!.attemptsMade).toBeLessThanOrEqual(1);
    expect(executor.requests.filter(forTarget('never-1'))).toHaveLength(1);
  });

  it('records a non-2xx answer as failed', async () => {
    const { body } = await app.ops.propose(actionBody('deploy', 'fail-1'));
    const done = await waitForStatus(app.ops, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'failed', reason: 'http_500', status_code: 500, response_excerpt: '{"error":"disk full"}' });
  });

  it('executes once when the job is delivered twice: during the execution and after it', async () => {
    const { body } = await app.ops.propose(actionBody('deploy', 'hold-twice'));
    const [held] = await executor.waitFor(1, forTarget('hold-twice'));
    // A second worker (or a stalled job's re-delivery) runs the same execution meanwhile.
    await queue.redeliver(body.id, `again-${body.id}`);
    await queue.finished(`again-${body.id}`);
    expect(executor.requests.filter(forTarget('hold-twice'))).toHaveLength(1);
    held!.reply(200, '{"ok":true}');
    await waitForStatus(app.ops, body.id, (s) => s === 'succeeded');
    await queue.redeliver(body.id, `late-${body.id}`);
    await queue.finished(`late-${body.id}`);
    // And the original job id is taken: enqueueing it again is a no-op.
    await queue.queue.add('execute', { proposal_id: body.id }, { jobId: body.id });
    await queue.finished(body.id);
    expect(executor.requests.filter(forTarget('hold-twice'))).toHaveLength(1);
    const got = await app.ops.request('GET', `/v1/proposals/${body.id}`);
    expect(got.body.status).toBe('succeeded');
  });
});

describe('an executor that cannot be reached', () => {
  let down: TestApp;
  beforeAll(async () => {
    // A port nothing listens on: every attempt fails before anything is sent.
    const closed = await startFakeHttpServer();
    const url = closed.url;
    await closed.close();
    down = await startTestApp({ policy: executionPolicy({ executorUrl: url }), start: { execution: { executeAttempts: 2, executeBackoffMs: 50 } } });
  });

  it('retries only the connection, then fails the proposal as not run', async () => {
    const { body } = await down.ops.propose(actionBody('deploy', 'ok-unreachable'));
    const done = await waitForStatus(down.ops, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'not_run', reason: 'executor_unreachable', started_at: null });
  });
});

describe('GET /.well-known/jwks.json', () => {
  it('publishes public Ed25519 keys only', async () => {
    const res = await fetch(`${app.url}/.well-known/jwks.json`);
    const body = (await res.json()) as { keys: { kty: string; crv: string; kid: string; d?: string }[] };
    expect(body.keys.length).toBeGreaterThanOrEqual(1);
    expect(body.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(body.keys.every((k) => k.d === undefined)).toBe(true);
  });
});
