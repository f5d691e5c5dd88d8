import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { signInWithKey } from '../helpers/console.ts';
import { waitFor } from '../helpers/fake-slack.ts';
import { CONSOLE_KEY, gatewayClient, gatewayEnv, gatewayPolicy, MCP_KEYS, tempCallLog, textOf } from '../helpers/mcp-gateway.ts';
import { startHttpUpstream, type HttpUpstream } from '../helpers/mcp-upstream.ts';

// Approve with edits through the MCP gateway: the approver's revision is what the upstream
// receives (the execute worker checks the token's digest against exactly these arguments),
// the context is read again from the revised arguments, and the agent's answer says what changed.

const EDITABLE_REFUNDS = `  - name: refunds
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
  app = await startTestApp({ policy: gatewayPolicy({ httpUpstreamUrl: upstream.url, callLog: tempCallLog() }).replace('default:', EDITABLE_REFUNDS), env: gatewayEnv({ MCP_HOLD: '1s' }) });
  agent = await gatewayClient(app.url, MCP_KEYS.agent);
});
afterAll(async () => {
  await agent?.close();
  await upstream?.close();
});

const proposalIdIn = (text: string) => /proposal (p_[A-Za-z0-9]+)/.exec(text)?.[1];
const proposalOf = async (id: string) => (await app.admin(`/v1/proposals/${id}`)).body;

/** alice edits in the console: the version from the card's own form, as a browser would post it. */
async function consoleEdit(id: string, fields: Record<string, string>): Promise<Response> {
  const { cookie, csrf } = await signInWithKey(app.url, 'alice', CONSOLE_KEY);
  const page = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie } })).text();
  const version = /name="version" value="(\d+)"/.exec(page)?.[1] ?? '';
  return fetch(`${app.url}/console/proposals/${id}/edit`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.url, cookie, accept: 'application/json' },
    body: new URLSearchParams({ csrf, version, ...fields }).toString(),
  });
}

describe('approve with edits through the MCP gateway', () => {
  it('runs exactly the revised arguments, reads the value from them, and tells the agent "approved with edits"', async () => {
    const args = { charge_id: 'ch_edit', amount: 400, currency: 'EUR' };
    const first = await agent.callTool({ name: 'payments__refund', arguments: { ...args, reason: 'customer asked' } });
    expect(textOf(first)).toMatch(/awaiting approval/);
    const id = proposalIdIn(textOf(first))!;

    expect((await consoleEdit(id, { 'edit:amount': '300' })).status).toBe(200);
    await waitFor(async () => (await proposalOf(id)).status === 'succeeded', { what: 'the edited call to run' });
    expect(upstream.calls.filter((c) => c.args['charge_id'] === 'ch_edit').map((c) => c.args)).toEqual([{ ...args, amount: 300 }]);
    const p = await proposalOf(id);
    expect(p.context.value).toEqual({ amount: 300, currency: 'EUR' });
    expect(p.proposed_action.parameters).toEqual(args);

    // The agent's call again, with the arguments it sent: it picks up the result, and is told of the edit first.
    const picked = await agent.callTool({ name: 'payments__refund', arguments: args });
    expect(textOf(picked)).toContain('approved with edits: amount 400 → 300');
    expect(textOf(picked)).toContain('refunded 300 on ch_edit');
  });

  it('an edit the policy denies (over 1000) ends the proposal denied with the reason, and nothing is sent', async () => {
    const args = { charge_id: 'ch_edit_up', amount: 400, currency: 'EUR' };
    const first = await agent.callTool({ name: 'payments__refund', arguments: args });
    const id = proposalIdIn(textOf(first))!;
    expect((await consoleEdit(id, { 'edit:amount': '5000' })).status).toBe(200);
    const p = await proposalOf(id);
    expect(p).toMatchObject({ status: 'denied', resolution: { by: 'policy', reason: expect.stringContaining('refunds over 1000 are done by finance themselves') } });
    const answer = await agent.callTool({ name: 'payments__refund', arguments: args });
    expect(textOf(answer)).toContain('edited by alice: amount 400 → 5000; the policy denies the edited call');
    expect(upstream.calls.some((c) => c.args['charge_id'] === 'ch_edit_up')).toBe(false);
  });
});
