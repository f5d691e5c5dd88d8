import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { signInWithKey } from '../helpers/console.ts';
import { waitFor } from '../helpers/fake-slack.ts';
import { CONSOLE_KEY, gatewayClient, gatewayEnv, gatewayPolicy, MCP_KEYS, tempCallLog, textOf } from '../helpers/mcp-gateway.ts';
import { startHttpUpstream, type HttpUpstream } from '../helpers/mcp-upstream.ts';

// The MCP gateway when people take longer than the agent's call: a short MCP_HOLD (1s), so a
// call answers "awaiting approval", an identical call attaches, and the result is picked up
// by calling again; the Tasks extension; expiry; an approved call whose upstream dies mid-call.

let upstream: HttpUpstream;
let app: TestApp;
let agent: Client;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  app = await startTestApp({ policy: gatewayPolicy({ httpUpstreamUrl: upstream.url, callLog: tempCallLog() }), env: gatewayEnv({ MCP_HOLD: '1s' }) });
  agent = await gatewayClient(app.url, MCP_KEYS.agent);
});
afterAll(async () => {
  await agent?.close();
  await upstream?.close();
});

const upstreamCalls = (tool: string, target: string) => upstream.calls.filter((c) => c.tool === tool && c.args['charge_id'] === target);
const proposalIdIn = (text: string) => /proposal (p_[A-Za-z0-9]+)/.exec(text)?.[1];

async function receivedFor(target: string): Promise<string[]> {
  const page = await app.admin(`/v1/audit?q=proposal_received+${target}&limit=100`);
  return page.body.events.filter((e: any) => e.type === 'proposal_received').map((e: any) => e.proposal_id);
}

async function consoleVote(id: string, vote: 'approve' | 'deny', reason = ''): Promise<void> {
  const { cookie, csrf } = await signInWithKey(app.url, 'alice', CONSOLE_KEY);
  const res = await fetch(`${app.url}/console/proposals/${id}/decide`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.url, cookie, accept: 'application/json', 'x-csrf-token': csrf },
    body: new URLSearchParams({ csrf, vote, reason }).toString(),
  });
  expect(res.status).toBeLessThan(400);
}

const statusOf = async (id: string) => (await app.admin(`/v1/proposals/${id}`)).body.status as string;

describe('a call held past MCP_HOLD', () => {
  it('answers "awaiting approval", attaches an identical call, and hands the result to the next call once', async () => {
    const args = { charge_id: 'ch_attach', amount: 12, currency: 'EUR' };
    const first = await agent.callTool({ name: 'payments__refund', arguments: { ...args, reason: 'first try' } });
    expect(first.isError).toBe(true);
    expect(textOf(first)).toMatch(/awaiting approval \(proposal p_\w+, expires .+\): call again with the same arguments to continue/);
    const id = proposalIdIn(textOf(first))!;
    // The same call again, arguments in another order and another reason: the same proposal.
    const second = await agent.callTool({ name: 'payments__refund', arguments: { currency: 'EUR', amount: 12, charge_id: 'ch_attach', reason: 'asking again' } });
    expect(proposalIdIn(textOf(second))).toBe(id);
    // Different arguments: a proposal of their own.
    const other = await agent.callTool({ name: 'payments__refund', arguments: { ...args, amount: 13 } });
    expect(proposalIdIn(textOf(other))).not.toBe(id);
    expect(await receivedFor('ch_attach')).toHaveLength(2);

    await consoleVote(id, 'approve');
    await waitFor(async () => (await statusOf(id)) === 'succeeded', { what: 'the approved call to run' });
    expect(upstreamCalls('refund', 'ch_attach').map((c) => c.args)).toEqual([args]);

    const picked = await agent.callTool({ name: 'payments__refund', arguments: args });
    expect(picked.isError).toBeFalsy();
    expect(textOf(picked)).toBe('refunded 12 on ch_attach');
    // Given once: the same call now is a new proposal, and nothing ran twice.
    const again = await agent.callTool({ name: 'payments__refund', arguments: args });
    expect(textOf(again)).toMatch(/awaiting approval/);
    expect(proposalIdIn(textOf(again))).not.toBe(id);
    expect(upstreamCalls('refund', 'ch_attach')).toHaveLength(1);
  });

  it('tells the agent when the proposal expired, and never calls the upstream', async () => {
    const args = { charge_id: 'quick_expire', amount: 3 };
    let text = '';
    // Each call holds for up to 1s; the proposal's ttl is 1s.
    await waitFor(
      async () => {
        text = textOf(await agent.callTool({ name: 'payments__refund', arguments: args }));
        return /expired/.test(text);
      },
      { what: 'the expiry', timeoutMs: 15_000 },
    );
    expect(text).toMatch(/expired: nobody decided before the deadline/);
    expect(upstreamCalls('refund', 'quick_expire')).toHaveLength(0);
  });
});

