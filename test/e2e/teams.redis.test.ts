import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start } from '../../src/main.ts';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { cardInvoke, channelMessage, postActivity, startFakeBotConnector, TENANT, type ConnectorCall, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';

// countersign with Teams (and Slack) on, against a fake Bot Connector: binding a channel with
// `connect`, proactive Adaptive Cards each in their own thread, Action.Execute clicks matched by
// AAD object id, one quorum across platforms, updates for everyone and replies in the thread.

const SLACK_SECRET = 'slack-signing-secret-for-tests';
const FINANCE = '19:finance@thread.tacv2';
const SECOPS = '19:secops@thread.tacv2';
const AAD = {
  alice: '00000000-0000-0000-0000-0000000a11ce',
  bob: '00000000-0000-0000-0000-000000000b0b',
  dana: '00000000-0000-0000-0000-00000000da4a',
  erin: '00000000-0000-0000-0000-00000000e41c',
  stranger: '00000000-0000-0000-0000-0000000000ff',
};

function teamsPolicy(serviceUrl: string): string {
  return BASE_POLICY.replace('bob: { slack: U0BOB }', `bob: { slack: U0BOB, teams: ${AAD.bob} }`)
    .replace('dana: { slack: U0DANA }', `dana: { slack: U0DANA, teams: ${AAD.dana} }`)
    .replace('erin: { slack: U0ERIN }', `erin: { slack: U0ERIN, teams: ${AAD.erin} }`)
    .replace('finance: { console: true }', 'finance: { slack: C0FINANCE, teams: finance }')
    .replace('secops: { console: true }', `secops: { teams: { conversation: "${SECOPS}", service_url: "${serviceUrl}", tenant: ${TENANT} } }`);
}

let connector: FakeBotConnector;
let slack: FakeSlack;
let app: TestApp;

beforeAll(async () => {
  connector = await startFakeBotConnector();
  slack = await startFakeSlack();
  app = await startTestApp({
    policy: teamsPolicy(connector.serviceUrl),
    env: { SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl },
  });
});
afterAll(async () => {
  await connector.close();
  await slack.close();
});

const say = (who: keyof typeof AAD, text: string, channel = FINANCE) => postActivity(app.url, channelMessage(connector.serviceUrl, channel, { aad: AAD[who] }, text));
const answersIn = (thread: string) => connector.callsTo('replyToActivity').filter((c) => c.conversation === thread);
const cardJson = (c: ConnectorCall) => c.body?.activity?.attachments?.[0]?.content ?? c.body?.attachments?.[0]?.content;

async function propose(overrides: Record<string, unknown> = {}): Promise<string> {
  const res = await app.billing.propose(proposalBody(overrides));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function teamsCardOf(id: string): Promise<{ call: ConnectorCall; thread: { conversation: string; message: string } }> {
  const call = await waitFor(() => connector.callsTo('createConversation').find((c) => JSON.stringify(c.body).includes(id)), { what: `Teams card of ${id}` });
  return { call, thread: { conversation: call.conversation!, message: call.activityId! } };
}

const click = (who: keyof typeof AAD, thread: { conversation: string; message: string }, verb: 'approve' | 'deny', id: string, extra: Record<string, unknown> = {}) =>
  postActivity(app.url, cardInvoke(connector.serviceUrl, thread, { aad: AAD[who] }, `countersign.${verb}`, { proposal: id, ...extra }));

const threadReplies = (thread: { conversation: string; message: string }) =>
  connector.callsTo('replyToActivity').filter((c) => c.conversation === thread.conversation && c.activityId === thread.message);
const proposal = async (id: string) => (await app.billing.request('GET', `/v1/proposals/${id}`)).body;
const texts = (value: unknown) => JSON.stringify(value);

describe('binding a Teams channel', () => {
  it('refuses connect from a stranger and a non-admin, and audits both', async () => {
    const stranger = await say('stranger', 'connect finance');
    expect(stranger.status).toBe(200);
    const erin = await say('erin', 'connect finance');
    expect(erin.status).toBe(200);
    await waitFor(() => connector.callsTo('replyToActivity').filter((c) => String(c.body?.text).includes('admins')).length === 1, { what: 'admin refusal' });
    const audit = await app.admin('/v1/audit?q=channel_bind_refused');
    expect(audit.body.events.map((e: any) => [e.actor, e.data.why])).toEqual(
      expect.arrayContaining([
        [`teams:${AAD.stranger}`, 'unknown_person'],
        ['person:erin', 'not_an_admin'],
      ]),
    );
  });

  it('an admin binds the channel to a route; countersign answers in the channel and audits it', async () => {
    const res = await say('alice', 'connect finance');
    expect(res.status).toBe(200);
    const answer = await waitFor(() => connector.callsTo('replyToActivity').find((c) => String(c.body?.text).includes('now receives')), { what: 'connect answer' });
    expect(answer.conversation?.startsWith(`${FINANCE};messageid=`)).toBe(true);
    const bound = await app.admin('/v1/audit?q=channel_bound');
    expect(bound.body.events[0]).toMatchObject({ actor: 'person:alice', data: { platform: 'teams', route: 'finance', conversation: FINANCE, tenant: TENANT } });
  });
});

describe('Teams cards and clicks', () => {
  it('posts an Adaptive Card 1.5 with Action.Execute buttons as a new thread of the bound channel', async () => {
    const id = await propose();
    const { call, thread } = await teamsCardOf(id);
    expect(call.body.channelData.channel.id).toBe(FINANCE);
    expect(call.authorization).toBeNull(); // no app id: no token (tests only)
    expect(thread.conversation).toBe(`${FINANCE};messageid=${thread.message}`);
    const card = cardJson(call);
    expect(call.body.activity.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(card.version).toBe('1.5');
    for (const part of ['Refund invoice 4711', 'stripe:cus_123', 'payments · refund', 'high · rule payments', '0 of 1 approval', 'confidential', 'EUR']) expect(texts(card)).toContain(part);
    const input = card.body.find((e: any) => e.type === 'Input.Text');
    expect(input).toMatchObject({ id: 'reason', isRequired: true });
    const actions = card.body.find((e: any) => e.type === 'ActionSet').actions;
    expect(actions.map((a: any) => [a.type, a.verb, a.data.proposal])).toEqual([
      ['Action.Execute', 'countersign.approve', id],
      ['Action.Execute', 'countersign.deny', id],
    ]);
    const posted = await waitFor(async () => (await app.admin(`/v1/audit?q=card_posted+${id}`)).body.events.find((e: any) => e.data.platform === 'teams'), { what: 'card_posted' });
    expect(posted.data).toMatchObject({ conversation: thread.conversation, message: thread.message });
  });

  it('an approver approves: the invoke answers with the refreshed card, everyone gets the update, the thread the replies', async () => {
    const id = await propose();
    const { thread } = await teamsCardOf(id);
    const res = await click('alice', thread, 'approve', id);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ statusCode: 200, type: 'application/vnd.microsoft.card.adaptive' });
    expect(texts(res.json.value)).toContain('Approved by alice');
    expect(texts(res.json.value)).not.toContain('Action.Execute');
    expect((await proposal(id)).status).toBe('approved');
    const update = await waitFor(
      () => connector.callsTo('updateActivity').find((c) => c.conversation === thread.conversation && c.activityId === thread.message && !texts(c.body).includes('Action.Execute')),
      { what: 'card update' },
    );
    // The update may already show the execution that followed the approval.
    expect(texts(update.body)).toMatch(/Approved(?: · executing)? by alice/);
    // Thread replies answer the card itself inside its thread conversation.
    const replies = () => threadReplies(thread).map((c) => String(c.body.text));
    await waitFor(() => replies().some((t) => t.includes('alice approved (1 of 1, via teams)')), { what: 'approval reply' });
    await waitFor(() => replies().some((t) => t.includes('Approved by alice')), { what: 'decided reply' });
  });

  it('refuses a stranger, a sponsor and a non-approver, privately, and audits each', async () => {
    const id = await propose();
    const { thread } = await teamsCardOf(id);
    for (const who of ['stranger', 'dana', 'erin'] as const) {
      const res = await click(who, thread, 'approve', id);
      expect(res.status).toBe(200);
      expect(texts(res.json.value)).toContain('You are not allowed to decide on this proposal');
      expect(texts(res.json.value)).toContain('Action.Execute'); // still pending: the buttons stay
    }
    // A click from another tenant is a stranger even with a known object id.
    const foreign = await postActivity(app.url, cardInvoke(connector.serviceUrl, thread, { aad: AAD.alice, tenant: 'other-tenant' }, 'countersign.approve', { proposal: id }));
    expect(texts(foreign.json.value)).toContain('not allowed');
    expect((await proposal(id)).status).toBe('pending');
    const why = (await app.admin(`/v1/audit?q=approval_refused+${id}`)).body.events.map((e: any) => [e.actor, e.data.why]);
    expect(why).toEqual(expect.arrayContaining([[`teams:${AAD.stranger}`, 'unknown_person'], ['person:dana', 'sponsor'], ['person:erin', 'not_an_approver'], [`teams:${AAD.alice}`, 'unknown_person']]));
  });

  it('a deny needs a reason for high risk; the reason reaches the card and the thread', async () => {
    const id = await propose();
    const { thread } = await teamsCardOf(id);
    const bare = await click('bob', thread, 'deny', id, { reason: '  ' });
    expect(texts(bare.json.value)).toContain('reason');
    expect((await proposal(id)).status).toBe('pending');
    const res = await click('bob', thread, 'deny', id, { reason: 'Duplicate **refund** [see](https://evil.example)' });
    expect(texts(res.json.value)).toContain('Denied by bob');
    expect(texts(res.json.value)).not.toContain('**refund**');
    expect(texts(res.json.value)).not.toContain('](https://');
    expect((await proposal(id)).status).toBe('denied');
    await waitFor(() => threadReplies(thread).some((c) => String(c.body.text).includes('bob denied')), { what: 'denial reply' });
  });

  it('a re-delivered invoke counts once', async () => {
    const id = await propose({ context: { value: { amount: 50_000, currency: 'EUR' } } }); // critical, 2 approvals
    const { thread } = await teamsCardOf(id);
    const invoke = cardInvoke(connector.serviceUrl, thread, { aad: AAD.bob }, 'countersign.approve', { proposal: id });
    const [first, again] = await Promise.all([postActivity(app.url, invoke), postActivity(app.url, invoke)]);
    expect([first.status, again.status]).toEqual([200, 200]);
    const p = await proposal(id);
    expect(p.status).toBe('pending');
    expect(p.approvals.filter((a: any) => a.vote === 'approve')).toHaveLength(1);
    expect(texts([first.json, again.json])).toContain('already counted');
  });
});

describe('one quorum across Slack and Teams', () => {
  it('a person counts once even when they click in both; a second person completes the quorum', async () => {
    const id = await propose({ context: { value: { amount: 50_000, currency: 'EUR' } } }); // large-payments: 2 approvals
    const { thread } = await teamsCardOf(id);
    const slackCard: SlackCall = await waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: 'Slack card' });
    const slackClick = await postToSlackEndpoint(app.url, SLACK_SECRET, payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: slackCard.ts! })));
    expect(slackClick.status).toBe(200);
    await waitFor(async () => (await proposal(id)).approvals.length === 1, { what: 'Slack approval' });
    const again = await click('alice', thread, 'approve', id);
    expect(texts(again.json.value)).toContain('already counted');
    expect(texts(again.json.value)).toContain('1 of 2 approvals: alice');
    expect((await proposal(id)).status).toBe('pending');
    const bob = await click('bob', thread, 'approve', id);
    expect(texts(bob.json.value)).toContain('Approved by alice, bob');
    const p = await proposal(id);
    expect(p.status).toBe('approved');
    expect(p.approvals.map((a: any) => [a.person, a.platform])).toEqual([
      ['alice', 'slack'],
      ['bob', 'teams'],
    ]);
    await waitFor(() => slack.callsTo('chat.update').some((u) => u.args['ts'] === slackCard.ts && JSON.stringify(u.args['blocks']).includes('alice, bob')), { what: 'Slack card update' });
    // The update may already show the execution that followed the approval.
    await waitFor(() => connector.callsTo('updateActivity').some((u) => u.activityId === thread.message && /Approved(?: · executing)? by alice, bob/.test(texts(u.body))), { what: 'Teams card update' });
  });
});

