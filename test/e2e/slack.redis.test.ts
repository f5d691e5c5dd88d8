import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import {
  blockActionsPayload,
  payloadBody,
  postToSlackEndpoint,
  startFakeSlack,
  viewSubmissionPayload,
  waitFor,
  type ClickSpec,
  type FakeSlack,
  type SlackCall,
} from '../helpers/fake-slack.ts';

// countersign with Slack on, against the fake Web API: cards, clicks, the deny modal,
// updates and thread replies, signature checks, retries and rate limits.

const SECRET = 'slack-signing-secret-for-tests';
export const SLACK_POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }').replace(
  'secops: { console: true }',
  'secops: { slack: C0SECOPS, console: true }',
);

let fake: FakeSlack;
let app: TestApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({ policy: SLACK_POLICY, env: { SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl } });
});
afterAll(async () => {
  await fake.close();
});

const mentions = (c: SlackCall, id: string) => JSON.stringify(c.args).includes(id);

async function propose(overrides: Record<string, unknown> = {}): Promise<string> {
  const res = await app.billing.propose(proposalBody(overrides));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function cardOf(id: string): Promise<SlackCall> {
  return waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && mentions(c, id)), { what: `card of ${id}` });
}

async function click(spec: ClickSpec, headers: Record<string, string> = {}) {
  return postToSlackEndpoint(app.url, SECRET, payloadBody(blockActionsPayload(spec)), { headers });
}

async function statusOf(id: string): Promise<string> {
  return (await app.billing.request('GET', `/v1/proposals/${id}`)).body.status;
}

const ephemeralsTo = (user: string) => fake.callsTo('chat.postEphemeral').filter((c) => c.args['user'] === user);
const updatesOf = (card: SlackCall) => fake.callsTo('chat.update').filter((c) => c.args['ts'] === card.ts);
const repliesTo = (card: SlackCall) => fake.callsTo('chat.postMessage').filter((c) => c.args['thread_ts'] === card.ts);
const hasButtons = (blocks: any[]) => blocks.some((b) => b.type === 'actions');

describe('Slack cards', () => {
  it('posts a Block Kit card to the routed channel with the action, context and buttons', async () => {
    const id = await propose();
    const card = await cardOf(id);
    expect(card.args['channel']).toBe('C0FINANCE');
    expect(card.token).toBe('xoxb-test-token');
    expect(fake.callsTo('auth.test')).toHaveLength(0); // no start-up round trip to Slack
    const text = JSON.stringify(card.args['blocks']);
    for (const part of ['Refund invoice 4711', 'stripe:cus_123', 'payments · refund', 'high', 'rule payments', '0 of 1 approval', 'confidential', 'external', 'EUR']) {
      expect(text).toContain(part);
    }
    const actions = (card.args['blocks'] as any[]).find((b) => b.type === 'actions');
    expect(actions.elements.map((e: any) => [e.action_id, e.value])).toEqual([
      ['countersign_approve', id],
      ['countersign_deny', id],
    ]);
    // The fake records the call before countersign has its answer: wait for the audit entry.
    const posted = await waitFor(async () => (await app.admin(`/v1/audit?q=card_posted+${id}`)).body.events.find((e: any) => e.type === 'card_posted'), {
      what: 'card_posted',
    });
    expect(posted.data).toMatchObject({ platform: 'slack', conversation: 'C0FINANCE', message: card.ts });
  });

  it('escapes agent text: no mentions, links or formatting reach Slack', async () => {
    const id = await propose({
      intent: 'Hi <!channel> <!here> @here <@U0ALICE> <https://evil.example|click to approve> *bold* _it_ ~s~ `code`\n> quote',
      action: { tool: 'payments', operation: 'refund', target: '<!subteam^S1|@finance>', parameters: { note: '<!everyone>' } },
    });
    const card = await cardOf(id);
    const sent = JSON.stringify(card.args);
    for (const bad of ['<!channel>', '<!here>', '<@U0ALICE>', '<https://evil', '<!subteam', '<!everyone>']) expect(sent).not.toContain(bad);
    expect(sent).toContain('&lt;!channel&gt;');
    const intentBlock = (card.args['blocks'] as any[])[1];
    expect(intentBlock.text.type).toBe('plain_text');
    expect(String(card.args['text'])).not.toMatch(/[<>]/);
  });
});

