import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { cardInvoke, postActivity, startFakeBotConnector, TENANT, type ConnectorCall, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';

// Issue 12, item 6: a critical approval is confirmed on every platform (the console's second
// step is enforced by the server), and a `step_up: true` rule counts approvals only from the
// console, from someone who signed in within the last 5 minutes. Also: the console's refusals
// are the refusal sentences, its result line names every approver, and a click on a revoked
// agent's pending proposal is refused. The real countersign over HTTP, Slack and Teams through
// their fakes; the app's clock is the real one plus an offset the step-up tests move.

const SLACK_SECRET = 'slack-signing-secret-for-critical-approvals';
const VAULT = '19:vault@thread.tacv2';
const AAD = { alice: '00000000-0000-0000-0000-0000000a11ce', bob: '00000000-0000-0000-0000-000000000b0b' };
const MINUTE = 60_000;

function policy(serviceUrl: string): string {
  return CONSOLE_POLICY.replace('bob: { slack: U0BOB, console_key_env: BOB_CONSOLE_KEY }', `bob: { slack: U0BOB, teams: ${AAD.bob}, console_key_env: BOB_CONSOLE_KEY }`)
    .replace('finance: { console: true }', 'finance: { slack: C0FINANCE, console: true }')
    .replace('secops: { console: true }', `secops: { console: true }\n  vault: { slack: C0VAULT, teams: { conversation: "${VAULT}", service_url: "${serviceUrl}", tenant: ${TENANT} } }`)
    .replace(
      'rules:\n',
      `rules:
  - name: vault-secrets
    when: action.tool == "vault"
    effect: approve
    risk: high
    step_up: true
    route: vault
    approvers: finance
`,
    );
}

let offset = 0;
let app: TestApp;
let slack: FakeSlack;
let connector: FakeBotConnector;

beforeAll(async () => {
  slack = await startFakeSlack();
  connector = await startFakeBotConnector();
  app = await startTestApp({
    policy: policy(connector.serviceUrl),
    env: { ...CONSOLE_ENV, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl },
    start: { clock: { now: () => Date.now() + offset } },
  });
  return async () => {
    await slack.close();
    await connector.close();
  };
});
afterEach(() => {
  offset = 0;
});

type Session = { cookie: string; csrf: string };
const JSON_ACCEPT = { accept: 'application/json' };
const HTML_ACCEPT = { accept: 'text/html,application/xhtml+xml' };

function decide(session: Session, id: string, form: Record<string, string>, headers: Record<string, string> = JSON_ACCEPT) {
  return fetch(`${app.url}/console/proposals/${id}/decide`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: session.cookie, origin: app.url, ...headers },
    body: new URLSearchParams({ csrf: session.csrf, ...form }).toString(),
  });
}

const page = async (session: { cookie: string }, path: string) => (await fetch(`${app.url}${path}`, { headers: { cookie: session.cookie } })).text();
const proposalOf = async (id: string) => (await app.admin(`/v1/proposals/${id}`)).body;
const votesOn = async (id: string) => (await app.admin(`/v1/audit?proposal_id=${id}&limit=200`)).body.events.filter((e: any) => e.type === 'approval_recorded' || e.type === 'approval_refused');

/** Proposes as ops-agent (no sponsor among the approvers), signed with the app's clock. */
async function propose(overrides: Record<string, unknown>): Promise<string> {
  const res = await app.ops.request('POST', '/v1/proposals', proposalBody(overrides), { now: Date.now() + offset });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

let made = 0;
const payout = () => propose({
  intent: `Pay supplier invoice SUP-2291 (annual hosting contract) #${++made}`,
  action: { tool: 'payments', operation: 'payout', target: 'iban:DE89370400440532013000', parameters: { amount: 24_800, currency: 'EUR' } },
  context: { value: { amount: 24_800, currency: 'EUR' } },
});
const vaultRead = () => propose({ intent: `Read the signing key to rotate it #${++made}`, action: { tool: 'vault', operation: 'read', target: 'secret/prod/signing-key', parameters: {} } });

const slackCard = (id: string) => waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: `Slack card of ${id}` });
const teamsCard = (id: string) => waitFor(() => connector.callsTo('createConversation').find((c) => c.body?.channelData?.channel?.id === VAULT && JSON.stringify(c.body).includes(id)), { what: `Teams card of ${id}` });
const adaptive = (c: ConnectorCall) => c.body?.activity?.attachments?.[0]?.content ?? c.body?.attachments?.[0]?.content;
const slackActions = (card: SlackCall) => (card.args['blocks'] as any[]).find((b) => b.type === 'actions').elements as any[];
const teamsActions = (card: any) => (card.body as any[]).find((e) => e.type === 'ActionSet').actions as any[];

