import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type ClickSpec, type FakeSlack } from '../helpers/fake-slack.ts';

// Two countersign replicas sharing one Redis (same prefix, both running queue workers),
// as behind a load balancer: one card per proposal, and clicks that reach both replicas
// at once still end in one counted decision.

const SECRET = 'slack-signing-secret-for-replicas';
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }');

let fake: FakeSlack;
let a: TestApp;
let b: TestApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  const slackEnv = { SLACK_BOT_TOKEN: 'xoxb-replicas', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl };
  a = await startTestApp({ policy: POLICY, env: slackEnv });
  b = await startTestApp({
    policy: POLICY,
    env: { ...slackEnv, COUNTERSIGN_PREFIX: a.prefix, AGENT_BILLING_SECRET: a.secrets.billing, AGENT_OPS_SECRET: a.secrets.ops },
  });
});
afterAll(async () => {
  await fake.close();
});

async function proposeWithCard(overrides: Record<string, unknown> = {}): Promise<{ id: string; ts: string }> {
  const res = await a.billing.propose(proposalBody(overrides));
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: 'card' });
  return { id, ts: card.ts! };
}

const clickOn = (app: TestApp, spec: ClickSpec) => postToSlackEndpoint(app.url, SECRET, payloadBody(blockActionsPayload(spec)));

async function events(id: string): Promise<any[]> {
  return (await a.admin(`/v1/audit?q=${id}`)).body.events;
}

describe('two replicas', () => {
  it('post one card per proposal', async () => {
    const { id } = await proposeWithCard();
    await waitFor(async () => (await events(id)).some((e) => e.type === 'card_posted'), { what: 'card_posted' });
    const cards = fake.callsTo('chat.postMessage').filter((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id));
    expect(cards).toHaveLength(1);
  });

  it('count the same click delivered to both once', async () => {
    const { id, ts } = await proposeWithCard({ context: { value: { amount: 50_000, currency: 'EUR' } } }); // 2 approvals
    const spec: ClickSpec = { user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: ts };
    const res = await Promise.all([clickOn(a, spec), clickOn(b, spec), clickOn(a, spec), clickOn(b, spec)]);
    expect(res.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const all = await waitFor(async () => {
      const list = await events(id);
      return list.filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused').length === 4 ? list : null;
    }, { what: 'four clicks handled' });
    expect(all.filter((e) => e.type === 'approval_recorded')).toHaveLength(1);
    expect(all.filter((e) => e.type === 'approval_refused').map((e) => e.data.why)).toEqual(['already_voted', 'already_voted', 'already_voted']);
    expect((await a.billing.request('GET', `/v1/proposals/${id}`)).body.status).toBe('pending');
  });

  it('let two approvers clicking on different replicas decide once', async () => {
    // A customer of its own: summed with this file's other refunds to stripe:cus_123, it would be large-payments (2 approvals).
    const { id } = await proposeWithCard({ action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_two_replicas', parameters: { amount: 420, currency: 'EUR' } } });
    await Promise.all([
      clickOn(a, { user: 'U0ALICE', proposalId: id, action: 'countersign_approve' }),
      clickOn(b, { user: 'U0BOB', proposalId: id, action: 'countersign_approve' }),
    ]);
    const all = await waitFor(async () => {
      const list = await events(id);
      return list.filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused').length === 2 ? list : null;
    }, { what: 'both clicks handled' });
    expect(all.filter((e) => e.type === 'decided')).toHaveLength(1);
    expect(all.filter((e) => e.type === 'approval_recorded')).toHaveLength(1);
    expect((await b.admin(`/v1/proposals/${id}`)).body.status).toBe('approved');
  });
});