describe('Slack clicks', () => {
  it('an approver click approves; the card loses its buttons and the thread gets the replies', async () => {
    const id = await propose();
    const card = await cardOf(id);
    const res = await click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    expect(res.status).toBe(200);
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'approved' });
    const update = await waitFor(() => updatesOf(card).find((u) => !hasButtons(u.args['blocks'])), { what: 'final card' });
    expect(update.args['channel']).toBe('C0FINANCE');
    expect(JSON.stringify(update.args['blocks'])).toContain('Approved');
    expect(JSON.stringify(update.args['blocks'])).toContain('alice');
    await waitFor(() => repliesTo(card).some((r) => String(r.args['text']).includes('alice approved')), { what: 'approval reply' });
    await waitFor(() => repliesTo(card).some((r) => String(r.args['text']).includes('Approved by alice')), { what: 'decided reply' });
    expect(ephemeralsTo('U0ALICE')).toHaveLength(0);
  });

  it('refuses a stranger, a sponsor and a non-approver privately, and audits each refusal', async () => {
    const id = await propose();
    const card = await cardOf(id);
    for (const user of ['U0NOBODY', 'U0DANA', 'U0ERIN']) {
      expect((await click({ user, proposalId: id, action: 'countersign_approve', messageTs: card.ts! })).status).toBe(200);
      const eph = await waitFor(() => ephemeralsTo(user).find((c) => String(c.args['text']).includes('not allowed')), { what: `refusal to ${user}` });
      expect(eph.args['channel']).toBe('C0FINANCE');
    }
    expect(await statusOf(id)).toBe('pending');
    const audit = await app.admin(`/v1/audit?q=approval_refused+${id}`);
    const why = audit.body.events.map((e: any) => [e.actor, e.data.why]);
    expect(why).toEqual(
      expect.arrayContaining([
        ['slack:U0NOBODY', 'unknown_person'],
        ['person:dana', 'sponsor'],
        ['person:erin', 'not_an_approver'],
      ]),
    );
    // A stranger's deny does not get a modal either.
    await click({ user: 'U0NOBODY', proposalId: id, action: 'countersign_deny' });
    await waitFor(() => ephemeralsTo('U0NOBODY').length >= 2, { what: 'second refusal' });
    expect(fake.callsTo('views.open').filter((c) => mentions(c, id))).toHaveLength(0);
  });

  it('a 2-approval rule needs two distinct people; the card counts them', async () => {
    const id = await propose({ context: { value: { amount: 50_000, currency: 'EUR' } } });
    const card = await cardOf(id);
    const approve = (card.args['blocks'] as any[]).find((b) => b.type === 'actions').elements[0];
    expect(approve.confirm).toBeDefined(); // critical: Slack asks "are you sure?" first
    await click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    await waitFor(() => updatesOf(card).some((u) => JSON.stringify(u.args['blocks']).includes('1 of 2 approvals: alice')), { what: '1 of 2' });
    await click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    await waitFor(() => ephemeralsTo('U0ALICE').some((c) => String(c.args['text']).includes('already counted')), { what: 'already counted' });
    expect(await statusOf(id)).toBe('pending');
    await click({ user: 'U0BOB', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'approved' });
    const final = await waitFor(() => updatesOf(card).find((u) => !hasButtons(u.args['blocks'])), { what: 'final card' });
    expect(JSON.stringify(final.args['blocks'])).toContain('alice, bob');
  });

  it('deny opens a modal whose reason is required for high risk; the reason reaches the card and the thread', async () => {
    const id = await propose();
    const card = await cardOf(id);
    await click({ user: 'U0BOB', proposalId: id, action: 'countersign_deny', messageTs: card.ts! });
    const open = await waitFor(() => fake.callsTo('views.open').find((c) => mentions(c, id)), { what: 'views.open' });
    expect(open.args['trigger_id']).toMatch(/^trigger-/);
    const view = open.args['view'];
    expect(view.blocks.find((b: any) => b.type === 'input').optional).toBe(false);

    const empty = await postToSlackEndpoint(app.url, SECRET, payloadBody(viewSubmissionPayload('U0BOB', view, '   ')));
    expect(empty.status).toBe(200);
    expect(empty.json).toMatchObject({ response_action: 'errors', errors: { reason: expect.any(String) } });
    expect(await statusOf(id)).toBe('pending');

    const ok = await postToSlackEndpoint(app.url, SECRET, payloadBody(viewSubmissionPayload('U0BOB', view, 'Duplicate <!here> refund')));
    expect(ok.status).toBe(200);
    await waitFor(async () => (await statusOf(id)) === 'denied', { what: 'denied' });
    const p = (await app.billing.request('GET', `/v1/proposals/${id}`)).body;
    expect(JSON.stringify(p)).toContain('Duplicate <!here> refund');
    const final = await waitFor(() => updatesOf(card).find((u) => !hasButtons(u.args['blocks'])), { what: 'denied card' });
    const blocks = JSON.stringify(final.args['blocks']);
    expect(blocks).toContain('Denied');
    expect(blocks).toContain('Duplicate &lt;!here&gt; refund');
    await waitFor(() => repliesTo(card).some((r) => JSON.stringify(r.args).includes('bob denied')), { what: 'denial reply' });
    expect(JSON.stringify(repliesTo(card).map((r) => r.args))).not.toContain('<!here>');
  });

  it('a deny whose dialog cannot open says so, unless it was a redelivery', async () => {
    const id = await propose();
    const card = await cardOf(id);
    const forThis = (args: Record<string, any>) => JSON.stringify(args).includes(id);
    fake.failNext('views.open', 2, { error: 'expired_trigger_id' }, forThis);
    const spec: ClickSpec = { user: 'U0BOB', proposalId: id, action: 'countersign_deny', messageTs: card.ts! };
    await click(spec, { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' });
    await waitFor(() => fake.callsTo('views.open').filter((c) => forThis(c.args)).length === 1, { what: 'first views.open' });
    await click(spec);
    await waitFor(() => ephemeralsTo('U0BOB').some((c) => String(c.args['text']).includes('did not open')), { what: 'dialog notice' });
    expect(ephemeralsTo('U0BOB').filter((c) => String(c.args['text']).includes('did not open'))).toHaveLength(1);
    expect(await statusOf(id)).toBe('pending');
  });

  it('a medium-risk deny may leave the reason empty', async () => {
    const id = await propose({ action: { tool: 'crm', operation: 'update', target: 'contact:7' } }); // default rule: secops, medium
    const card = await cardOf(id);
    expect(card.args['channel']).toBe('C0SECOPS');
    await click({ user: 'U0CAROL', proposalId: id, action: 'countersign_deny', channel: 'C0SECOPS', messageTs: card.ts! });
    const open = await waitFor(() => fake.callsTo('views.open').find((c) => mentions(c, id)), { what: 'views.open' });
    expect(open.args['view'].blocks.find((b: any) => b.type === 'input').optional).toBe(true);
    await postToSlackEndpoint(app.url, SECRET, payloadBody(viewSubmissionPayload('U0CAROL', open.args['view'], null)));
    await waitFor(async () => (await statusOf(id)) === 'denied', { what: 'denied' });
  });
});

