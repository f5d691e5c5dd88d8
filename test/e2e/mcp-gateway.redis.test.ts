import { readFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { signInWithKey } from '../helpers/console.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';
import { CONSOLE_KEY, gatewayClient, gatewayEnv, gatewayPolicy, MCP_KEYS, tempCallLog, textOf, UPSTREAM_SECRETS } from '../helpers/mcp-gateway.ts';
import { startHttpUpstream, type HttpUpstream } from '../helpers/mcp-upstream.ts';

// The MCP gateway end to end: the SDK's real Client on countersign's /mcp, real SDK servers as
// upstreams (Streamable HTTP and stdio), real Redis, Slack clicks signed as Slack signs them.

const SLACK_SECRET = 'slack-signing-secret-for-mcp-tests';
let upstream: HttpUpstream;
let slack: FakeSlack;
let app: TestApp;
let callLog: string;
let agent: Client;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  slack = await startFakeSlack();
  callLog = tempCallLog();
  app = await startTestApp({
    policy: gatewayPolicy({ httpUpstreamUrl: upstream.url, callLog, slack: true }),
    env: gatewayEnv({ SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl, MCP_HOLD: '20s' }),
  });
  agent = await gatewayClient(app.url, MCP_KEYS.agent);
});
afterAll(async () => {
  await agent?.close();
  await upstream?.close();
  await slack?.close();
});

const stdioCalls = () =>
  readFileSync(callLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { tool: string; args: Record<string, unknown> });
const upstreamCalls = (tool: string) => upstream.calls.filter((c) => c.tool === tool);

async function proposalOf(predicate: (p: any) => boolean): Promise<any> {
  return waitFor(
    async () => {
      const page = await app.admin(`/v1/audit?q=proposal_received&agent=mcp-agent&limit=100`);
      const e = page.body.events.find((ev: any) => ev.type === 'proposal_received' && predicate(ev.data));
      return e === undefined ? undefined : (await app.admin(`/v1/proposals/${e.proposal_id}`)).body;
    },
    { what: 'the proposal of a tool call' },
  );
}

describe('tools/list', () => {
  it('names every upstream tool <server>__<tool>, adds the optional reason, and shows no credential', async () => {
    const { tools } = await agent.listTools();
    const names = tools.map((t) => t.name);
    for (const name of ['payments__echo', 'payments__refund', 'files__echo', 'files__crash']) expect(names).toContain(name);
    const refund = tools.find((t) => t.name === 'payments__refund')!;
    expect(refund.inputSchema.properties).toMatchObject({ charge_id: { type: 'string' }, amount: { type: 'number' }, reason: { type: 'string' } });
    expect(refund.inputSchema.required ?? []).not.toContain('reason');
    expect((refund.inputSchema.properties as any).reason.description).toMatch(/shown to the people who approve/);
    expect(refund.execution?.taskSupport).toBe('optional');
    const all = JSON.stringify(tools);
    expect(all).not.toContain(UPSTREAM_SECRETS.payments);
    expect(all).not.toContain(UPSTREAM_SECRETS.files);
  });
});

