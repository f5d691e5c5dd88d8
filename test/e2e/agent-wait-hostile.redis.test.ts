import { beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

// GET /v1/proposals/:id/wait?status= (new this session) under attack: a status that is no
// status (long, inherited names, repeated), another agent's proposal, an unsigned request.
// Each answers at once with a refusal and leaves the proposal pending.

let app: TestApp;
let id: string;

beforeAll(async () => {
  app = await startTestApp({});
  const res = await app.billing.propose(proposalBody({ action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_wait', parameters: { amount: 5, currency: 'EUR' } } }));
  expect(res.status).toBe(201);
  id = res.body.id as string;
});

describe('/wait?status= under attack', () => {
  it('a status that is no status is 400 naming `status`, answered at once (timeout=60 is not waited out)', async () => {
    for (const status of ['x'.repeat(4_000), '__proto__', 'constructor', 'toString', 'pending\u0000', 'PENDING', '']) {
      const res = await app.billing.request('GET', `/v1/proposals/${id}/wait?timeout=60&status=${encodeURIComponent(status)}`);
      expect(res.status, JSON.stringify(status.slice(0, 20))).toBe(400);
      expect(res.body.issues).toEqual([expect.objectContaining({ path: 'status' })]);
    }
  });

  it("another agent's proposal is 403 whatever the status, as its plain read is; without a signature 401", async () => {
    expect((await app.ops.request('GET', `/v1/proposals/${id}/wait?timeout=0&status=approved`)).status).toBe(403);
    expect((await fetch(`${app.url}/v1/proposals/${id}/wait?timeout=0&status=approved`)).status).toBe(401);
    expect((await app.billing.request('GET', `/v1/proposals/${id}`)).body.status).toBe('pending');
  });

  it('the status the proposal has, with timeout=0, answers it as it is', async () => {
    const res = await app.billing.request('GET', `/v1/proposals/${id}/wait?timeout=0&status=pending`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('pending');
  });
});
