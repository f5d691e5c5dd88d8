import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateTaskResultSchema } from '@modelcontextprotocol/sdk/experimental/tasks/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gatewayClient, gatewayEnv, gatewayPolicy, MCP_KEYS, tempCallLog, textOf } from '../helpers/mcp-gateway.ts';
import { startHttpUpstream, type HttpUpstream } from '../helpers/mcp-upstream.ts';

// Approval fatigue through the MCP gateway (call-tool.ts goes through the same intake as the
// agent API): refunds split under big-refunds-never are refused on their sum, and an agent over
// its limit gets an error result that says which limit and when to retry.

let upstream: HttpUpstream;
let app: TestApp;
let agent: Client;
let other: Client;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  const policy = gatewayPolicy({ httpUpstreamUrl: upstream.url, callLog: tempCallLog() }).replace('    mcp-agent: { proposals_per_minute: 1000, pending: 1000 }\n', '    mcp-agent: { proposals_per_minute: 1000, pending: 1000 }\n    other-agent: { proposals_per_minute: 1 }\n');
  app = await startTestApp({ policy, env: gatewayEnv({ MCP_HOLD: '20s' }) });
  agent = await gatewayClient(app.url, MCP_KEYS.agent, { tasks: true });
  other = await gatewayClient(app.url, MCP_KEYS.other, { tasks: true });
  await agent.listTools();
  await other.listTools();
});
afterAll(async () => {
  await agent?.close();
  await other?.close();
  await upstream?.close();
});

describe('approval fatigue in the MCP gateway', () => {
  it('refuses the second of two refunds to one charge whose sum is over the limit of a deny rule', async () => {
    const first = await agent.request({ method: 'tools/call', params: { name: 'payments__refund', arguments: { charge_id: 'ch_split', amount: 600, currency: 'EUR' }, task: { ttl: 60_000 } } }, CreateTaskResultSchema);
    const firstId = first.task.taskId;
    // Not the same arguments: a repeat of the first call attaches to it (fatigue-attacks.redis.test.ts).
    const second = await agent.callTool({ name: 'payments__refund', arguments: { charge_id: 'ch_split', amount: 601, currency: 'EUR' } });
    expect(second.isError).toBe(true);
    expect(textOf(second)).toMatch(/the total is 1,201 EUR: rule "big-refunds-never" applies/);
    const events = (await app.admin<{ events: any[] }>('/v1/audit?limit=50&agent=mcp-agent')).body.events.filter((e) => e.type === 'policy_decided' && e.data.rule === 'big-refunds-never');
    expect(events).toHaveLength(1);
    expect(events[0].data.aggregate).toMatchObject({ total: 1_201, count: 1, proposals: [firstId], currency: 'EUR' });
    expect(upstream.calls.filter((c) => c.tool === 'refund')).toHaveLength(0);
  });

  it('answers a call over the agent’s limit with an error result naming the limit and the wait', async () => {
    // The first, as a task (answered at once, waits for people); the second is one too many.
    const first = await other.request({ method: 'tools/call', params: { name: 'payments__refund', arguments: { charge_id: 'other_a', amount: 1 }, task: { ttl: 60_000 } } }, CreateTaskResultSchema);
    expect(first.task.taskId).toMatch(/^p_/);
    const refused = await other.callTool({ name: 'payments__refund', arguments: { charge_id: 'other_b', amount: 0 } });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/^agent other-agent sent more than 1 proposals needing people in a minute \(limits\.proposals_per_minute\): nothing was proposed; try again in \d+s$/);
  });
});