describe('an allowed call', () => {
  it('is forwarded at once with the injected header, which the agent never sees', async () => {
    const before = upstreamCalls('echo').length;
    const result = await agent.callTool({ name: 'payments__echo', arguments: { show_credential: true, note: 'hi', reason: 'checking the upstream' } });
    expect(result.isError).toBeFalsy();
    const seen = upstreamCalls('echo')[before]!;
    expect(seen.headers['authorization']).toBe(`Bearer ${UPSTREAM_SECRETS.payments}`);
    // The reason is the gateway's: never forwarded.
    expect(seen.args).toEqual({ show_credential: true, note: 'hi' });
    const text = textOf(result);
    expect(text).toContain('[redacted]');
    expect(text).not.toContain(UPSTREAM_SECRETS.payments);
    const p = await proposalOf((d) => d.action.operation === 'echo' && d.action.parameters.note === 'hi');
    expect(p).toMatchObject({ status: 'succeeded', intent: 'checking the upstream', action: { tool: 'payments', operation: 'echo', target: 'payments' }, context: { reversible: true, destination: 'internal' } });
    expect(p.execution).toMatchObject({ mode: 'gateway', outcome: 'succeeded' });
    const audit = JSON.stringify((await app.admin(`/v1/audit?proposal_id=${p.id}`)).body);
    expect(audit).not.toContain(UPSTREAM_SECRETS.payments);
    expect(audit).toContain('execution_finished');
  });

  it('reaches a stdio upstream with the injected environment, redacted from the result', async () => {
    const result = await agent.callTool({ name: 'files__echo', arguments: { show_credential: true, path: '/tmp/x' } });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).not.toContain(UPSTREAM_SECRETS.files);
    expect(textOf(result)).toContain('[redacted]');
    const last = stdioCalls().filter((c) => c.tool === 'echo').at(-1)!;
    expect(last.args).toEqual({ show_credential: true, path: '/tmp/x' });
  });

  it('is sent on a new session when the upstream forgot the old one (a restart), once', async () => {
    await agent.callTool({ name: 'payments__echo', arguments: { warm: 'up' } });
    upstream.forgetSessions();
    const result = await agent.callTool({ name: 'payments__echo', arguments: { after: 'restart' } });
    expect(result.isError).toBeFalsy();
    expect(upstream.calls.filter((c) => c.args['after'] === 'restart')).toHaveLength(1);
    expect(upstream.sessions()).toBe(1);
  });

  it("returns the tool's own error as a failed result, and records the proposal failed", async () => {
    const result = await agent.callTool({ name: 'payments__fail', arguments: {} });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('the tool failed');
    const p = await proposalOf((d) => d.action.operation === 'fail');
    expect(p).toMatchObject({ status: 'failed', execution: { outcome: 'failed', reason: 'tool_error' } });
  });

  it('ends failed / unknown when the upstream dies mid-call, and is never sent a second time', async () => {
    const crashesBefore = stdioCalls().filter((c) => c.tool === 'crash').length;
    const result = await agent.callTool({ name: 'files__crash', arguments: { attempt: 'one' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/outcome unknown/);
    const p = await proposalOf((d) => d.action.operation === 'crash' && d.action.parameters.attempt === 'one');
    expect(p).toMatchObject({ status: 'failed', execution: { outcome: 'unknown', mode: 'gateway' } });
    expect(stdioCalls().filter((c) => c.tool === 'crash').length).toBe(crashesBefore + 1);
    // The next call starts the server again.
    const again = await agent.callTool({ name: 'files__echo', arguments: { after: 'crash' } });
    expect(again.isError).toBeFalsy();
  });
});

describe('a denied call', () => {
  it('never reaches the upstream and tells the agent why', async () => {
    const before = upstreamCalls('refund').length;
    const result = await agent.callTool({ name: 'payments__refund', arguments: { charge_id: 'ch_big', amount: 5000, currency: 'EUR' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('refunds over 1000 are done by finance themselves');
    expect(upstreamCalls('refund').length).toBe(before);
    const p = await proposalOf((d) => d.action.target === 'ch_big');
    expect(p).toMatchObject({ status: 'rejected', context: { value: { amount: 5000, currency: 'EUR' }, data_sensitivity: 'confidential', destination: 'external' } });
  });

  it('names the argument when the policy reads a value that is not a number, and stores nothing', async () => {
    const err = await agent.callTool({ name: 'payments__refund', arguments: { charge_id: 'ch_nan', amount: 'lots' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).message).toMatch(/amount must be a number/);
    const page = await app.admin(`/v1/audit?q=ch_nan`);
    expect(page.body.events).toEqual([]);
  });
});

describe('a call that needs people', () => {
  it('is held until a Slack approval, then runs exactly once with the approved arguments', async () => {
    const before = upstreamCalls('refund').length;
    const held = agent.callTool({ name: 'payments__refund', arguments: { charge_id: 'ch_slack', amount: 40, currency: 'EUR', reason: 'customer was charged twice' } });
    const p = await proposalOf((d) => d.action.target === 'ch_slack');
    expect(p).toMatchObject({ status: 'pending', intent: 'customer was charged twice', action: { parameters: { charge_id: 'ch_slack', amount: 40, currency: 'EUR' } } });
    const card = await waitFor(() => slack.callsTo('chat.postMessage').find((c) => JSON.stringify(c.args).includes(p.id)), { what: 'the card' });
    expect(JSON.stringify(card.args)).toContain('customer was charged twice');
    const click = await postToSlackEndpoint(app.url, SLACK_SECRET, payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: p.id, action: 'countersign_approve' })));
    expect(click.status).toBe(200);
    const result = await held;
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('refunded 40 on ch_slack');
    const calls = upstreamCalls('refund').slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args).toEqual({ charge_id: 'ch_slack', amount: 40, currency: 'EUR' });
    expect(calls[0]!.headers['authorization']).toBe(`Bearer ${UPSTREAM_SECRETS.payments}`);
    const done = (await app.admin(`/v1/proposals/${p.id}`)).body;
    expect(done).toMatchObject({ status: 'succeeded', execution: { mode: 'executor', outcome: 'succeeded' } });
    // The outcome is threaded under the card.
    await waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.args['thread_ts'] === card.ts && String(c.args['text']).includes('Succeeded')), { what: 'the outcome in the thread' });
  });

  it('returns the denial of a person as an error, and never calls the upstream', async () => {
    const before = upstreamCalls('refund').length;
    const held = agent.callTool({ name: 'payments__refund', arguments: { charge_id: 'ch_console_deny', amount: 5 } });
    const p = await proposalOf((d) => d.action.target === 'ch_console_deny');
    const { cookie, csrf } = await signInWithKey(app.url, 'alice', CONSOLE_KEY);
    const res = await fetch(`${app.url}/console/proposals/${p.id}/decide`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.url, cookie, accept: 'application/json', 'x-csrf-token': csrf },
      body: new URLSearchParams({ csrf, vote: 'deny', reason: 'not this customer' }).toString(),
    });
    expect(res.status).toBeLessThan(400);
    const result = await held;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/denied by .*not this customer/);
    expect(upstreamCalls('refund').length).toBe(before);
  });
});

