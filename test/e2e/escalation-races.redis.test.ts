import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../../adapters/bullmq/queues.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import type { NotifyJob } from '../../src/core/ports.ts';
import { proposalBody, type TestAgent } from '../helpers/agent.ts';
import { restartTestApp, startTestApp, type TestApp } from '../helpers/app.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';

// Escalation and reminders under races and half-finished work (issue 17): a reminder whose reply
// lands after the decision, and a kill switch that stopped after marking the agent revoked. Real
// app, real Redis, the fake Slack Web API, signed clicks.

const SECRET = 'slack-signing-secret-escalation-races';

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
  - name: reminding
    when: action.operation == "remind"
    effect: approve
    route: finance
    approvers: finance
    ttl: 20s
    remind: 2s
  - name: stepping
    when: action.operation == "step"
    effect: approve
    route: finance
    approvers: finance
    ttl: 3s
    remind: 1s
    escalate:
      - { after: 2s, route: oncall, approvers: oncall }
  - name: calling
    when: action.operation == "call"
    effect: approve
    route: finance
    approvers: finance
    ttl: 20s
    remind: 1s
  - name: leaving
    when: action.operation == "leave"
    effect: approve
    route: finance
    approvers: finance
    ttl: 6s
    escalate:
      - { after: 3s, route: oncall, approvers: oncall }
  - name: failing
    when: action.operation == "fail"
    effect: approve
    route: finance
    approvers: finance
    ttl: 20s
    escalate:
      - { after: 1s, route: oncall, approvers: oncall }