describe('the Tasks extension', () => {
  it('returns a task at once, reports it working while people decide, and its result once approved', async () => {
    const client = await gatewayClient(app.url, MCP_KEYS.agent, { tasks: true });
    await client.listTools(); // the client learns which tools take tasks
    const seen: string[] = [];
    let taskId = '';
    let result: any = null;
    const stream = client.experimental.tasks.callToolStream({ name: 'payments__refund', arguments: { charge_id: 'ch_task', amount: 7, reason: 'as a task' } }, CallToolResultSchema, { task: { ttl: 60_000 } });
    for await (const message of stream) {
      if (message.type === 'taskCreated') {
        taskId = message.task.taskId;
        seen.push(message.task.status);
        expect(await statusOf(taskId)).toBe('pending');
        const task = await client.experimental.tasks.getTask(taskId);
        expect(task).toMatchObject({ taskId, status: 'working' });
        expect(task.statusMessage).toMatch(/awaiting approval/);
        await consoleVote(taskId, 'approve');
      } else if (message.type === 'taskStatus') seen.push(message.task.status);
      else if (message.type === 'result') result = message.result;
      else throw message.error;
    }
    expect(seen[0]).toBe('working');
    expect(textOf(result)).toBe('refunded 7 on ch_task');
    expect(upstreamCalls('refund', 'ch_task')).toHaveLength(1);
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('completed');
    await client.close();
  });

  it("cannot be read by another agent, and a denied task fails with the person's reason", async () => {
    const client = await gatewayClient(app.url, MCP_KEYS.agent, { tasks: true });
    await client.listTools();
    const created = await client.request({ method: 'tools/call', params: { name: 'payments__refund', arguments: { charge_id: 'ch_task_deny', amount: 2 }, task: { ttl: 60_000 } } }, (await import('@modelcontextprotocol/sdk/experimental/tasks/types.js')).CreateTaskResultSchema);
    const taskId = created.task.taskId;
    const other = await gatewayClient(app.url, MCP_KEYS.other, { tasks: true });
    await expect(other.experimental.tasks.getTask(taskId)).rejects.toThrow(/Task not found/);
    await other.close();
    await consoleVote(taskId, 'deny', 'wrong customer');
    const result = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/denied by .*wrong customer/);
    expect((await client.experimental.tasks.getTask(taskId)).status).toBe('failed');
    expect(upstreamCalls('refund', 'ch_task_deny')).toHaveLength(0);
    await client.close();
  });

  it('can be cancelled by its agent while it waits', async () => {
    const client = await gatewayClient(app.url, MCP_KEYS.agent, { tasks: true });
    await client.listTools();
    const { CreateTaskResultSchema } = await import('@modelcontextprotocol/sdk/experimental/tasks/types.js');
    const created = await client.request({ method: 'tools/call', params: { name: 'payments__refund', arguments: { charge_id: 'ch_task_cancel', amount: 2 }, task: {} } }, CreateTaskResultSchema);
    const cancelled = await client.experimental.tasks.cancelTask(created.task.taskId);
    expect(cancelled.status).toBe('cancelled');
    expect(await statusOf(created.task.taskId)).toBe('cancelled');
    await client.close();
  });
});

describe('an approved call whose upstream dies mid-call', () => {
  it('ends failed / unknown, threaded as unknown, and is never sent a second time', async () => {
    const first = await agent.callTool({ name: 'payments__crash', arguments: { charge_id: 'needs-people' } });
    const id = proposalIdIn(textOf(first))!;
    expect(id).toBeDefined();
    const before = upstream.calls.filter((c) => c.tool === 'crash').length;
    await consoleVote(id, 'approve');
    await waitFor(async () => (await statusOf(id)) === 'failed', { what: 'the crashed call to end' });
    const p = (await app.admin(`/v1/proposals/${id}`)).body;
    expect(p.execution).toMatchObject({ mode: 'executor', outcome: 'unknown' });
    const answer = await agent.callTool({ name: 'payments__crash', arguments: { charge_id: 'needs-people' } });
    expect(answer.isError).toBe(true);
    expect(textOf(answer)).toMatch(/outcome unknown/);
    expect(upstream.calls.filter((c) => c.tool === 'crash').length).toBe(before + 1);
  });
});
