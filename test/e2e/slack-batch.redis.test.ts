import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, slashCommandBody, startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';

// `/countersign pending` groups what the asker may decide by agent and rule, each group with an
// "Approve all N" button carrying the ids shown; its click (a signed block_actions interaction)
// decides each proposal on its own, marked with one batch id.

const SECRET = 'slack-signing-secret-for-batch-tests';
// Each test uses its own agent so the groups it sees are its own proposals only.
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }');

let fake: FakeSlack;
let app: TestApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({ policy: POLICY, env: { SLACK_BOT_TOKEN: 'xoxb-batch-tests', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl } });
});
afterAll(async () => {
  await fake.close();
});

let targets = 0;
/** Each to a target of its own: amounts to one target add up over a day (split-transaction aggregation). */
async function propose(overrides: Record<string, unknown> = {}): Promise<string> {
  const action = { tool: 'payments', operation: 'refund', target: `stripe:cus_batch_${++targets}`, parameters: { amount: 420, currency: 'EUR' } };
  const res = await app.billing.propose(proposalBody({ action, ...overrides }));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function answerAt(responseUrl: string, what: string): Promise<any> {
  const path = new URL(responseUrl).pathname;
  return (await waitFor(() => fake.responses.find((r) => r.path === path), { what })).body;
}

async function pending(user: string): Promise<any> {
  const responseUrl = fake.responseUrl();
  const res = await postToSlackEndpoint(app.url, SECRET, slashCommandBody(user, 'pending', responseUrl));
  expect(res.status).toBe(200);
  return answerAt(responseUrl, `pending for ${user}`);
}

const batchButtons = (answer: any): any[] => answer.blocks.filter((b: any) => b.type === 'actions').flatMap((b: any) => b.elements).filter((e: any) => e.action_id === 'countersign_approve_batch');

function batchClick(user: string, value: string, responseUrl: string): string {
  const payload = blockActionsPayload({ user, proposalId: 'unused', action: 'countersign_approve', responseUrl });
  (payload['actions'] as any[])[0] = { type: 'button', action_id: 'countersign_approve_batch', block_id: 'batch:0', value, text: { type: 'plain_text', text: 'Approve all' }, action_ts: `${Date.now() / 1000}` };
  return payloadBody(payload);
}

/** Clicks the batch button as `user`; resolves with countersign's private answer. */
async function click(user: string, value: string, headers: Record<string, string> = {}): Promise<string> {
  const responseUrl = fake.responseUrl();
  const res = await postToSlackEndpoint(app.url, SECRET, batchClick(user, value, responseUrl), { headers });
  expect(res.status).toBe(200);
  return (await answerAt(responseUrl, 'batch answer')).text as string;
}

async function events(id: string): Promise<{ type: string; data: any }[]> {
  return (await app.admin(`/v1/audit?proposal_id=${id}&limit=100`)).body.events;
}
const statusOf = async (id: string) => (await app.billing.request('GET', `/v1/proposals/${id}`)).body.status as string;
const ofType = <E extends { type: string }>(list: E[], type: string) => list.filter((e) => e.type === type);

/** Waits until the batch's approved proposals have their one token, and checks there is only one. */
async function tokenOnce(id: string): Promise<void> {
  await waitFor(async () => ofType(await events(id), 'token_issued').length > 0, { what: `token of ${id}` });
  expect(ofType(await events(id), 'token_issued')).toHaveLength(1);
}

describe('batch approval from /countersign pending', () => {
  it('offers one button per agent and rule with the ids shown, and approves each on its own under one batch id', async () => {
    const ids = [await propose(), await propose(), await propose()];
    // Critical (large-payments) and another rule's proposal are not in the payments group.
    const critical = await propose({ context: { value: { amount: 50_000, currency: 'EUR' } } });
    const answer = await pending('U0ALICE');
    expect(answer.response_type).toBe('ephemeral');
    expect(answer.blocks.length).toBeLessThanOrEqual(50);
    const buttons = batchButtons(answer);
    const button = buttons.find((b) => JSON.parse(b.value).r === 'payments')!;
    expect(button.text.text).toBe('Approve all 3 from billing-agent under rule payments');
    expect(button.confirm.title.text).toBe('Approve 3 proposals?');
    expect(JSON.parse(button.value)).toEqual({ a: 'billing-agent', r: 'payments', i: expect.arrayContaining(ids) });
    expect(buttons.some((b) => b.value.includes(critical))).toBe(false);

    // A proposal that arrives after the list was made is not in the snapshot and stays pending.
    const later = await propose();
    expect(await click('U0ALICE', button.value)).toBe('Approved 3.');
    const batchIds = new Set<string>();
    for (const id of ids) {
      const recorded = ofType(await events(id), 'approval_recorded');
      expect(recorded).toHaveLength(1);
      expect(recorded[0]!.data).toMatchObject({ person: 'alice', platform: 'slack', vote: 'approve' });
      batchIds.add(recorded[0]!.data.batch);
      await tokenOnce(id);
      expect(await statusOf(id)).toBe('approved');
    }
    expect([...batchIds]).toEqual([expect.stringMatching(/^b_/)]);
    expect(await statusOf(later)).toBe('pending');
    expect(await statusOf(critical)).toBe('pending');
  });

  it('skips a proposal decided meanwhile and refuses a request naming a critical one, leaving it untouched', async () => {
    const a = await propose();
    const b = await propose();
    const value = batchButtons(await pending('U0BOB')).find((x) => JSON.parse(x.value).i.includes(a))!.value as string;
    // Alice approves one on its card first (one approval suffices for payments).
    const single = await postToSlackEndpoint(app.url, SECRET, payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: a, action: 'countersign_approve' })));
    expect(single.status).toBe(200);
    await waitFor(async () => (await statusOf(a)) === 'approved', { what: 'a approved' });
    const answer = await click('U0BOB', value);
    expect(answer).toMatch(/^Approved \d+, 1 already decided\.$/);
    expect(ofType(await events(a), 'approval_recorded')).toHaveLength(1);
    expect(ofType(await events(b), 'approval_recorded')[0]!.data).toMatchObject({ person: 'bob', batch: expect.stringMatching(/^b_/) });

    const c = await propose();
    const critical = await propose({ context: { value: { amount: 90_000, currency: 'EUR' } } });
    const forged = JSON.stringify({ a: 'billing-agent', r: 'payments', i: [c, critical] });
    expect(await click('U0BOB', forged)).toMatch(/^:warning: Nothing was decided: .*proposalIds\[1\]: .* under rule "large-payments"/);
    const asRule = JSON.stringify({ a: 'billing-agent', r: 'large-payments', i: [critical] });
    expect(await click('U0BOB', asRule)).toMatch(/critical risk: decide it on its own/);
    for (const id of [c, critical]) {
      const list = await events(id);
      expect(ofType(list, 'approval_recorded')).toEqual([]);
      expect(ofType(list, 'approval_refused')).toEqual([]);
      expect(await statusOf(id)).toBe('pending');
    }
  });

  it("a non-approver's batch records nothing but refusals", async () => {
    const ids = [await propose(), await propose()];
    // Carol is not in finance: she is offered no button for these, and a click names them anyway.
    expect(batchButtons(await pending('U0CAROL')).some((b) => ids.some((id) => b.value.includes(id)))).toBe(false);
    const answer = await click('U0CAROL', JSON.stringify({ a: 'billing-agent', r: 'payments', i: ids }));
    expect(answer).toMatch(/^Approved 0, 2 refused \(only members of "finance"/);
    for (const id of ids) {
      const list = await events(id);
      expect(ofType(list, 'approval_recorded')).toEqual([]);
      expect(ofType(list, 'approval_refused').map((e) => e.data)).toEqual([expect.objectContaining({ person: 'carol', why: 'not_an_approver', batch: expect.any(String) })]);
      expect(await statusOf(id)).toBe('pending');
    }
    // Dana sponsors billing-agent: refused as on a single card.
    expect(await click('U0DANA', JSON.stringify({ a: 'billing-agent', r: 'payments', i: ids }))).toMatch(/2 refused \(you sponsor agent/);
    // Someone not in the policy at all: refused, each named proposal audited as a stranger's click.
    expect(await click('U0STRANGER', JSON.stringify({ a: 'billing-agent', r: 'payments', i: ids }))).toMatch(/not a person in the policy/);
    for (const id of ids) {
      const list = await events(id);
      expect(ofType(list, 'approval_recorded')).toEqual([]);
      expect(ofType(list, 'approval_refused').map((e) => e.data.why).sort()).toEqual(['not_an_approver', 'sponsor', 'unknown_person']);
      expect(await statusOf(id)).toBe('pending');
    }
  });

  it('a duplicated or redelivered click has the effect of one; a forged one is 401 and decides nothing', async () => {
    const ids = [await propose(), await propose(), await propose()];
    const value = JSON.stringify({ a: 'billing-agent', r: 'payments', i: ids });

    const forged = await postToSlackEndpoint(app.url, 'not-the-secret', batchClick('U0ALICE', value, fake.responseUrl()));
    expect(forged.status).toBe(401);
    const failures = await waitFor(async () => {
      const list = (await app.admin('/v1/audit?q=auth_failed+slack&limit=100')).body.events as any[];
      return list.length > 0 ? list : null;
    }, { what: 'auth_failed' });
    expect(failures[0].data.reason).toBe('bad signature');
    for (const id of ids) expect(ofType(await events(id), 'approval_recorded')).toEqual([]);

    const body = batchClick('U0ALICE', value, fake.responseUrl());
    const [first, second] = await Promise.all([postToSlackEndpoint(app.url, SECRET, body), postToSlackEndpoint(app.url, SECRET, body)]);
    expect([first.status, second.status]).toEqual([200, 200]);
    await Promise.all(ids.map((id) => waitFor(async () => (await statusOf(id)) === 'approved', { what: `${id} approved` })));
    const retried = await postToSlackEndpoint(app.url, SECRET, body, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } });
    expect(retried.status).toBe(200);
    const again = await click('U0ALICE', value);
    expect(again).toBe('Approved 0, 3 already decided.');
    for (const id of ids) {
      expect(ofType(await events(id), 'approval_recorded')).toHaveLength(1);
      await tokenOnce(id);
    }
  });
});
