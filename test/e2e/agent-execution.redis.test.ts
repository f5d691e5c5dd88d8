import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { recordDecision } from '../../src/app/record-decision.ts';
import { signedHeaders, verifySignature } from '../../src/core/signing.ts';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { actionBody, executionPolicy, waitForStatus } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer, type RecordedRequest } from '../helpers/executor-server.ts';

// Agents that execute themselves (tools with no executor): ops-agent has a callback_url and
// gets the decision and the token there; billing-agent polls and gets the token once.

let app: TestApp;
let callbacks: FakeHttpServer;
const about = (id: string, status?: string) => (r: RecordedRequest) => r.body?.proposal_id === id && (status === undefined || r.body?.status === status);

beforeAll(async () => {
  const executor = await startFakeHttpServer();
  callbacks = await startFakeHttpServer();
  callbacks.respond = (req) => {
    // The first delivery of "flaky" proposals fails: the callback queue retries it.
    const target = String(req.body?.action?.target ?? '');
    const earlier = callbacks.requests.filter((r) => r.body?.proposal_id === req.body?.proposal_id && r.body?.status === req.body?.status);
    if (target === 'always-down') return req.reply(503, 'down');
    if (target === 'flaky' && earlier.length === 1) return req.reply(500, 'try later');
    req.reply(204, '');
  };
  app = await startTestApp({
    policy: executionPolicy({ executorUrl: executor.url, callbackUrl: `${callbacks.url}/countersign` }),
    start: { execution: { callbackAttempts: 3, callbackBackoffMs: 20 } },
  });
});

function checkSignature(req: RecordedRequest) {
  return verifySignature(app.secrets.ops, req.headers['x-countersign-timestamp'] as string, req.headers['x-countersign-signature'] as string, { method: 'POST', path: req.path, body: req.raw }, Date.now());
}

