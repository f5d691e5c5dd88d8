import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { restartTestApp, startTestApp, type TestApp } from '../helpers/app.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';

// When nobody answers (issue 17): escalation steps, reminders and on_timeout, on the real app
// (real Redis, real HTTP, signed Slack clicks against the fake Web API). Timing rides on the
// expire sweep (about once a second), so the steps here are seconds apart.

const SECRET = 'slack-signing-secret-escalation';

const POLICY = `
version: 1
agents:
  - id: billing-agent
    sponsors: [dana]
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
  carol: { slack: U0CAROL }
  dana: { slack: U0DANA }
groups:
  finance: [alice, bob, dana]
  oncall: [carol]
channels:
  finance: { slack: C0FINANCE }
  oncall: { slack: C0ONCALL }
rules:
  - name: escalating
    when: action.operation == "escalate"
    effect: approve
    route: finance
    approvers: finance
    approvals: 2
    ttl: 30s
    escalate:
      - { after: 2s, route: oncall, approvers: oncall }
  - name: restarting
    when: action.operation == "restart"
    effect: approve
    route: finance
    approvers: finance
    ttl: 5s
    escalate:
      - { after: 3s, route: oncall, approvers: oncall }
  - name: reminding
    when: action.operation == "remind"
    effect: approve
    route: finance
    approvers: finance
    ttl: 3s
    remind: 1s
    on_timeout: deny
  - name: lapsing
    when: action.operation == "lapse"
    effect: approve
    route: finance
    approvers: finance
    ttl: 1s
    on_timeout: expire
default: { effect: deny }
`;

let fake: FakeSlack;
let app: TestApp;
const env = () => ({ SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl });

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({ policy: POLICY, env: env() });
});
afterAll(async () => {
  await fake.close();
});

async function propose(on: TestApp, operation: string): Promise<string> {
  // No value: nothing for split-transaction aggregation to sum across this file's proposals.
  const res = await on.billing.propose(
    proposalBody({
      action: { tool: 'payments', operation, target: 'stripe:cus_123', parameters: {} },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    }),
  );

  expect(res.status).toBe(201);
  return res.body.id as string;
}

const about = (c: SlackCall, id: string) => JSON.stringify(c.args).includes(id);
const cardsOf = (id: string, channel: string) => fake.callsTo('chat.postMessage').filter((c) => c.ok && c.args['thread_ts'] === undefined && c.args['channel'] === channel && about(c, id));
const cardIn = (id: string, channel: string) => waitFor(() => cardsOf(id, channel)[0], { what: `card of ${id} in ${channel}` });
const repliesTo = (card: SlackCall) => fake.callsTo('chat.postMessage').filter((c) => c.args['thread_ts'] === card.ts);
const click = (user: string, proposalId: string, card: SlackCall) =>
  postToSlackEndpoint(app.url, SECRET, payloadBody(blockActionsPayload({ user, proposalId, action: 'countersign_approve', messageTs: card.ts!, channel: String(card.args['channel']) })));

async function events(on: TestApp, type: string, id: string): Promise<any[]> {
  return (await on.admin(`/v1/audit?q=${type}+${id}`)).body.events.filter((e: any) => e.type === type && e.proposal_id === id);
}

async function statusOf(on: TestApp, id: string): Promise<any> {
  return (await on.billing.request('GET', `/v1/proposals/${id}`)).body;
}

