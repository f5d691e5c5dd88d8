import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { startFakeBotConnector, TENANT, type ConnectorCall, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';

// What an agent wrote, shown to people through the real app on every platform: characters that
// reorder or hide text arrive made visible (⟪U+202E⟫) with a line saying so, a huge proposal
// arrives cut below each platform's size limit with a link to the full proposal, and what the
// agent wrote is still stored, audited and judged by the policy byte for byte. Also: Slack's
// actions block gets a new block_id with each version of the card.

const SLACK_SECRET = 'slack-signing-secret-for-tests';
const FINANCE = '19:finance@thread.tacv2';
const BOB_AAD = '00000000-0000-0000-0000-000000000b0b';

// Slack: 50 blocks, and about 12,000 characters of blocks in all (msg_blocks_too_long above it,
// bolt-js#2509 / #2867). Teams: 28 KB for a message with an Adaptive Card, counted here both as
// UTF-8 and as UTF-16 (the Bot Framework counts a message's size as UTF-16).
const SLACK_MAX_BLOCKS = 50;
const SLACK_MAX_BLOCKS_CHARS = 12_000;
const TEAMS_MAX_BYTES = 28 * 1024;

/** What must never reach a person's screen from an agent: reordering, invisible and control characters, lone surrogates. */
const HIDDEN = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const TARGET = 'stripe:cus_1\u202Eelif.exe\u202C';
const SHOWN_TARGET = 'stripe:cus_1⟪U+202E⟫elif.exe⟪U+202C⟫';

function policy(serviceUrl: string): string {
  return CONSOLE_POLICY.replace('bob: { slack: U0BOB, console_key_env', `bob: { slack: U0BOB, teams: ${BOB_AAD}, console_key_env`)
    .replace(
      'finance: { console: true }',
      `finance: { slack: C0FINANCE, teams: { conversation: "${FINANCE}", service_url: "${serviceUrl}", tenant: ${TENANT} }, console: true }`,
    )
    .replace(
      'rules:\n',
      // The policy judges the raw text: this rule sees the override character the card shows.
      'rules:\n  - name: hidden-override-in-target\n    when: action.target.contains("\\u202E")\n    effect: approve\n    risk: high\n    route: finance\n    approvers: finance\n',
    );
}

let connector: FakeBotConnector;
let slack: FakeSlack;
let app: TestApp;

beforeAll(async () => {
  connector = await startFakeBotConnector();
  slack = await startFakeSlack();
  app = await startTestApp({
    policy: policy(connector.serviceUrl),
    env: { ...CONSOLE_ENV, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl },
  });
});
afterAll(async () => {
  await connector.close();
  await slack.close();
});

/** A hostile proposal near the 64 KiB body limit: a reordering target, hidden characters in every field, ~23 KB of them in the intent, ~30 KB of parameters. */
function hostile(): Record<string, unknown> {
  const unit = 'x\u0001\u202E\u200B\uD800\u0085 ';
  return proposalBody({
    intent: `Refund the duplicate charge \u2066for\u2069 customer\u200B 4711 ${'\u0001\uD800'.repeat(1900)} done`,
    action: { tool: 'payments', operation: 'refund', target: TARGET, parameters: { note: 'ok\u200Dok', blob: unit.repeat(1500), [`key\u202E`]: 1 } },
    context: { environment: 'prod\u200Buction', value: { amount: 420, currency: 'EUR' } },
  });
}

async function propose(body: Record<string, unknown>): Promise<string> {
  const res = await app.billing.propose(body);
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const slackCardOf = (id: string) =>
  waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: `Slack card of ${id}` });
const teamsCardOf = (id: string) => waitFor(() => connector.callsTo('createConversation').find((c) => JSON.stringify(c.body).includes(id)), { what: `Teams card of ${id}` });
const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