describe('an agent with a callback_url', () => {
  it('receives the approval and the token in a signed callback, then reports the outcome with it', async () => {
    const { body } = await app.ops.propose(actionBody('selfserve', 'self-1'));
    expect(body.status).toBe('approved');
    const [cb] = await callbacks.waitFor(1, about(body.id, 'approved'));
    expect(cb!.path).toBe('/countersign');
    expect(cb!.headers['x-countersign-agent']).toBe('ops-agent');
    expect(checkSignature(cb!)).toEqual({ ok: true });
    expect(verifySignature('wrong-secret', cb!.headers['x-countersign-timestamp'] as string, cb!.headers['x-countersign-signature'] as string, { method: 'POST', path: cb!.path, body: cb!.raw }, Date.now()).ok).toBe(false);
    const token = cb!.body.execution_token as string;
    const jwks = createLocalJWKSet((await (await fetch(`${app.url}/.well-known/jwks.json`)).json()) as { keys: any[] });
    const { payload } = await jwtVerify(token, jwks, { issuer: app.url, audience: 'selfserve', subject: 'ops-agent' });
    expect(payload.proposal_id).toBe(body.id);
    expect(cb!.body.execution).toMatchObject({ mode: 'callback', outcome: null });

    // Polling does not hand the token out a second time.
    const polled = await app.ops.request('GET', `/v1/proposals/${body.id}`);
    expect(polled.body.execution_token).toBeUndefined();

    const forged = await app.ops.request('POST', `/v1/proposals/${body.id}/outcome`, { token: `${token.slice(0, -4)}AAAA`, status: 'succeeded' });
    expect(forged.status).toBe(403);
    const asOther = await app.billing.request('POST', `/v1/proposals/${body.id}/outcome`, { token, status: 'succeeded' });
    expect(asOther.status).toBe(403);
    const report = await app.ops.request('POST', `/v1/proposals/${body.id}/outcome`, { token, status: 'succeeded', status_code: 201, detail: 'created ticket; api_key=sk_live_abcdef' });
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ status: 'succeeded', execution: { mode: 'callback', outcome: 'succeeded', status_code: 201 } });
    expect(report.body.execution.response_excerpt).toBe('created ticket; api_key=[redacted]');
    const again = await app.ops.request('POST', `/v1/proposals/${body.id}/outcome`, { token, status: 'failed' });
    expect(again.status).toBe(409);

    const audit = await app.admin<{ events: { type: string; data: any }[] }>(`/v1/audit?proposal_id=${body.id}&limit=100`);
    const types = audit.body.events.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['token_issued', 'callback_delivered', 'execution_started', 'execution_finished']));
    expect(audit.body.events.find((e) => e.type === 'callback_delivered')!.data).toMatchObject({ status: 'approved', http_status: 204, with_token: true });
    expect(JSON.stringify(audit.body)).not.toContain(token);
  });

  it('is told about denials, and a failing callback is retried', async () => {
    const { body } = await app.ops.propose(actionBody('selfserve', 'flaky', 'approve-me'));
    expect(body.status).toBe('pending');
    await recordDecision(app.running.deps, { proposalId: body.id, person: 'alice', platform: 'console', vote: 'deny', reason: 'not today' });
    const [, second] = await callbacks.waitFor(2, about(body.id, 'denied'));
    expect(checkSignature(second!)).toEqual({ ok: true });
    expect(second!.body).toMatchObject({ status: 'denied', resolution: { status: 'denied', by: 'alice', reason: 'not today' } });
    expect(second!.body.execution_token).toBeUndefined();
  });

  it('records a callback that never gets through', async () => {
    const { body } = await app.ops.propose(actionBody('selfserve', 'always-down'));
    await callbacks.waitFor(3, about(body.id, 'approved'));
    const audit = async () => (await app.admin<{ events: { type: string; data: any }[] }>(`/v1/audit?proposal_id=${body.id}&limit=100`)).body.events;
    // The give-up is recorded right after the last attempt's answer; only the audit shows it.
    let events = await audit();
    for (let i = 0; i < 250 && !events.some((e) => e.type === 'callback_failed'); i++) {
      await new Promise((r) => setTimeout(r, 20));
      events = await audit();
    }
    expect(events.find((e) => e.type === 'callback_failed')!.data).toMatchObject({ status: 'approved', attempts: 3, http_status: 503 });
  });
});

describe('an agent that polls', () => {
  it('gets the token from the first read after approval only, and can redeem it once', async () => {
    const { body } = await app.billing.propose(actionBody('selfserve', 'poll-1', 'approve-me'));
    const pending = await app.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(pending.body.execution_token).toBeUndefined();
    await recordDecision(app.running.deps, { proposalId: body.id, person: 'alice', platform: 'console', vote: 'approve' });
    // An admin's read does not use up the agent's token.
    expect((await app.admin(`/v1/proposals/${body.id}`)).body.execution_token).toBeUndefined();
    const first = await app.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(first.body).toMatchObject({ status: 'approved', execution: { mode: 'poll' } });
    const token = first.body.execution_token as string;
    expect(token.split('.')).toHaveLength(3);
    const second = await app.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(second.body.execution_token).toBeUndefined();
    // The token has left countersign: the execution has started.
    expect(second.body).toMatchObject({ status: 'executing', execution: { mode: 'poll' } });

    const redeem = async () => (await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })).json() as Promise<any>;
    expect(await redeem()).toMatchObject({ active: true, approvers: ['alice'], proposal_id: body.id });
    expect(await redeem()).toEqual({ active: false });
    // Redemption is when an agent that executes itself starts.
    const started = await waitForStatus(app.billing, body.id, (s) => s === 'executing');
    expect(started.execution.started_at).not.toBeNull();
    const report = await app.billing.request('POST', `/v1/proposals/${body.id}/outcome`, { token, status: 'failed', detail: 'quota exceeded' });
    expect(report.body).toMatchObject({ status: 'failed', execution: { outcome: 'failed', reason: 'reported_failed', response_excerpt: 'quota exceeded' } });
  });
});

