import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateTaskResultSchema } from '@modelcontextprotocol/sdk/experimental/tasks/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { signInWithKey } from '../helpers/console.ts';
import { CONSOLE_KEY, gatewayClient, gatewayEnv, gatewayPolicy, MCP_KEYS, tempCallLog } from '../helpers/mcp-gateway.ts';
import { startHttpUpstream, type HttpUpstream } from '../helpers/mcp-upstream.ts';

// Split-transaction aggregation attacked through the MCP gateway: a repeated identical call
// must attach to its pending original (never be summed with it into a proposal of its own),
// and an approver's edit of the amount is what later proposals to the target are summed with.

const EDITABLE_REFUNDS = `  - name: cfo-refunds
    when: action.operation == "refund" && action.target.startsWith("cfo") && context.value.amount > 700.0
    effect: approve
    route: finance
    approvers: cfo
  - name: refunds
    when: action.operation == "refund"
    effect: approve
    route: finance
    approvers: finance
    editable: [amount]
default:`;

let upstream: HttpUpstream;
let app: TestApp;
let agent: Client;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  app = await startTestApp({ policy: gatewayPolicy({ httpUpstreamUrl: upstream.url, callLog: tempCallLog() }).replace('default:', EDITABLE_REFUNDS).replace('groups:\n', 'groups:\n  cfo: [bob]\n').replace('  agents:\n    mcp-agent:', '  agents:\n    ops-agent: { pending: 2 }\n    mcp-agent:'), env: gatewayEnv() });
  agent = await gatewayClient(app.url, MCP_KEYS.agent, { tasks: true });
});
afterAll(async () => {
  await agent?.close();
  await upstream?.close();
});

/** A refund as a task: answered at once with the proposal's id. */
async function refund(charge: string, amount: number | string, currency = 'EUR'): Promise<string> {
  const r = await agent.request({ method: 'tools/call', params: { name: 'payments__refund', arguments: { charge_id: charge, amount, currency }, task: { ttl: 60_000 } } }, CreateTaskResultSchema);
  return r.task.taskId;
}
const proposalOf = async (id: string) => (await app.admin(`/v1/proposals/${id}`)).body;

/** alice edits in the console, with the version from the card's own form. */
async function consoleEdit(id: string, fields: Record<string, string>, seen?: number): Promise<number> {
  const { cookie, csrf } = await signInWithKey(app.url, 'alice', CONSOLE_KEY);
  const page = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie } })).text();
  const version = seen === undefined ? (/name="version" value="(\d+)"/.exec(page)?.[1] ?? '') : String(seen);
  const r = await fetch(`${app.url}/console/proposals/${id}/edit`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.url, cookie, accept: 'application/json' },
    body: new URLSearchParams({ csrf, version, ...fields }).toString(),
  });
  return r.status;
}

describe('split-transaction aggregation under attack', () => {
  it('a repeated identical call attaches to its pending original instead of being summed with it into a denied proposal', async () => {
    const first = await refund('ch_twice', 600);
    expect((await proposalOf(first)).status).toBe('pending');
    // 600 + its own pending 600 is over big-refunds-never's 1000: the repeat must still attach.
    const again = await refund('ch_twice', 600);
    expect(again).toBe(first);
    const received = (await app.admin<{ events: any[] }>('/v1/audit?limit=100&agent=mcp-agent')).body.events.filter((e) => e.type === 'proposal_received' && e.data.action.target === 'ch_twice');
    expect(received).toHaveLength(1);
  });

  it('sums the pieces whatever the case of the currency or target and whether the amount is a number or decimal text', async () => {
    expect((await proposalOf(await refund('ch_case', 400))).status).toBe('pending');
    expect((await proposalOf(await refund('CH_Case', '400', 'eur'))).status).toBe('pending');
    const third = await proposalOf(await refund('ch_case', 300, 'Eur'));
    expect(third.status).toBe('rejected');
    expect(third.decision.aggregate).toMatchObject({ total: 1_100, count: 2 });
  });

  it("an approver's edit of the amount is what later proposals to the target are summed with, up or down", async () => {
    const up = await refund('ch_up', 300);
    expect(await consoleEdit(up, { 'edit:amount': '900' })).toBe(200);
    // Approved at 900 (alice's edit is her approval): 900 + 300 is over 1000.
    expect((await proposalOf(await refund('ch_up', 301))).status).toBe('rejected');

    const down = await refund('ch_down', 900);
    expect(await consoleEdit(down, { 'edit:amount': '100' })).toBe(200);
    // 100 + 600: the 900 first proposed no longer counts.
    expect((await proposalOf(await refund('ch_down', 600))).status).toBe('pending');
  });

  it('an edit is decided on the sum of its aggregate group: raising one of two refunds over the limit together ends it denied, nothing sent', async () => {
    await refund('ch_sum', 500);
    const second = await refund('ch_sum', 400);
    expect((await proposalOf(second)).status).toBe('pending');
    expect(await consoleEdit(second, { 'edit:amount': '600' })).toBe(200);
    const p = await proposalOf(second);
    expect(p).toMatchObject({ status: 'denied', resolution: { by: 'policy' } });
    expect(p.decision.aggregate).toMatchObject({ total: 1_100, count: 1 });
    expect(upstream.calls.some((c) => c.args['charge_id'] === 'ch_sum')).toBe(false);
  });
});

