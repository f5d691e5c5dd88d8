import { beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/observe.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { sign } from '../../src/core/signing.ts';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

async function storedCount(): Promise<number> {
  const counts = await app.running.deps.store.countByStatus();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

async function auditTypes(query = ''): Promise<string[]> {
  const res = await app.admin<{ events: { type: string }[] }>(`/v1/audit?limit=500${query}`);
  return res.body.events.map((e) => e.type);
}

describe('POST /v1/proposals', () => {
  it('stores a proposal that needs approval and answers 201 with the decision', async () => {
    const res = await app.billing.propose(proposalBody());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      status: 'pending',
      decision: { effect: 'approve', risk: 'high', rule: 'payments', route: 'finance', approvals_required: 1 },
    });
    expect(res.body.id).toMatch(/^p_/);
    expect(Date.parse(res.body.expires_at)).toBeGreaterThan(Date.now());
    const got = await app.billing.request('GET', `/v1/proposals/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: res.body.id, agent: 'billing-agent', status: 'pending', action: { tool: 'payments', target: 'stripe:cus_123' } });
  });

  it('approves what the policy allows and rejects what it denies, at once', async () => {
    const allowed = await app.ops.propose(
      proposalBody({ action: { tool: 'crm', operation: 'tag', target: 'lead:9' }, context: { reversible: true, destination: 'internal' } }),
    );
    expect(allowed.status).toBe(201);
    expect(allowed.body).toMatchObject({ status: 'approved', decision: { effect: 'allow', rule: 'reversible-internal-tagging', risk: 'low' }, expires_at: null });
    const denied = await app.ops.propose(proposalBody({ action: { tool: 'postgres', operation: 'drop', target: 'db:main' } }));
    expect(denied.body).toMatchObject({ status: 'rejected', decision: { effect: 'deny', rule: 'never-drop-production-databases' } });
    expect(denied.body.decision.reasons).toEqual(['Dropping production databases is never delegated to agents']);
  });

  it('fills context defaults, so a rule sees production unless told otherwise', async () => {
    const res = await app.ops.propose({ intent: 'drop it', action: { tool: 'postgres', operation: 'drop', target: 'db:x' } });
    expect(res.body.status).toBe('rejected');
  });

  it('returns the first proposal for a repeated idempotency key (200), per agent', async () => {
    const body = proposalBody({ idempotency_key: 'refund-4711' });
    const first = await app.billing.propose(body);
    const again = await app.billing.propose(body);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const otherAgent = await app.ops.propose(body);
    expect(otherAgent.status).toBe(201);
    expect(otherAgent.body.id).not.toBe(first.body.id);
  });

  it('refuses an idempotency key reused for a different action (409), storing nothing', async () => {
    await app.billing.propose(proposalBody({ idempotency_key: 'refund-9' }));
    const before = await storedCount();
    const res = await app.billing.propose(proposalBody({ idempotency_key: 'refund-9', intent: 'something else entirely' }));
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('conflict');
    expect(await storedCount()).toBe(before);
  });
});

describe('bad requests get 400 naming each field, and store nothing', () => {
  it.each([
    ['a missing field', proposalBody({ action: { operation: 'refund', target: 'x' } }), ['action.tool']],
    ['an unknown key', { ...proposalBody(), approve_yourself: true }, ['(body)']],
    ['an unknown nested key', proposalBody({ context: { environment: 'production', colour: 'red' } }), ['context']],
    ['a wrong type', proposalBody({ context: { value: { amount: 'lots', currency: 'EUR' } } }), ['context.value.amount']],
    ['an empty intent and a bad enum', proposalBody({ intent: ' ', context: { destination: 'mars' } }), ['intent', 'context.destination']],
  ])('%s', async (_name, body, paths) => {
    const before = await storedCount();
    const res = await app.billing.propose(body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    for (const path of paths) expect(res.body.issues.map((i: { path: string }) => i.path)).toContain(path);
    expect(res.body.message).toContain(paths[0]);
    expect(await storedCount()).toBe(before);
  });

  it('names the body when it is not JSON', async () => {
    const res = await app.billing.request('POST', '/v1/proposals', undefined, { raw: '{"intent": ' });
    expect(res.status).toBe(400);
    expect(res.body.issues[0]).toMatchObject({ path: '(body)', code: 'invalid_json' });
  });

  it('answers 413 to a body over 64 KiB', async () => {
    const before = await storedCount();
    const res = await app.billing.propose(proposalBody({ intent: 'x'.repeat(70 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
    expect(await storedCount()).toBe(before);
  });
});

describe('authentication: 401, nothing stored, an auth_failed event without secrets', () => {
  const url = () => `${app.url}/v1/proposals`;
  const body = JSON.stringify(proposalBody());
  const now = () => Math.floor(Date.now() / 1000);
  const post = (raw: string) => ({ method: 'POST', path: '/v1/proposals', body: raw });

  it.each([
    ['no credentials', () => ({}), 'missing_credentials', 'missing_credentials'],
    ['an unknown agent', () => ({ 'x-countersign-agent': 'ghost', 'x-countersign-timestamp': String(now()), 'x-countersign-signature': sign('x', now(), post(body)) }), 'unknown_agent', 'bad_signature'],
    ['a wrong signature', () => ({ 'x-countersign-agent': 'billing-agent', 'x-countersign-timestamp': String(now()), 'x-countersign-signature': sign('wrong-secret', now(), post(body)) }), 'bad_signature', 'bad_signature'],
    ['a 6-minute-old timestamp', () => ({ 'x-countersign-agent': 'billing-agent', 'x-countersign-timestamp': String(now() - 360), 'x-countersign-signature': sign(app.secrets.billing, now() - 360, post(body)) }), 'stale_timestamp', 'stale_timestamp'],
    // Told as for a known agent: the code never says whether an agent exists.
    ['an unknown agent with a 6-minute-old timestamp', () => ({ 'x-countersign-agent': 'ghost', 'x-countersign-timestamp': String(now() - 360), 'x-countersign-signature': sign('x', now() - 360, post(body)) }), 'unknown_agent', 'stale_timestamp'],
    ['a signature without its timestamp', () => ({ 'x-countersign-agent': 'billing-agent', 'x-countersign-signature': sign(app.secrets.billing, now(), post(body)) }), 'missing_headers', 'missing_credentials'],
    ['a body changed after signing', () => ({ 'x-countersign-agent': 'billing-agent', 'x-countersign-timestamp': String(now()), 'x-countersign-signature': sign(app.secrets.billing, now(), post(body.replace('420', '42000'))) }), 'bad_signature', 'bad_signature'],
    ['a signature for another path', () => ({ 'x-countersign-agent': 'billing-agent', 'x-countersign-timestamp': String(now()), 'x-countersign-signature': sign(app.secrets.billing, now(), { method: 'POST', path: '/v1/proposals/p_00000000000000000000000000/cancel', body }) }), 'bad_signature', 'bad_signature'],
    ['a signature for another method', () => ({ 'x-countersign-agent': 'billing-agent', 'x-countersign-timestamp': String(now()), 'x-countersign-signature': sign(app.secrets.billing, now(), { method: 'PUT', path: '/v1/proposals', body }) }), 'bad_signature', 'bad_signature'],
    ['a bearer token that is not a JWT', () => ({ authorization: 'Bearer nope' }), 'malformed_bearer_token', 'invalid_token'],
  ])('%s', async (_name, headers, reason, code) => {
    const before = await storedCount();
    const h = headers() as Record<string, string>;
    const res = await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body });
    expect(res.status).toBe(401);
    const answer = (await res.json()) as { error: string; code: string; message: string };
    expect(answer).toEqual({ error: 'unauthorized', code, message: expect.stringMatching(/^authentication failed: /) });

    expect(await storedCount()).toBe(before);
    const audit = await app.admin<{ events: { type: string; data: Record<string, unknown> }[] }>('/v1/audit?q=auth_failed&limit=1');
    const event = audit.body.events[0]!;
    expect(event).toMatchObject({ type: 'auth_failed', data: { reason, path: '/v1/proposals' } });
    const text = JSON.stringify(event);
    expect(text).not.toContain(app.secrets.billing);
    if (h['x-countersign-signature'] !== undefined) expect(text).not.toContain(h['x-countersign-signature'].slice(3));
    // An unknown agent reads exactly as a known one with a wrong secret and the same timestamp.
    if (h['x-countersign-agent'] === 'ghost') {
      const known = { ...h, 'x-countersign-agent': 'billing-agent', 'x-countersign-signature': sign('not-the-secret', Number(h['x-countersign-timestamp']), post(body)) };
      const other = await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json', ...known }, body });
      expect([other.status, await other.json()]).toEqual([401, answer]);
    }
  });

  it('does not accept the admin token for submitting', async () => {
    const res = await fetch(url(), { method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789abcdef' }, body });
    expect(res.status).toBe(401);
  });
});

describe('an agent sees and cancels only its own proposals', () => {
  it('403 for another agent, 200 for the owner and the admin', async () => {
    const { body } = await app.billing.propose(proposalBody());
    expect((await app.ops.request('GET', `/v1/proposals/${body.id}`)).status).toBe(403);
    expect((await app.ops.request('POST', `/v1/proposals/${body.id}/cancel`, {})).status).toBe(403);
    expect((await app.admin(`/v1/proposals/${body.id}`)).status).toBe(200);
    expect((await app.billing.request('GET', `/v1/proposals/p_00000000000000000000000000`)).status).toBe(404);
    expect((await app.billing.request('GET', `/v1/proposals/not-an-id`)).status).toBe(400);
  });

  it('cancels a pending proposal once; the second cancel is a 409', async () => {
    const { body } = await app.billing.propose(proposalBody());
    const first = await app.billing.request('POST', `/v1/proposals/${body.id}/cancel`, { reason: 'customer withdrew' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'cancelled', resolution: { by: 'agent:billing-agent', reason: 'customer withdrew' } });
    const second = await app.billing.request('POST', `/v1/proposals/${body.id}/cancel`, {});
    expect(second.status).toBe(409);
    expect(second.body.proposal.status).toBe('cancelled');
  });
});

describe('GET /v1/proposals/:id/wait', () => {
  it('returns as soon as a decision lands, not at the timeout', async () => {
    const { body } = await app.billing.propose(proposalBody());
    const waiting = app.billing.request('GET', `/v1/proposals/${body.id}/wait?timeout=60`);
    // Decide only once the long-poll is parked on the change feed.
    const { recordDecision } = await import('../../src/app/record-decision.ts');
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 100));
    await recordDecision(app.running.deps, { proposalId: body.id, person: 'alice', platform: 'console', vote: 'approve' });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('approved');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('returns the unchanged proposal at the timeout', async () => {
    const { body } = await app.billing.propose(proposalBody());
    const res = await app.billing.request('GET', `/v1/proposals/${body.id}/wait?timeout=0.2`);
    expect(res.body.status).toBe('pending');
  });

  it('refuses a timeout out of range', async () => {
    const { body } = await app.billing.propose(proposalBody());
    const res = await app.billing.request('GET', `/v1/proposals/${body.id}/wait?timeout=600`);
    expect(res.status).toBe(400);
    expect(res.body.issues[0].path).toBe('timeout');
  });
});

describe('GET /v1/audit', () => {
  it('lets the admin search everything and an agent only its own events', async () => {
    const { body } = await app.ops.propose(proposalBody({ intent: 'Rotate the zebra credentials' }));
    const admin = await app.admin<{ events: { proposal_id: string; agent: string }[] }>('/v1/audit?q=zebra');
    expect(admin.body.events.map((e) => e.proposal_id)).toContain(body.id);
    const own = await app.ops.request('GET', '/v1/audit?q=zebra');
    expect(own.status).toBe(200);
    expect(own.body.events.length).toBeGreaterThan(0);
    const other = await app.billing.request('GET', '/v1/audit?q=zebra');
    expect(other.body.events).toEqual([]);
    const asked = await app.billing.request('GET', '/v1/audit?agent=ops-agent');
    expect(asked.body.events.every((e: { agent: string }) => e.agent === 'billing-agent')).toBe(true);
  });

  it('filters by status and actor, and validates its parameters', async () => {
    const { body } = await app.ops.propose(proposalBody({ intent: 'Quokka migration', action: { tool: 'postgres', operation: 'drop', target: 'db:q' } }));
    const rejected = await app.admin<{ events: { proposal_id: string; actor: string }[] }>('/v1/audit?status=rejected&q=quokka');
    expect(rejected.body.events.length).toBeGreaterThan(0);
    expect(rejected.body.events.every((e) => e.proposal_id === body.id)).toBe(true);
    const byPolicy = await app.admin<{ events: { actor: string }[] }>('/v1/audit?actor=policy&q=quokka');
    expect(byPolicy.body.events.every((e) => e.actor === 'policy')).toBe(true);
    const bad = await app.admin<{ issues: { path: string }[] }>('/v1/audit?status=sleeping&limit=0&since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i) => i.path).sort()).toEqual(['limit', 'since', 'status']);
  });

  it('records the lifecycle of a proposal in order', async () => {
    const { body } = await app.ops.propose(proposalBody({ action: { tool: 'crm', operation: 'tag', target: 'x' }, context: { reversible: true } }));
    // The 201 comes before the token is issued (in the background, right after).
    const types = await until(() => auditTypes(`&proposal_id=${body.id}`), (t) => t.includes('token_issued'));
    // An allowed proposal is approved at once, which mints its execution token.
    expect(types.reverse()).toEqual(['proposal_received', 'policy_decided', 'decided', 'token_issued']);
  });
});

describe('health and metrics', () => {
  it('answers liveness, readiness and Prometheus', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toMatch(/countersign_proposals\{status="pending"\} [1-9]/);
    expect(text).toMatch(/countersign_proposals_submitted_total\{effect="approve"\} [1-9]/);
    expect(text).toContain('countersign_queue_jobs{queue="expire",state="delayed"}');
  });
});

describe('replayed and cross-endpoint signatures', () => {
  const signed = (method: string, path: string, raw: string, ts = Math.floor(Date.now() / 1000)) => ({
    'content-type': 'application/json',
    'x-countersign-agent': 'billing-agent',
    'x-countersign-timestamp': String(ts),
    'x-countersign-signature': sign(app.secrets.billing, ts, { method, path, body: raw }),
  });

  it('answers the same signed submission with the first proposal, never a second card', async () => {
    const raw = JSON.stringify(proposalBody({ intent: 'replay me' }));
    const headers = signed('POST', '/v1/proposals', raw);
    const first = await fetch(`${app.url}/v1/proposals`, { method: 'POST', headers, body: raw });
    expect(first.status).toBe(201);
    const before = await storedCount();
    const again = await fetch(`${app.url}/v1/proposals`, { method: 'POST', headers, body: raw });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
    expect(await storedCount()).toBe(before);
  });

  it('refuses a signature made for one proposal when sent for another', async () => {
    const a = (await app.billing.propose(proposalBody())).body.id as string;
    const b = (await app.billing.propose(proposalBody())).body.id as string;
    const headers = signed('POST', `/v1/proposals/${a}/cancel`, '{}');
    expect((await fetch(`${app.url}/v1/proposals/${a}/cancel`, { method: 'POST', headers, body: '{}' })).status).toBe(200);
    const reused = await fetch(`${app.url}/v1/proposals/${b}/cancel`, { method: 'POST', headers, body: '{}' });
    expect(reused.status).toBe(401);
    expect((await app.admin<{ status: string }>(`/v1/proposals/${b}`)).body.status).toBe('pending');
  });

  it('refuses a GET signature used for a write, and lets two cancels in one second through', async () => {
    const id = (await app.billing.propose(proposalBody())).body.id as string;
    const other = (await app.billing.propose(proposalBody())).body.id as string;
    const headers = signed('GET', `/v1/proposals/${id}`, '');
    expect((await fetch(`${app.url}/v1/proposals/${id}`, { headers })).status).toBe(200);
    expect((await fetch(`${app.url}/v1/proposals/${id}/cancel`, { method: 'POST', headers })).status).toBe(401);
    expect((await app.admin<{ status: string }>(`/v1/proposals/${id}`)).body.status).toBe('pending');
    const now = Date.now();
    const [x, y] = await Promise.all([id, other].map((p) => app.billing.request('POST', `/v1/proposals/${p}/cancel`, {}, { now })));
    expect([x!.status, y!.status]).toEqual([200, 200]);
  });

  it('lets reads repeat: polling within the same second is fine', async () => {
    const { body } = await app.billing.propose(proposalBody());
    const now = Date.now();
    const a = await app.billing.request('GET', `/v1/proposals/${body.id}`, undefined, { now });
    const b = await app.billing.request('GET', `/v1/proposals/${body.id}`, undefined, { now });
    expect([a.status, b.status]).toEqual([200, 200]);
  });
});

describe('odd requests', () => {
  it('refuses a "__proto__" key by name instead of dropping it', async () => {
    const res = await app.billing.request('POST', '/v1/proposals', undefined, {
      raw: JSON.stringify(proposalBody()).replace('"parameters":{', '"parameters":{"__proto__":{"amount":1},'),
    });
    expect(res.status).toBe(400);
    expect(res.body.issues[0]).toMatchObject({ path: 'action.parameters.__proto__', code: 'forbidden_key' });
  });

  it('answers 400 to a malformed %-escape, 404 to an unknown path, 405 to a wrong method', async () => {
    expect((await app.billing.request('GET', '/v1/proposals/%E0%A4%A')).status).toBe(400);
    expect((await fetch(`${app.url}/v1/nothing`)).status).toBe(404);
    expect((await fetch(`${app.url}/v1/proposals`, { method: 'GET' })).status).toBe(405);
  });

  it('closes the connection after a 413 a declared length announced', async () => {
    const res = await fetch(`${app.url}/v1/proposals`, { method: 'POST', body: 'x'.repeat(200 * 1024) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
  });
});