describe('the agent key', () => {
  it('wrong or absent: 401, and an auth_failed entry in the audit; no call is made', async () => {
    for (const authorization of [`Bearer ${'x'.repeat(40)}`, null]) {
      const res = await fetch(`${app.url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(authorization === null ? {} : { authorization }) },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'payments__echo', arguments: { probe: 'unauthenticated' } } }),
      });
      expect(res.status).toBe(401);
      expect(JSON.stringify(await res.json())).not.toContain('x'.repeat(40));
    }
    const failures = (await app.admin(`/v1/audit?q=auth_failed&limit=50`)).body.events.filter((e: any) => e.data.via === 'mcp');
    expect(failures.map((e: any) => e.data.reason)).toEqual(expect.arrayContaining(['unknown_mcp_key', 'missing_credentials']));
    expect(upstream.calls.some((c) => c.args['probe'] === 'unauthenticated')).toBe(false);
    // The SDK client gives up at connect.
    await expect(gatewayClient(app.url, 'not-a-key-of-anyone-0123456789')).rejects.toThrow();
  });

  it('of an agent that is revoked: its calls are refused, audited, and nothing runs', async () => {
    const other = await gatewayClient(app.url, MCP_KEYS.other);
    expect((await other.callTool({ name: 'payments__echo', arguments: { who: 'other-before' } })).isError).toBeFalsy();
    const revoke = await fetch(`${app.url}/v1/agents/other-agent/revoke`, { method: 'POST', headers: { authorization: `Bearer test-admin-token-0123456789abcdef`, 'content-type': 'application/json' }, body: '{}' });
    expect(revoke.status).toBe(200);
    const err = await other.callTool({ name: 'payments__echo', arguments: { who: 'other-after' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32003);
    expect((err as McpError).message).toMatch(/revoked/);
    expect(upstream.calls.some((c) => c.args['who'] === 'other-after')).toBe(false);
    const refused = (await app.admin(`/v1/audit?q=proposal_refused&agent=other-agent`)).body.events;
    expect(refused.length).toBeGreaterThan(0);
    await other.close();
  });
});