default: { effect: deny }
`;

// The policy after a change: the oncall channel and group are gone (and the steps naming them).
const WITHOUT_ONCALL = POLICY.replace('  oncall: [carol]\n', '')
  .replace('  oncall: { slack: C0ONCALL }\n', '')
  .replace(/    escalate:\n      - \{ after: \d+s, route: oncall, approvers: oncall \}\n/g, '');
const slackEnv = () => ({ SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl });

let fake: FakeSlack;
let app: TestApp;
let notifyQueue: Queue<NotifyJob>;

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({
    policy: POLICY,
    env: slackEnv(),
    start: { tuning: { notifyBackoffMs: 50 } },
  });
  notifyQueue = new Queue<NotifyJob>(QUEUE_NAMES.notify, { connection: app.running.redis as never, prefix: redisKeys(app.prefix).bull });
});
afterAll(async () => {
  await notifyQueue.close();
  await fake.close();
});

async function propose(agent: TestAgent, operation: string): Promise<string> {
  const res = await agent.propose(
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
const repliesTo = (card: SlackCall) => fake.callsTo('chat.postMessage').filter((c) => c.ok && c.args['thread_ts'] === card.ts);
const isReminder = (c: SlackCall) => String(c.args['text']).includes('Still waiting');

async function events(type: string, id: string): Promise<any[]> {
  return (await app.admin(`/v1/audit?q=${type}+${id}`)).body.events.filter((e: any) => e.type === type && e.proposal_id === id);
}
const statusOf = async (agent: TestAgent, id: string) => (await agent.request('GET', `/v1/proposals/${id}`)).body;

describe('escalation races', () => {
  it.concurrent('a reminder whose reply is retried after the proposal was approved is not posted ("Still waiting" under "Approved by")', async () => {
    const id = await propose(app.billing, 'remind');
    const card = await cardIn(id, 'C0FINANCE');
    // The first reminder (due at 2 s) fails once; before Slack answers, alice approves.
    fake.failNext(
      'chat.postMessage',
      1,
      { status: 503 },
      (args) => args['thread_ts'] === card.ts && String(args['text']).includes('Still waiting'),
      async () => {
        const click = blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts!, channel: 'C0FINANCE' });
        await postToSlackEndpoint(app.url, SECRET, payloadBody(click));
        await waitFor(async () => (await statusOf(app.billing, id)).status === 'approved', { what: 'approved' });
      },
    );
    await waitFor(() => repliesTo(card).find((r) => String(r.args['text']).includes('Approved by alice')), { what: 'decided reply' });
    // The failed reminder reply's job has had its retry (whatever that retry did).
    await waitFor(
      async () => {
        const jobs = await notifyQueue.getJobs(['completed', 'failed']);
        const job = jobs.find((j) => j.data.kind === 'reply' && j.data.proposal_id === id && String(j.data.reply.text).includes('Still waiting'));
        return job !== undefined && job.attemptsMade >= 1 && (job.finishedOn ?? 0) > 0;
      },
      { what: 'the reminder reply job finished' },
    );
    const thread = repliesTo(card);
    const decided = thread.findIndex((r) => String(r.args['text']).includes('Approved by alice'));
    expect(thread.slice(decided + 1).filter(isReminder)).toEqual([]);
  });

  it.concurrent('a pending proposal of an agent whose revocation stopped midway is neither escalated nor reminded (nobody may decide on it)', async () => {
    const id = await propose(app.ops, 'step');
    // The kill switch marked the agent revoked, then its process died before cancelling this proposal.
    await app.running.redis.set(redisKeys(app.prefix).revokedAgent('ops-agent'), String(Date.now()));
    await cardIn(id, 'C0FINANCE');
    await waitFor(async () => (await statusOf(app.ops, id)).status !== 'pending', { what: 'the deadline' });
    expect(await events('escalated', id)).toEqual([]);
    expect(await events('reminded', id)).toEqual([]);
    expect(cardsOf(id, 'C0ONCALL')).toEqual([]);
  });

  it.concurrent('a reminder calls on the delegate of an approver who is away, not on the absent approver', async () => {
    // bob (finance) is away and named carol (not in finance): carol decides in his place.
    await app.running.redis.hset(`{${app.prefix}}:away`, 'bob', JSON.stringify({ delegate: 'carol', until: Date.now() + 3_600_000, set_at: Date.now() }));
    const id = await propose(app.billing, 'call');
    const card = await cardIn(id, 'C0FINANCE');
    const reminder = await waitFor(() => repliesTo(card).find(isReminder), { what: 'reminder' });
    const mentioned = String(reminder.args['text']);
    expect(mentioned).toContain('<@U0CAROL>');
    expect(mentioned).toContain('<@U0ALICE>');
    expect(mentioned).not.toContain('<@U0BOB>');
    // The agent's sponsor (dana, finance) is never called on.
    expect(mentioned).not.toContain('<@U0DANA>');
  });

  it.concurrent('a step whose route and group the policy in force no longer has is taken and says so: in its audit entry and under the cards (nobody was paged)', async () => {
    expect(WITHOUT_ONCALL).not.toContain('oncall');
    const first = await startTestApp({ policy: POLICY, env: slackEnv() });
    const id = await propose(first.billing, 'leave');
    // Restarted with the changed policy before the step (3 s) is due.
    const again = await restartTestApp(first, { policy: WITHOUT_ONCALL, env: slackEnv() });
    const card = await cardIn(id, 'C0FINANCE');
    const escalated = await waitFor(async () => (await again.admin(`/v1/audit?q=escalated+${id}`)).body.events.find((e: any) => e.type === 'escalated' && e.proposal_id === id), { what: 'escalated' });
    expect(escalated.data).toMatchObject({ step: 1, route: 'oncall', approvers: 'oncall', not_in_policy: ['route', 'approvers'] });
    const reply = await waitFor(() => repliesTo(card).find((r) => String(r.args['text']).includes('Escalated')), { what: 'escalation reply' });
    expect(String(reply.args['text'])).toContain('no longer in the policy');
    expect(cardsOf(id, 'C0ONCALL')).toEqual([]);
  });

  it.concurrent("a step's card that cannot be posted is audited as that step's (card_failed names the step and its route), the proposal stays pending", async () => {
    const id = await propose(app.billing, 'fail');
    fake.failNext('chat.postMessage', 1, { error: 'channel_not_found' }, (args) => args['channel'] === 'C0ONCALL' && JSON.stringify(args).includes(id));
    const failed = await waitFor(async () => (await events('card_failed', id))[0], { what: 'card_failed' });
    expect(failed.data).toMatchObject({ platform: 'slack', step: 1, route: 'oncall', permanent: true, retry_later: true });
    expect((await statusOf(app.billing, id)).status).toBe('pending');
  });
});