describe('a hostile proposal on every platform', () => {
  let id: string;
  let raw: Record<string, unknown>;
  beforeAll(async () => {
    raw = hostile();
    expect(utf8(JSON.stringify(raw))).toBeGreaterThan(45_000);
    id = await propose(raw);
  });

  it('is stored, audited and judged as the agent wrote it', async () => {
    const p = (await app.billing.request('GET', `/v1/proposals/${id}`)).body;
    expect(p.action.target).toBe(TARGET);
    expect(p.intent).toBe(raw['intent']);
    expect(p.action.parameters).toEqual((raw['action'] as { parameters: unknown }).parameters);
    expect(p.decision.rule).toBe('hidden-override-in-target');
    const received = (await app.admin(`/v1/audit?q=proposal_received&proposal_id=${id}`)).body.events[0];
    expect(received.data.action.target).toBe(TARGET);
  });

  it('Slack: the card shows the hidden characters, says so, and stays under Slack limits with a link to the full proposal', async () => {
    const card = await slackCardOf(id);
    const blocks = card.args['blocks'] as any[];
    const sent = JSON.stringify(blocks);
    console.log(`Slack card: ${blocks.length} blocks, ${sent.length} characters of blocks, hidden characters ${HIDDEN.test(JSON.stringify(card.args)) ? 'present' : 'absent'}`);
    expect(sent.includes(SHOWN_TARGET), SHOWN_TARGET).toBe(true);
    expect(sent.includes('⟪U+2066⟫for⟪U+2069⟫'), '⟪U+2066⟫for⟪U+2069⟫').toBe(true);
    expect(HIDDEN.test(JSON.stringify(card.args))).toBe(false);
    expect(sent.includes('Hidden characters in this proposal are shown as ⟪U+…⟫'), 'Hidden characters in this proposal are shown as ⟪U+…⟫').toBe(true);
    expect(blocks.length).toBeLessThanOrEqual(SLACK_MAX_BLOCKS);
    expect(sent.length).toBeLessThanOrEqual(SLACK_MAX_BLOCKS_CHARS);
    expect(/cut short/.test(sent), 'a cut-short note').toBe(true);
    expect(sent.includes(`/console/proposals/${id}|`), `/console/proposals/${id}|`).toBe(true);
  });

  it('Teams: the card shows the hidden characters, says so, and stays under 28 KB with a link to the full proposal', async () => {
    const call: ConnectorCall = await teamsCardOf(id);
    const activity = JSON.stringify(call.body.activity);
    const content = JSON.stringify(call.body.activity.attachments[0].content);
    console.log(`Teams message: ${utf8(activity)} bytes as UTF-8, ${activity.length * 2} as UTF-16, hidden characters ${HIDDEN.test(activity) ? 'present' : 'absent'}`);
    expect(content.includes(SHOWN_TARGET), SHOWN_TARGET).toBe(true);
    expect(HIDDEN.test(content)).toBe(false);
    expect(content.includes('Hidden characters in this proposal are shown as ⟪U+…⟫'), 'Hidden characters in this proposal are shown as ⟪U+…⟫').toBe(true);
    expect(utf8(activity)).toBeLessThanOrEqual(TEAMS_MAX_BYTES);
    expect(activity.length * 2).toBeLessThanOrEqual(TEAMS_MAX_BYTES);
    expect(/cut short/.test(content), 'a cut-short note').toBe(true);
    expect(content.includes(`/console/proposals/${id})`), `/console/proposals/${id})`).toBe(true);
  });

  it('console: the card shows the hidden characters and says so', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const page = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie: alice.cookie } })).text();
    console.log(`console page: hidden characters ${HIDDEN.test(page) ? 'present' : 'absent'}`);
    expect(page.includes(SHOWN_TARGET), SHOWN_TARGET).toBe(true);
    expect(page.includes('key⟪U+202E⟫'), 'key⟪U+202E⟫').toBe(true);
    expect(HIDDEN.test(page)).toBe(false);
    expect(page.includes('Hidden characters in this proposal are shown as ⟪U+…⟫'), 'Hidden characters in this proposal are shown as ⟪U+…⟫').toBe(true);
  });
});

describe('Slack block_id', () => {
  const actionsOf = (c: SlackCall) => (c.args['blocks'] as any[]).find((b) => b.type === 'actions');

  it('changes with each version of the card; the clicks still find the proposal', async () => {
    const id = await propose(proposalBody({ context: { value: { amount: 50_000, currency: 'EUR' } } })); // large-payments: 2 approvals
    const card = await slackCardOf(id);
    const click = (user: string) =>
      postToSlackEndpoint(app.url, SLACK_SECRET, payloadBody(blockActionsPayload({ user, proposalId: id, action: 'countersign_approve', messageTs: card.ts! })));
    expect((await click('U0ALICE')).status).toBe(200);
    const update = await waitFor(() => slack.callsTo('chat.update').find((u) => u.args['ts'] === card.ts && JSON.stringify(u.args['blocks']).includes('1 of 2 approvals')), {
      what: 'card after the first approval',
    });
    const before = actionsOf(card).block_id as string;
    const after = actionsOf(update).block_id as string;
    console.log(`block_id posted ${before}, after the first approval ${after}`);
    expect(after).not.toBe(before);
    expect(after.length).toBeLessThanOrEqual(255);
    // Bob clicks the button of the card as first posted (its old block_id): the value names the proposal.
    expect((await click('U0BOB')).status).toBe(200);
    await waitFor(async () => (await app.billing.request('GET', `/v1/proposals/${id}`)).body.status === 'approved', { what: 'approved' });
  });
});