describe('approve with edits under attack', () => {
  it('an edit that moves the action under a rule decided by other people is refused, nothing stored: the card\'s approvers cannot approve it', async () => {
    const id = await refund('cfo_1', 300);
    // 800 to a cfo charge is cfo-refunds', which only bob (cfo) may approve: alice's edit would be her approval of it.
    expect(await consoleEdit(id, { 'edit:amount': '800' })).toBe(400);
    const p = await proposalOf(id);
    expect(p).toMatchObject({ status: 'pending', approvals: [], action: { parameters: { amount: 300 } } });
    expect(p.revision ?? null).toBeNull();
  });

  it('a second, different edit sent against the version the first was made on is refused, not answered "already recorded"', async () => {
    const id = await refund('ch_double', 400);
    expect(await consoleEdit(id, { 'edit:amount': '300' }, 1)).toBe(200);
    // The same form sent again with another amount (a double submit, a second tab): 300 is what was approved.
    expect(await consoleEdit(id, { 'edit:amount': '200' }, 1)).toBe(409);
    expect(await consoleEdit(id, { 'edit:amount': '300' }, 1)).toBe(200);
    expect((await proposalOf(id)).action.parameters.amount).toBe(300);
  });

  it('a retry (same idempotency key, or the same signed request again) whose sum with its own original is over a deny rule returns the original', async () => {
    const body = { idempotency_key: `refund-sum-${Date.now()}`, intent: 'Refund 600', action: { tool: 'payments', operation: 'refund', target: 'ch_retry', parameters: { charge_id: 'ch_retry', amount: 600, currency: 'EUR' } } };
    const first = await app.billing.propose(body);
    expect([first.status, first.body.status]).toEqual([201, 'pending']);
    const retry = await app.billing.propose(body);
    expect([retry.status, retry.body.id]).toEqual([200, first.body.id]);
    const { idempotency_key: _k, ...plain } = body;
    const raw = JSON.stringify({ ...plain, intent: 'Refund 600 (no key)', action: { ...plain.action, target: 'ch_retry2', parameters: { ...plain.action.parameters, charge_id: 'ch_retry2' } } });
    const now = Date.now();
    const once = await app.billing.request('POST', '/v1/proposals', undefined, { raw, now });
    const replayed = await app.billing.request('POST', '/v1/proposals', undefined, { raw, now });
    expect([once.status, replayed.status, replayed.body.id]).toEqual([201, 200, once.body.id]);
  });

  it("an agent's retry with its idempotency key after an approver edited the proposal returns that proposal, not a 409", async () => {
    const body = {
      idempotency_key: `refund-idem-${Date.now()}`,
      intent: 'Refund the double charge',
      action: { tool: 'payments', operation: 'refund', target: 'ch_idem', parameters: { charge_id: 'ch_idem', amount: 300, currency: 'EUR' } },
    };
    const first = await app.billing.propose(body);
    expect(first.status).toBe(201);
    expect(await consoleEdit(first.body.id, { 'edit:amount': '250' })).toBe(200);
    const retry = await app.billing.propose(body);
    expect([retry.status, retry.body.id]).toEqual([200, first.body.id]);
  });

  it('a number typed with a decimal comma ("1,5") or a misplaced group ("1,00") is refused, not read as 15 or 100', async () => {
    const id = await refund('ch_comma', 400);
    for (const typed of ['1,5', '1,00', '12,34.5', '1.000,50']) expect(await consoleEdit(id, { 'edit:amount': typed })).toBe(400);
    expect((await proposalOf(id)).action.parameters.amount).toBe(400);
    expect(await consoleEdit(id, { 'edit:amount': '1,000.50' })).toBe(200);
    expect((await proposalOf(id)).action.parameters.amount).toBe(1000.5);
  });
});

describe('per-agent limits under attack', () => {
  it("a proposal decided by a replica from before the limits (its commit leaves the agent's pending set alone) stops counting when the agent reaches its limit", async () => {
    const pay = (charge: string) => ({ intent: `Refund ${charge}`, action: { tool: 'payments', operation: 'refund', target: charge, parameters: { charge_id: charge, amount: 5, currency: 'EUR' } } });
    const first = await app.ops.propose(pay('ops_1'));
    expect((await app.ops.propose(pay('ops_2'))).status).toBe(201);
    // An old replica denies ops_1: the proposal's own hash and the global pending set, nothing else.
    const redis = createRedisConnection({ url: inject('redisUrl')!, role: 'worker' });
    try {
      const keys = redisKeys(app.prefix);
      const doc = JSON.parse((await redis.hget(keys.proposal(first.body.id), 'doc'))!);
      const denied = { ...doc, status: 'denied', version: doc.version + 1, resolution: { status: 'denied', by: 'bob', reason: null, at: Date.now() } };
      await redis.multi().hset(keys.proposal(first.body.id), 'doc', JSON.stringify(denied), 'version', String(denied.version), 'status', 'denied').zrem(keys.pending, first.body.id).exec();
    } finally {
      redis.disconnect();
    }
    expect((await app.ops.propose(pay('ops_3'))).status).toBe(201);
    expect((await app.ops.propose(pay('ops_4'))).status).toBe(429);
  });
});