describe('Slack cards after the people phase', () => {
  it('an expired proposal loses its buttons and the thread says so', async () => {
    const id = await propose({ action: { tool: 'payments', operation: 'quick', target: 'stripe:cus_1' } }); // ttl 1s
    const card = await cardOf(id);
    const final = await waitFor(() => updatesOf(card).find((u) => !hasButtons(u.args['blocks'])), { what: 'expired card' });
    expect(JSON.stringify(final.args['blocks'])).toContain('Expired without a decision');
    await waitFor(() => repliesTo(card).some((r) => String(r.args['text']).startsWith('Expired')), { what: 'expiry reply' });
    await click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    await waitFor(() => ephemeralsTo('U0ALICE').some((c) => String(c.args['text']).includes('Too late')), { what: 'too late' });
  });

  it('a cancelled proposal shows who cancelled it', async () => {
    const id = await propose();
    const card = await cardOf(id);
    expect((await app.billing.request('POST', `/v1/proposals/${id}/cancel`, { reason: 'customer <!here> paid' })).status).toBeLessThan(300);
    const final = await waitFor(() => updatesOf(card).find((u) => !hasButtons(u.args['blocks'])), { what: 'cancelled card' });
    const blocks = JSON.stringify(final.args['blocks']);
    expect(blocks).toContain('Cancelled by agent:billing-agent');
    expect(blocks).not.toContain('<!here>');
    await waitFor(() => repliesTo(card).some((r) => String(r.args['text']).includes('Cancelled by agent:billing-agent')), { what: 'cancel reply' });
  });
});