describe('escalation', () => {
  it.concurrent('posts a new card to the step’s route, after which its approvers count besides the first group, and not before', async () => {
    const id = await propose(app, 'escalate');
    const first = await cardIn(id, 'C0FINANCE');
    // Before the step: carol (oncall only) is refused.
    await click('U0CAROL', id, first);
    const refused = await waitFor(async () => (await events(app, 'approval_refused', id))[0], { what: 'refusal' });
    expect(refused.data).toMatchObject({ person: 'carol', why: 'not_an_approver' });
    expect(await events(app, 'escalated', id)).toEqual([]);

    const second = await cardIn(id, 'C0ONCALL');
    const text = JSON.stringify(second.args['blocks']);
    expect(text).toContain('Escalated from finance to oncall after 2s: nobody in finance decided within 2s');
    const [escalated] = await events(app, 'escalated', id);
    expect(escalated).toMatchObject({ actor: 'system', data: { step: 1, route: 'oncall', approvers: 'oncall', after_ms: 2000, from_route: 'finance' } });
    // The first card says where it went, and its thread too.
    await waitFor(() => fake.callsTo('chat.update').some((u) => u.args['ts'] === first.ts && JSON.stringify(u.args['blocks']).includes('Escalated from finance to oncall')), { what: 'first card updated' });
    await waitFor(() => repliesTo(first).some((r) => String(r.args['text']).includes('Escalated from finance to oncall')), { what: 'escalation reply' });

    // Now carol's click on the new card counts, and alice (finance) still decides: 2 of 2.
    await click('U0CAROL', id, second);
    await waitFor(async () => (await statusOf(app, id)).approvals.length === 1, { what: "carol's approval" });
    await click('U0ALICE', id, first);
    await waitFor(async () => (await statusOf(app, id)).status === 'approved', { what: 'approved' });
    expect((await statusOf(app, id)).approvals.map((a: any) => a.person)).toEqual(['carol', 'alice']);
    // The outcome's thread replies go under both cards.
    for (const card of [first, second]) await waitFor(() => repliesTo(card).some((r) => String(r.args['text']).includes('Approved by carol, alice')), { what: 'decided reply' });
    expect(cardsOf(id, 'C0ONCALL')).toHaveLength(1);
  });

  it.concurrent('reminds under the card, calling on the approvers, then on_timeout: deny ends it denied by the policy', async () => {
    const id = await propose(app, 'remind');
    const card = await cardIn(id, 'C0FINANCE');
    const reminder = await waitFor(() => repliesTo(card).find((r) => String(r.args['text']).includes('Still waiting')), { what: 'reminder' });
    expect(String(reminder.args['text'])).toMatch(/Still waiting: 0 of 1 approval, expires in \d s/);
    // The approvers who may still decide are mentioned; the agent's sponsor (dana) is not.
    const mentioned = JSON.stringify(reminder.args['blocks']);
    expect(mentioned).toContain('<@U0ALICE>');
    expect(mentioned).toContain('<@U0BOB>');
    expect(mentioned).not.toContain('<@U0DANA>');
    const ended = await waitFor(async () => {
      const p = await statusOf(app, id);
      return p.status === 'pending' ? null : p;
    }, { what: 'the deadline' });
    expect(ended.status).toBe('denied');
    expect(ended.resolution).toMatchObject({ status: 'denied', by: 'policy', reason: 'nobody decided within 3s (on_timeout: deny)' });
    const reminded = await events(app, 'reminded', id);
    expect(reminded.length).toBeGreaterThanOrEqual(1);
    expect(reminded.length).toBeLessThanOrEqual(2);
    const [decided] = await events(app, 'decided', id);
    expect(decided).toMatchObject({ actor: 'policy', data: { status: 'denied', timed_out: true } });
    await waitFor(() => repliesTo(card).some((r) => String(r.args['text']).includes('Denied by the policy: nobody decided within 3s')), { what: 'denial reply' });
  });

  it.concurrent('on_timeout: expire (the default) expires as before', async () => {
    const id = await propose(app, 'lapse');
    const ended = await waitFor(async () => {
      const p = await statusOf(app, id);
      return p.status === 'pending' ? null : p;
    }, { what: 'the deadline' });
    expect(ended.status).toBe('expired');
    expect(await events(app, 'reminded', id)).toEqual([]);
  });

  it.concurrent('a step due while countersign is down is taken once by the replicas that come back', async () => {
    const first = await startTestApp({ policy: POLICY, env: env() });
    const id = await propose(first, 'restart');
    await cardIn(id, 'C0FINANCE');
    // Stopped before the step is due (3 s); two replicas come back on the same Redis.
    expect(await events(first, 'escalated', id)).toEqual([]);
    const again = await restartTestApp(first, { policy: POLICY, env: env() });
    const other = await startTestApp({ policy: POLICY, env: env(), reuse: { prefix: again.prefix, secrets: again.secrets } });
    await cardIn(id, 'C0ONCALL');
    // Wait for the deadline (5 s): every sweep of both replicas in between had the chance to step again.

    await waitFor(async () => (await statusOf(other, id)).status === 'expired', { what: 'expiry' });
    expect(await events(again, 'escalated', id)).toHaveLength(1);
    expect(cardsOf(id, 'C0ONCALL')).toHaveLength(1);
  });
});