describe('a poll read whose client leaves while the token is being taken', () => {
  it('writes nothing and offers the token to the next read instead of losing it', async () => {
    const { body } = await app.billing.propose(actionBody('selfserve', 'poll-left'));
    expect(body.status).toBe('approved');
    const id = body.id as string;
    const redis = app.running.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const getdel = redis['getdel']!;
    const restore = redis['countersignTokenRestore'];
    let restored!: (v: unknown) => void;
    const restoredDone = new Promise((r) => (restored = r));
    // The server side of the wait request's connection, to wait for its close (an event).
    const serverSocket = new Promise<Socket>((r) => app.running.server.once('connection', r));
    const path = `/v1/proposals/${id}/wait?timeout=0`;
    const client = httpRequest(`${app.url}${path}`, { agent: false, headers: signedHeaders('billing-agent', app.secrets.billing, { method: 'GET', path, body: '' }, Date.now()) });
    client.on('error', () => undefined);
    redis['getdel'] = async function (this: unknown, ...args: unknown[]) {
      if (String(args[0]).includes(`:pickup:${id}`)) {
        // The agent gives up right now, while its token is being read.
        const socket = await serverSocket;
        const closed = new Promise((r) => socket.once('close', r));
        client.destroy();
        await closed;
      }
      return getdel.apply(this, args);
    };
    redis['countersignTokenRestore'] = async function (this: unknown, ...args: unknown[]) {
      const v = await restore!.apply(this, args);
      restored(v);
      return v;
    };
    try {
      client.end();
      expect(await restoredDone).toBe(1);
    } finally {
      redis['getdel'] = getdel;
      if (restore === undefined) delete redis['countersignTokenRestore'];
      else redis['countersignTokenRestore'] = restore;
    }
    // The execution started with that read; the token, never written, goes to the next one.
    const next = await app.billing.request('GET', `/v1/proposals/${id}`);
    expect(next.body.status).toBe('executing');
    const token = next.body.execution_token as string;
    expect(decodeJwt(token)).toMatchObject({ proposal_id: id, sub: 'billing-agent' });
    expect((await app.billing.request('GET', `/v1/proposals/${id}`)).body.execution_token).toBeUndefined();
    const report = await app.billing.request('POST', `/v1/proposals/${id}/outcome`, { token, status: 'succeeded' });
    expect(report.body).toMatchObject({ status: 'succeeded', execution: { mode: 'poll', outcome: 'succeeded' } });
  });
});

describe('an agent that executes itself and goes quiet', () => {
  let quiet: TestApp;
  beforeAll(async () => {
    const executor = await startFakeHttpServer();
    // A configured key set, as production has: the first key signs, both are published.
    const current = { ...JSON.parse(await generateSigningKey()), kid: 'k-current' };
    const { d: _private, ...retired } = { ...JSON.parse(await generateSigningKey()), kid: 'k-retired' };
    quiet = await startTestApp({
      policy: executionPolicy({ executorUrl: executor.url }),
      env: { EXECUTION_TOKEN_TTL: '1s', TOKEN_SIGNING_KEY: JSON.stringify({ keys: [current, retired] }) },
      start: { execution: { agentReportWindowMs: 300, sweepEveryMs: 100 } },
    });
  });

  it('a token nobody took expires: failed, not run', async () => {
    const { body } = await quiet.billing.propose(actionBody('selfserve', 'never-polled'));
    expect(body.status).toBe('approved');
    // Waiting through the change feed: an agent's read would take the token.
    expect(await quiet.running.deps.changes.waitForChange(body.id, 5000)).toBe('failed');
    const p = await quiet.running.deps.store.get(body.id);
    expect(p!.execution).toMatchObject({ outcome: 'not_run', reason: 'token_expired', started_at: null });
  });

  it('a token taken but never reported on ends failed with outcome unknown', async () => {
    const { body } = await quiet.billing.propose(actionBody('selfserve', 'polled-then-silent'));
    const read = await quiet.billing.request('GET', `/v1/proposals/${body.id}`);
    expect(decodeProtectedHeader(read.body.execution_token)).toMatchObject({ alg: 'EdDSA', kid: 'k-current' });
    const published = (await (await fetch(`${quiet.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(published.keys.map((k) => k.kid)).toEqual(['k-current', 'k-retired']);
    const done = await waitForStatus(quiet.billing, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'unknown', reason: 'no_outcome_reported' });
    const late = await quiet.billing.request('POST', `/v1/proposals/${body.id}/outcome`, { token: read.body.execution_token, status: 'succeeded' });
    expect(late.status).toBe(409);
    // The execution is over: its token, never redeemed, redeems no more.
    const redeemed = await fetch(`${quiet.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: read.body.execution_token }) });
    expect(await redeemed.json()).toEqual({ active: false });
  });
});

