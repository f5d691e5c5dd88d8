import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { CountersignClient } from '../../src/client/index.ts';
import { DEMO_PROPOSALS, runDemo } from '../../src/cli/agent-commands.ts';
import { Flags } from '../../src/cli/io.ts';
import { start } from '../../src/main.ts';
import { until } from '../helpers/observe.ts';

// `npm start` with nothing configured: the built-in example policy, the demo agent's secret
// printed, a one-time console link for "demo" that signs in once, and the demo proposals
// filling the console with cards of each risk; then `npm run demo`'s tool calls through the
// MCP gateway to the example's demo MCP server (examples/mcp-demo-server.mjs, over stdio).

function startZeroConfig() {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-zero-'));
  const lines: string[] = [];
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  const env = { PORT: '0', COUNTERSIGN_DATA_DIR: dir, REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: prefix, LOG_LEVEL: 'silent' };
  return { dir, lines, running: start(env, { say: (l) => lines.push(l) }) };
}

describe('zero-config start', () => {
  it('prints the demo secret and a working one-time sign-in link', async () => {
    const zero = startZeroConfig();
    const { dir, lines } = zero;
    const running = await zero.running;
    try {
      const text = lines.join('\n');
      const secret = readFileSync(join(dir, 'demo-agent-secret'), 'utf8').trim();
      expect(text).toContain(`demo agent secret: ${secret}`);
      const link = /one-time link, valid 15 minutes\): (\S+)/.exec(text)?.[1] ?? '';
      expect(link.startsWith(`${running.url}/console/login/once?token=`)).toBe(true);

      const demo = new CountersignClient({ url: running.url, agent: 'demo-agent', secret });
      const results = [];
      for (const { body } of DEMO_PROPOSALS) results.push(await demo.propose(body));
      expect(results.map((r) => `${r.status}/${r.decision.risk}`)).toEqual([
        'pending/high',
        'pending/critical',
        'pending/medium',
        'pending/critical',
        'approved/low',
        'rejected/medium',
      ]);

      const signIn = await fetch(link, { redirect: 'manual' });
      expect(signIn.status).toBe(303);
      const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
      const page = await (await fetch(`${running.url}/console`, { headers: { cookie } })).text();
      expect(page).toContain('signed in as <b>demo</b>');
      expect(page.match(/<article class="card /g)?.length).toBe(4);
      for (const risk of ['high', 'critical', 'medium']) expect(page).toContain(`risk-${risk}`);
      expect((await fetch(link, { redirect: 'manual' })).status).toBe(401);
    } finally {
      await running.stop();
    }
  });

  it("npm run demo's tool calls: a read answered by the demo server, a refund left to people, a delete refused; once approved, the next run gets the refund", async () => {
    const zero = startZeroConfig();
    const running = await zero.running;
    try {
      // `npm run demo` itself, in this process: the secret and MCP key from the data dir as `npm start` left them.
      const demo = async () => {
        const out: string[] = [];
        const code = await runDemo(new Flags([], ['url', 'agent', 'secret-file']), { COUNTERSIGN_URL: running.url, COUNTERSIGN_DATA_DIR: zero.dir }, { out: (l) => out.push(l), err: () => undefined });
        expect(code).toBe(0);
        return out.join('\n');
      };
      const first = await demo();
      // The policy's default reason is not printed after the rule it only repeats; a rule's own reason is.
      expect(first).toMatch(/ 5\. a tag \(allowed by policy\): p_\w+ approved by the policy \(rule reversible-internal-tagging\)\n/);
      expect(first).toContain('rejected by the policy (rule never-drop-production-databases: Dropping production databases is never delegated to agents)');
      // The read ran at once, through countersign, in the demo server (which answers nothing without its injected token).
      expect(first).toContain(' 7. MCP billing__list_invoices (a read, allowed by policy): answered at once through countersign:');
      expect(first).toContain('      INV-4711  Dana Whitfield (cus_Q8f2LmA91)  420.00 EUR  paid  charged twice on 3 March');
      expect(first).not.toContain('DEMO_PAYMENTS_TOKEN');

      const refundId = / 8\. MCP billing__refund \(needs a person\): (p_\w+) awaiting approval until \S+: approve or deny it in the console/.exec(first)?.[1] ?? '';
      expect(await running.deps.store.get(refundId)).toMatchObject({
        status: 'pending',
        agent: 'demo-agent',
        intent: expect.stringContaining('INV-4712 duplicates INV-4711'),
        action: { tool: 'billing', operation: 'refund', target: 'INV-4712', parameters: { invoice: 'INV-4712', amount: 420, currency: 'EUR' } },
        context: { destination: 'external', reversible: false, value: { amount: 420, currency: 'EUR' } },
        decision: { effect: 'approve', rule: 'payments', risk: 'high' },
      });

      const deleteId = / 9\. MCP billing__delete_customer \(refused by policy\): denied by policy \(rule never-delete-customers\): Deleting customers is never delegated to agents \(proposal (p_\w+)\)/.exec(first)?.[1] ?? '';
      expect(await running.deps.store.get(deleteId)).toMatchObject({ status: 'rejected', action: { operation: 'delete_customer', target: 'cus_Q8f2LmA91' } });

      expect(first).toContain(`claude mcp add --transport http countersign ${running.url}/mcp --header "Authorization: Bearer $(cat ${join(zero.dir, 'demo-mcp-key')})"`);
      expect(first).toContain(`5 card(s) are waiting in the console: ${running.url}/console`);

      // Approved in the console: the execute worker runs the refund; the next run picks up its result.
      const link = /one-time link, valid 15 minutes\): (\S+)/.exec(zero.lines.join('\n'))?.[1] ?? '';
      const signIn = await fetch(link, { redirect: 'manual' });
      const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
      const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await (await fetch(`${running.url}/console`, { headers: { cookie } })).text())?.[1] ?? '';
      const vote = await fetch(`${running.url}/console/proposals/${refundId}/decide`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: running.url, cookie, accept: 'application/json', 'x-csrf-token': csrf },
        body: new URLSearchParams({ csrf, vote: 'approve', reason: '' }).toString(),
      });
      expect(vote.status).toBe(200);
      await until(() => running.deps.store.get(refundId), (p) => p?.status === 'succeeded');

      const second = await demo();
      expect(second).toContain(` 8. MCP billing__refund (needs a person): ${refundId} completed: refunded 420.00 EUR on INV-4712 to Dana Whitfield`);
      expect(second).toContain('      INV-4712  Dana Whitfield (cus_Q8f2LmA91)  420.00 EUR  paid, 420.00 EUR refunded  the duplicate charge');
    } finally {
      await running.stop();
    }
  });
});