describe('Slack request verification and delivery', () => {
  it('answers 401 to a forged signature, a stale or a future timestamp, and changes nothing', async () => {
    const id = await propose();
    await cardOf(id);
    const body = payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve' }));
    const now = Math.floor(Date.now() / 1000);
    const forged = await postToSlackEndpoint(app.url, 'not-the-secret', body);
    const stale = await postToSlackEndpoint(app.url, SECRET, body, { timestamp: now - 6 * 60 });
    const future = await postToSlackEndpoint(app.url, SECRET, body, { timestamp: now + 6 * 60 });
    const unsigned = await fetch(`${app.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect([forged.status, stale.status, future.status, unsigned.status]).toEqual([401, 401, 401, 401]);
    expect(await statusOf(id)).toBe('pending');
    const audit = await app.admin(`/v1/audit?q=${id}`);
    expect(audit.body.events.map((e: any) => e.type)).not.toContain('approval_recorded');
    const failures = await app.admin('/v1/audit?q=auth_failed+slack');
    expect(failures.body.events.map((e: any) => e.data.reason)).toEqual(expect.arrayContaining(['bad signature', 'stale timestamp', 'timestamp in the future']));
  });

  it('a retried or doubled click counts once, and the retry tells the person nothing', async () => {
    const id = await propose({ context: { value: { amount: 50_000, currency: 'EUR' } } }); // needs 2
    const card = await cardOf(id);
    const spec: ClickSpec = { user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! };
    const body = payloadBody(blockActionsPayload(spec));
    const results = await Promise.all([
      postToSlackEndpoint(app.url, SECRET, body),
      postToSlackEndpoint(app.url, SECRET, body, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } }),
      postToSlackEndpoint(app.url, SECRET, body, { headers: { 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_timeout' } }),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    await waitFor(() => updatesOf(card).some((u) => JSON.stringify(u.args['blocks']).includes('1 of 2 approvals: alice')), { what: '1 of 2' });
    const audit = await waitFor(async () => {
      const events = (await app.admin(`/v1/audit?q=${id}`)).body.events as any[];
      return events.filter((e) => e.type === 'approval_refused').length === 2 ? events : null;
    }, { what: 'all three clicks handled' });
    expect(audit.filter((e) => e.type === 'approval_recorded')).toHaveLength(1);
    // Only a non-retry duplicate could have told alice "already counted", and here the first one counted.
    expect(ephemeralsTo('U0ALICE').filter((c) => mentions(c, 'already counted') && c.args['channel'] === 'C0FINANCE').length).toBeLessThanOrEqual(1);
    expect(await statusOf(id)).toBe('pending');
  });

  it('two people clicking at once on a 1-approval card end in one decision', async () => {
    // A customer of its own: summed with this file's other refunds to stripe:cus_123, it would be large-payments (2 approvals).
    const id = await propose({ action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_two_clicks', parameters: { amount: 420, currency: 'EUR' } } });
    const card = await cardOf(id);
    await Promise.all([
      click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! }),
      click({ user: 'U0BOB', proposalId: id, action: 'countersign_approve', messageTs: card.ts! }),
    ]);
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'approved' });
    const events = await waitFor(async () => {
      const all = (await app.admin(`/v1/audit?q=${id}`)).body.events as any[];
      return all.filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused').length === 2 ? all : null;
    }, { what: 'both clicks' });
    expect(events.filter((e) => e.type === 'approval_recorded')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'decided')).toHaveLength(1);
    expect(events.find((e) => e.type === 'approval_refused').data.why).toBe('not_pending');
  });

  it('acks a click at once even when the Web API is slow, and answers after', async () => {
    const id = await propose();
    await cardOf(id);
    fake.delay('chat.postEphemeral', 3500);
    try {
      const started = Date.now();
      const res = await click({ user: 'U0SLOWPOKE', proposalId: id, action: 'countersign_approve' });
      expect(res.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(1500);
      await waitFor(() => ephemeralsTo('U0SLOWPOKE').length === 1, { what: 'late private reply' });
    } finally {
      fake.delay('chat.postEphemeral', 0);
    }
  });

  it('a 429 and then a 500 from chat.postMessage still post exactly one card', async () => {
    const intent = 'Refund 4712 while Slack rate-limits us';
    const isThisCard = (args: Record<string, any>) => args['thread_ts'] === undefined && JSON.stringify(args).includes(intent);
    fake.failNext('chat.postMessage', 1, { status: 429, retryAfter: 1 }, isThisCard);
    fake.failNext('chat.postMessage', 1, { status: 500 }, isThisCard);
    const id = await propose({ intent });
    const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && mentions(c, id)), { timeoutMs: 15_000, what: 'card after retries' });
    const attempts = fake.callsTo('chat.postMessage').filter((c) => mentions(c, id) && c.args['thread_ts'] === undefined);
    expect(attempts.map((c) => c.status)).toEqual([429, 500, 200]);
    const audit = await waitFor(async () => {
      const events = (await app.admin(`/v1/audit?q=card_posted+${id}`)).body.events as any[];
      return events.length > 0 ? events : null;
    }, { what: 'card_posted' });
    expect(audit).toHaveLength(1);
    expect(audit[0].data.message).toBe(card.ts);
  }, 20_000);
});