describe('a callback whose connection breaks after the token was sent', () => {
  let resets: TestApp;
  let cbServer: FakeHttpServer;
  beforeAll(async () => {
    const executor = await startFakeHttpServer();
    cbServer = await startFakeHttpServer();
    // The agent's server got the request (and the token), then the connection reset.
    cbServer.respond = (_req, res) => void res.socket?.destroy();
    resets = await startTestApp({
      policy: executionPolicy({ executorUrl: executor.url, callbackUrl: `${cbServer.url}/countersign` }),
      env: { EXECUTION_TOKEN_TTL: '1s' },
      start: { execution: { callbackAttempts: 2, callbackBackoffMs: 20, agentReportWindowMs: 1000, sweepEveryMs: 100 } },
    });
  });

  it('was started before the request left: it ends failed with outcome unknown, never not_run', async () => {
    const { body } = await resets.ops.propose(actionBody('selfserve', 'reset-1'));
    expect(body.status).toBe('approved');
    const [first] = await cbServer.waitFor(1, about(body.id, 'approved'));
    expect(typeof first!.body.execution_token).toBe('string');
    // Claimed before the post: the callback itself already says so.
    expect(first!.body).toMatchObject({ current_status: 'executing', execution: { mode: 'callback' } });
    expect(first!.body.execution.started_at).not.toBeNull();
    // The retry carries the same token again (the first may never have arrived).
    const [, second] = await cbServer.waitFor(2, about(body.id, 'approved'));
    expect(second!.body.execution_token).toBe(first!.body.execution_token);
    const done = await waitForStatus(resets.ops, body.id, (s) => s === 'failed');
    expect(done.execution).toMatchObject({ outcome: 'unknown', reason: 'no_outcome_reported' });
  });
});

describe('an agent revoked while its own execution runs', () => {
  let revoked: TestApp;
  beforeAll(async () => {
    const executor = await startFakeHttpServer();
    revoked = await startTestApp({ policy: executionPolicy({ executorUrl: executor.url }) });
  });

  it('still gets its real outcome recorded, marked token_revoked', async () => {
    const running = (await revoked.billing.propose(actionBody('selfserve', 'revoked-running'))).body.id as string;
    const notStarted = (await revoked.billing.propose(actionBody('selfserve', 'revoked-waiting', 'approve-me'))).body.id as string;
    const read = await revoked.billing.request('GET', `/v1/proposals/${running}`);
    const token = read.body.execution_token as string;
    expect(typeof token).toBe('string');

    const res = await fetch(`${revoked.url}/v1/agents/billing-agent/revoke`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(await res.json()).toMatchObject({ still_executing: [running], cancelled: [notStarted] });
    // Revoked: downstream redemption refuses it.
    const redeemed = await fetch(`${revoked.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(await redeemed.json()).toEqual({ active: false });

    const report = await revoked.billing.request('POST', `/v1/proposals/${running}/outcome`, { token, status: 'succeeded', detail: 'done before the switch' });
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ status: 'succeeded', execution: { outcome: 'succeeded' } });
    const audit = await revoked.admin<{ events: { type: string; data: any }[] }>(`/v1/audit?proposal_id=${running}&limit=50`);
    expect(audit.body.events.find((e) => e.type === 'execution_finished')!.data).toMatchObject({ status: 'succeeded', token_revoked: true });
  });
});
