import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testAgent, type AgentResponse, type TestAgent } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';

// Approval fatigue end to end (policy/fatigue.ts): one agent's flood is refused with 429 past its
// limit, with one notice to the route and a capped audit trail; payments split under a rule's
// threshold are judged on their sum. Real Redis, real HTTP, signed agent requests, fake Slack.

const PAY_SECRET = randomBytes(24).toString('hex');
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }')
  .replace('secops: { console: true }', 'secops: { slack: C0SECOPS }')
  .replace(
    '  - id: ops-agent\n',
    '  - id: pay-agent\n    secret_env: AGENT_PAY_SECRET\n  - id: ops-agent\n',
  )
  .replace(
    'rules:\n',
    `limits:
  agents:
    ops-agent: { proposals_per_minute: 200 }
rules:
  - name: large-refunds
    when: action.tool == "refunds" && context.value.amount > 10000.0
    effect: deny
  - name: refunds
    when: action.tool == "refunds"
    effect: approve
    risk: low
    route: finance
    approvers: finance
    aggregate: false
`,
  );

let fake: FakeSlack;
let app: TestApp;
let pay: TestAgent;

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({ policy: POLICY, env: { SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: 'fatigue-signing-secret', SLACK_API_URL: fake.apiUrl, AGENT_PAY_SECRET: PAY_SECRET } });
  pay = testAgent(app.url, 'pay-agent', PAY_SECRET);
});
afterAll(async () => {
  await fake.close();
});

let made = 0;
/** Needs people (the default rule, route secops), no amount. */
const chore = () => ({ intent: `Update CRM record ${++made}`, action: { tool: 'crm', operation: 'update', target: `customer:${made}`, parameters: {} } });
const payment = (target: string, amount = 9_999, tool = 'payments') => ({
  intent: `Pay supplier invoice ${++made}`,
  action: { tool, operation: 'transfer', target, parameters: { amount, currency: 'EUR' } },
  context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount, currency: 'EUR' } },
});

/** `count` proposals, `concurrency` at a time. */
async function flood(agent: TestAgent, count: number, concurrency: number): Promise<AgentResponse[]> {
  const out: AgentResponse[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        out.push(await agent.propose(chore()));
      }
    }),
  );
  return out;
}

const notices = () => fake.callsTo('chat.postMessage').filter((c) => c.args['blocks'] === undefined && String(c.args['text'] ?? '').includes('is over its limit'));

describe('per-agent limits', () => {
  it("refuses one agent's flood past its limit with 429 and Retry-After, one notice to the route, a capped audit trail and a metric; others go on", async () => {
    const answers = await flood(app.billing, 500, 16);
    const accepted = answers.filter((r) => r.status === 201);
    const refused = answers.filter((r) => r.status === 429);
    expect(accepted).toHaveLength(30);
    expect(refused).toHaveLength(470);
    for (const r of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    }
    expect(refused[0]!.body).toMatchObject({ error: 'rate_limited', limit: 'proposals_per_minute' });
    expect(refused[0]!.body.message).toBe('agent billing-agent sent more than 30 proposals needing people in a minute (limits.proposals_per_minute)');

    const [notice] = await waitFor(() => (notices().length > 0 ? notices() : null), { what: 'the over-the-limit notice' });
    expect(notice!.args['channel']).toBe('C0SECOPS');
    expect(notice!.args['text']).toMatch(/^billing-agent is over its limit of 30 proposals needing people a minute \(limits\.proposals_per_minute\): \d+ refused since \d\d:\d\d UTC\. /);

    const events = (await app.admin<{ events: any[] }>('/v1/audit?limit=500&agent=billing-agent')).body.events.filter((e) => e.type === 'proposal_refused');
    expect(events.length).toBeGreaterThan(0);
    // The refusal limiter's share per agent and minute: the chain does not grow with the flood.
    expect(events.length).toBeLessThanOrEqual(30);
    expect(events[0].data).toMatchObject({ reason: 'rate_limited', limit: 'proposals_per_minute', max: 30, rule: 'default', route: 'secops' });

    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toContain('countersign_proposals_limited_total{agent="billing-agent",limit="proposals_per_minute"} 470');

    // Another agent is not held up; its override lets more through.
    const ops = await flood(app.ops, 60, 8);
    expect(ops.filter((r) => r.status === 201)).toHaveLength(60);
    // Still one notice: at most one per route and agent per window.
    expect(notices()).toHaveLength(1);
    // Allowed and denied proposals are never limited.
    const denied = await app.billing.propose({ intent: `Drop the production database ${++made}`, action: { tool: 'postgres', operation: 'drop', target: 'db', parameters: {} } });
    expect(denied.status).toBe(201);
    expect(denied.body.status).toBe('rejected');
  });
});

describe('split-transaction aggregation', () => {
  it('judges the second of nine 9,999 EUR payments to one target onward on their sum', async () => {
    const decisions: any[] = [];
    for (let i = 0; i < 9; i++) {
      const r = await pay.propose(payment('DE89370400440532013000'));
      expect(r.status).toBe(201);
      decisions.push(r.body.decision);
    }
    expect(decisions[0]).toMatchObject({ rule: 'payments', risk: 'high', approvals_required: 1 });
    expect(decisions[0].aggregate).toBeUndefined();
    for (const d of decisions.slice(1)) expect(d).toMatchObject({ rule: 'large-payments', risk: 'critical', approvals_required: 2 });
    expect(decisions[1].aggregate).toMatchObject({ total: 19_998, count: 1, window_ms: 86_400_000, currency: 'EUR' });
    const last = decisions[8];
    expect(last.aggregate).toMatchObject({ total: 89_991, count: 8 });
    expect(last.reasons[0]).toMatch(/^with 8 earlier proposals of pay-agent to payments DE89370400440532013000 in the last 24h \(p_.*\) the total is 89,991 EUR: rule "large-payments" applies$/);

    // The card says it too.
    const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => JSON.stringify(c.args).includes('the total is 89,991 EUR')), { what: 'the card with the total' });
    expect(card.args['channel']).toBe('C0FINANCE');
  });

  it('stops counting an earlier proposal once it is cancelled; a rule with aggregate: false judges alone', async () => {
    const first = await pay.propose(payment('GB29NWBK60161331926819'));
    expect(first.body.decision.rule).toBe('payments');
    expect((await pay.request('POST', `/v1/proposals/${first.body.id}/cancel`, { reason: 'wrong invoice' })).status).toBe(200);
    const again = await pay.propose(payment('GB29NWBK60161331926819'));
    expect(again.body.decision).toMatchObject({ rule: 'payments', risk: 'high' });

    const refunds = [await pay.propose(payment('cus_9', 9_999, 'refunds')), await pay.propose(payment('cus_9', 9_999, 'refunds'))];
    // Summed, the second would be denied by large-refunds.
    for (const r of refunds) expect(r.body.decision).toMatchObject({ rule: 'refunds', risk: 'low' });
  });

  it('does not let two concurrent payments both be judged alone', async () => {
    const both = await Promise.all([pay.propose(payment('FR7630006000011234567890189')), pay.propose(payment('FR7630006000011234567890189'))]);
    expect(both.map((r) => r.status)).toEqual([201, 201]);
    expect(both.map((r) => r.body.decision.rule).sort()).toEqual(['large-payments', 'payments']);

    // A burst to one target: every racer that lost is decided again, none is refused for it.
    const burst = await Promise.all(Array.from({ length: 8 }, () => pay.propose(payment('NL91ABNA0417164300'))));
    expect(burst.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(burst.filter((r) => r.body.decision.rule === 'payments')).toHaveLength(1);
  });
});