describe('a critical approval is confirmed on every platform', () => {
  it('the console answers the first approve with the confirmation, repeating action, target and value, and records nothing until it is posted again with confirm=yes', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const id = await payout();

    // The script's request: a JSON confirmation, nothing recorded.
    const first = await decide(alice, id, { vote: 'approve', reason: 'invoice checked' });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({
      ok: false,
      why: 'confirmation_required',
      confirmation: { question: 'Approve a critical action?', action: 'payments · payout', target: 'iban:DE89370400440532013000', value: '€24,800.00' },
    });
    // The plain form post: a page that repeats the facts and posts again with confirm=yes.
    const plain = await decide(alice, id, { vote: 'approve', reason: 'invoice <checked>' }, HTML_ACCEPT);
    expect(plain.status).toBe(200);
    const html = await plain.text();
    for (const part of ['Approve a critical action?', 'payments · payout', 'iban:DE89370400440532013000', '€24,800.00']) expect(html).toContain(part);
    expect(html).toMatch(/<input type="hidden" name="confirm" value="yes">/);
    expect(html).toContain(`<input type="hidden" name="csrf" value="${alice.csrf}">`);
    expect(html).toContain('value="invoice &lt;checked&gt;"');
    expect(await votesOn(id)).toEqual([]);
    expect((await proposalOf(id)).approvals).toEqual([]);

    // The second post is held to the same CSRF and origin checks.
    expect((await decide({ ...alice, csrf: 'forged' }, id, { vote: 'approve', confirm: 'yes' })).status).toBe(403);
    expect((await decide(alice, id, { vote: 'approve', confirm: 'yes' }, { ...JSON_ACCEPT, origin: 'https://evil.example' })).status).toBe(403);
    expect(await votesOn(id)).toEqual([]);

    const confirmed = await decide(alice, id, { vote: 'approve', confirm: 'yes', reason: 'invoice checked' });
    expect(await confirmed.json()).toMatchObject({ ok: true, status: 'pending', message: expect.stringContaining('1 of 2') });
    expect((await proposalOf(id)).approvals).toEqual([expect.objectContaining({ person: 'alice', platform: 'console', vote: 'approve', reason: 'invoice checked' })]);
  });

  it('the console asks nothing before a refusal (it is refused at once) or before a deny', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const id = await payout();
    expect(await (await decide(alice, id, { vote: 'approve', confirm: 'yes' })).json()).toMatchObject({ ok: true });
    // Already counted: no confirmation to click through first.
    expect(await (await decide(alice, id, { vote: 'approve' })).json()).toMatchObject({ ok: false, why: 'already_voted', message: 'Your decision on this proposal is already counted.' });
    const bob = await signInWithKey(app.url, 'bob', CONSOLE_KEYS.bob);
    expect(await (await decide(bob, id, { vote: 'deny', reason: 'wrong account' })).json()).toMatchObject({ ok: true, status: 'denied' });
  });

  it('Slack and Teams cards repeat the value in their confirmation too', async () => {
    const id = await payout();
    const [approve] = slackActions(await slackCard(id));
    expect(approve.confirm.text.text).toContain('payments · payout on iban:DE89370400440532013000');
    expect(approve.confirm.text.text).toContain('€24,800.00');
  });
});