describe('Teams text, search and fixed channels', () => {
  it('neutralises agent markdown, links and date functions in the card', async () => {
    const id = await propose({ intent: 'Pay **now** [click](https://evil.example) {{DATE(2020-01-01T00:00:00Z, SHORT)}}\n# heading\n- item <at>everyone</at>' });
    const card = cardJson((await teamsCardOf(id)).call);
    const sent = texts(card);
    for (const bad of ['**now**', '[click]', '](https://', '{{DATE', '\\n# heading', '\\n- item', '<at>everyone</at>']) expect(sent).not.toContain(bad);
    expect(sent).toContain('now');
  });

  it('search, show and pending answer with a card of proposals', async () => {
    const id = await propose({ intent: 'Refund the zebra-7731 invoice' });
    await teamsCardOf(id);
    await say('bob', 'search zebra-7731');
    const found = await waitFor(() => connector.callsTo('replyToActivity').find((c) => texts(c.body).includes('zebra-7731') && texts(c.body).includes(id)), { what: 'search answer' });
    expect(found.body.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    await say('bob', `show ${id}`);
    await waitFor(() => connector.callsTo('replyToActivity').find((c) => texts(c.body).includes('History') && texts(c.body).includes(id)), { what: 'show answer' });
    await say('bob', 'pending');
    await waitFor(() => connector.callsTo('replyToActivity').find((c) => texts(c.body).includes('Pending proposals') && texts(c.body).includes(id)), { what: 'pending answer' });
    const before = connector.callsTo('replyToActivity').length;
    await say('stranger', 'search zebra-7731');
    const refusal = await waitFor(() => connector.callsTo('replyToActivity').slice(before).find((c) => String(c.body?.text).includes('Only people listed')), { what: 'stranger refusal' });
    expect(texts(refusal.body)).not.toContain(id);
  });

  it('a route whose Teams channel is fixed in the policy posts there without connect', async () => {
    const id = await propose({ action: { tool: 'crm', operation: 'update', target: 'contact:7' } }); // default rule: secops
    const { call, thread } = await teamsCardOf(id);
    expect(call.body.channelData).toMatchObject({ channel: { id: SECOPS }, tenant: { id: TENANT } });
    const res = await click('alice', thread, 'approve', id);
    expect(texts(res.json.value)).toContain('Approved by alice');
    await waitFor(() => connector.callsTo('updateActivity').some((u) => u.activityId === thread.message), { what: 'update in the fixed channel' });
  });

  it('NODE_ENV=production refuses Teams without an app id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-teams-'));
    writeFileSync(join(dir, 'policy.yaml'), teamsPolicy(connector.serviceUrl));
    const env = {
      NODE_ENV: 'production',
      PORT: '0',
      PUBLIC_URL: 'https://countersign.example.com',
      REDIS_URL: 'redis://127.0.0.1:1', // never reached: the refusal comes first
      TOKEN_SIGNING_KEY: 'unused-here',
      AUDIT_SIGNING_KEY: 'unused-here',
      POLICY_FILE: join(dir, 'policy.yaml'),
      COUNTERSIGN_DATA_DIR: dir,
      AGENT_BILLING_SECRET: 'x'.repeat(32),
      AGENT_OPS_SECRET: 'y'.repeat(32),
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_SIGNING_SECRET: SLACK_SECRET,
      LOG_LEVEL: 'silent',
    };
    await expect(start(env, { say: () => undefined })).rejects.toThrow(/MICROSOFT_APP_ID is required/);
  });
});

describe('Teams bodies are read like every JSON body', () => {
  it('refuses a text/plain activity (415) and one nested too deep (400), recording nothing', async () => {
    const id = await propose();
    const { thread } = await teamsCardOf(id);
    const activity = cardInvoke(connector.serviceUrl, thread, { aad: AAD.alice }, 'countersign.approve', { proposal: id });
    const plain = await fetch(`${app.url}/api/messages`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(activity) });
    expect(plain.status).toBe(415);
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = [deep];
    const nested = await postActivity(app.url, { ...activity, channelData: { deep } });
    expect(nested.status).toBe(400);
    expect(nested.json).toMatchObject({ error: 'invalid_request' });
    expect((await proposal(id)).status).toBe('pending');
  });
});