describe('step-up: approvals of a step_up rule count only from a fresh console sign-in', () => {
  it('Slack and Teams show "Approve in the console" (a link to its page) in place of Approve, and keep Deny', async () => {
    const id = await vaultRead();
    const link = `${app.url}/console/proposals/${id}`;
    const onSlack = slackActions(await slackCard(id));
    expect(onSlack.map((e) => [e.text.text, e.url ?? null])).toEqual([
      ['Approve in the console', link],
      ['Deny…', null],
    ]);
    expect(onSlack.some((e) => e.action_id === 'countersign_approve')).toBe(false);
    const onTeams = teamsActions(adaptive(await teamsCard(id)));
    expect(onTeams.map((a) => [a.type, a.title, a.url ?? a.verb])).toEqual([
      ['Action.OpenUrl', 'Approve in the console', link],
      ['Action.Execute', 'Deny', 'countersign.deny'],
    ]);
  });

  it('an old or forged Approve click from Slack or Teams is refused with its own sentence and audited', async () => {
    const id = await vaultRead();
    const card = await slackCard(id);
    await postToSlackEndpoint(app.url, SLACK_SECRET, payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', channel: 'C0VAULT', messageTs: card.ts! })));
    const told = await waitFor(() => slack.callsTo('chat.postEphemeral').find((c) => c.args['user'] === 'U0ALICE' && String(c.args['text']).includes('console')), { what: 'Slack refusal' });
    const sentence = 'Not counted: approvals of this proposal count only in the console, from someone who signed in there within the last 5 minutes.';
    expect(String(told.args['text'])).toContain(sentence);

    const teams = await teamsCard(id);
    const answer = await postActivity(app.url, cardInvoke(connector.serviceUrl, { conversation: teams.conversation!, message: teams.activityId! }, { aad: AAD.bob }, 'countersign.approve', { proposal: id }));
    expect(answer.status).toBe(200);
    expect(JSON.stringify(answer.json.value)).toContain(sentence);

    const p = await proposalOf(id);
    expect(p).toMatchObject({ status: 'pending', approvals: [] });
    const refused = await waitFor(async () => ((await votesOn(id)).length >= 2 ? await votesOn(id) : null), { what: 'both refusals audited' });
    expect(refused.map((e: any) => [e.type, e.actor, e.data.platform, e.data.why]).sort()).toEqual([
      ['approval_refused', 'person:alice', 'slack', 'step_up_required'],
      ['approval_refused', 'person:bob', 'teams', 'step_up_required'],
    ]);
  });

  it('the console takes the approval of someone who signed in within 5 minutes, even on a route that does not list it, and records when they signed in', async () => {
    const id = await vaultRead();
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    offset = 4 * MINUTE;
    const card = await page(alice, `/console/proposals/${id}/card`);
    expect(card).toContain('value="approve"');
    expect(await (await decide(alice, id, { vote: 'approve' })).json()).toMatchObject({ ok: true, status: 'approved' });
    const [recorded] = await votesOn(id);
    expect(recorded).toMatchObject({ type: 'approval_recorded', data: { person: 'alice', platform: 'console', vote: 'approve', signed_in_at: expect.any(String) } });
    expect(Date.parse(recorded.data.signed_in_at)).toBeLessThanOrEqual(Date.now());
  });

  it('after 5 minutes the console shows a note and "Sign in again" instead of Approve, refuses a stale approve, and counts it after a new sign-in', async () => {
    const id = await vaultRead();
    const other = await vaultRead();
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    offset = 6 * MINUTE;

    const card = await page(alice, `/console/proposals/${id}/card`);
    expect(card).not.toContain('value="approve"');
    expect(card).toContain('value="deny"'); // refusing is always safe
    expect(card).toContain('Approving this proposal needs a fresh sign-in');
    const again = /<a href="([^"]+)">Sign in again<\/a>/.exec(card)?.[1]?.replace(/&amp;/g, '&');
    expect(again).toBe(`/console/login?again=1&next=%2Fconsole%2Fproposals%2F${id}`);

    // The server refuses a stale approve (an old page, a script), with the sentence, and audits it.
    const stale = await decide(alice, id, { vote: 'approve' });
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ ok: false, why: 'step_up_required', message: expect.stringContaining('Not counted') });
    expect(await votesOn(id)).toEqual([expect.objectContaining({ type: 'approval_refused', data: expect.objectContaining({ person: 'alice', platform: 'console', why: 'step_up_required', signed_in_at: expect.any(String) }) })]);
    // A deny is never held back.
    expect(await (await decide(alice, other, { vote: 'deny', reason: 'rotate it next week' })).json()).toMatchObject({ ok: true, status: 'denied' });

    // Signing in again (the link shows the form although a session exists) starts a fresh session and comes back.
    const form = await fetch(`${app.url}${again}`, { headers: { cookie: alice.cookie } });
    expect(form.status).toBe(200);
    const formHtml = await form.text();
    const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!;
    const loginCsrf = /name="csrf" value="([^"]+)"/.exec(formHtml)?.[1] ?? '';
    expect(formHtml).toContain(`name="next" value="/console/proposals/${id}"`);
    const signIn = await fetch(`${app.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${loginCookie}; ${alice.cookie}`, origin: app.url },
      body: new URLSearchParams({ csrf: loginCsrf, person: 'alice', key: CONSOLE_KEYS.alice, next: `/console/proposals/${id}` }).toString(),
    });
    expect(signIn.status).toBe(303);
    expect(signIn.headers.get('location')).toBe(`/console/proposals/${id}`);
    const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
    // The old session is gone.
    expect((await fetch(`${app.url}/console`, { headers: { cookie: alice.cookie }, redirect: 'manual' })).status).toBe(303);
    const fresh = { cookie, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(await page({ cookie }, '/console'))?.[1] ?? '' };
    expect(await page(fresh, `/console/proposals/${id}/card`)).toContain('value="approve"');
    expect(await (await decide(fresh, id, { vote: 'approve' })).json()).toMatchObject({ ok: true, status: 'approved' });
  });

  it('returns from a sign-in to a proposal page of this console only, never elsewhere', async () => {
    for (const next of ['https://evil.example/', '//evil.example/console/proposals/p_00000000000000000000000000', '/console/proposals/../audit']) {
      const form = await fetch(`${app.url}/console/login?again=1&next=${encodeURIComponent(next)}`);
      const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!;
      const text = await form.text();
      expect(text).not.toContain('evil.example');
      const loginCsrf = /name="csrf" value="([^"]+)"/.exec(text)?.[1] ?? '';
      const signIn = await fetch(`${app.url}/console/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie, origin: app.url },
        body: new URLSearchParams({ csrf: loginCsrf, person: 'alice', key: CONSOLE_KEYS.alice, next }).toString(),
      });
      expect(signIn.headers.get('location')).toBe('/console');
    }
  });
});

describe('loose ends of the decision path', () => {
  it('the console names every approver in its result line and counts approvals with the words every platform uses', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const bob = await signInWithKey(app.url, 'bob', CONSOLE_KEYS.bob);
    const id = await payout();
    await decide(alice, id, { vote: 'approve', confirm: 'yes' });
    expect(await page(alice, `/console/proposals/${id}/card`)).toContain('1 of 2 approvals: alice');
    await decide(bob, id, { vote: 'approve', confirm: 'yes' });
    const card = await page(alice, `/console/proposals/${id}/card`);
    expect(card).toMatch(/<p class="resolution status-approved"><b>Approved<\/b> by alice, bob/);
    expect(card).toContain('2 of 2 approvals: alice, bob');
  });

  it("a click on a revoked agent's proposal left pending is refused at once, in the console and in Slack, and audited", async () => {
    const id = await propose({ intent: `Refund invoice 4711 #${++made}`, context: { value: { amount: 42, currency: 'EUR' } } }); // payments, high: finance
    const card = await slackCard(id);
    // A revocation whose process stopped right after pulling the switch leaves it pending.
    await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).markAgentRevoked('ops-agent', Date.now());
    try {
      const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
      const answer = await decide(alice, id, { vote: 'approve' });
      expect(answer.status).toBe(409);
      expect(await answer.json()).toMatchObject({ ok: false, why: 'agent_revoked', message: 'Not counted: agent "ops-agent" is revoked, so none of its proposals will run.' });
      await postToSlackEndpoint(app.url, SLACK_SECRET, payloadBody(blockActionsPayload({ user: 'U0BOB', proposalId: id, action: 'countersign_approve', messageTs: card.ts! })));
      await waitFor(() => slack.callsTo('chat.postEphemeral').find((c) => c.args['user'] === 'U0BOB' && String(c.args['text']).includes('is revoked')), { what: 'Slack refusal' });
      expect(await proposalOf(id)).toMatchObject({ status: 'pending', approvals: [] });
      const refused = await waitFor(async () => ((await votesOn(id)).length >= 2 ? await votesOn(id) : null), { what: 'both refusals audited' });
      expect(refused.map((e: any) => [e.actor, e.data.platform, e.data.why]).sort()).toEqual([
        ['person:alice', 'console', 'agent_revoked'],
        ['person:bob', 'slack', 'agent_revoked'],
      ]);
    } finally {
      const restored = await fetch(`${app.url}/v1/agents/ops-agent/restore`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      expect(restored.status).toBe(200);
    }
  });
});
