import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, signInWithKey } from '../helpers/console.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';
import { cardInvoke, postActivity, startFakeBotConnector, TENANT, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, viewSubmissionPayload, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';

// Issue 17 part 4: approve with edits. An approver changes editable parameters; the revision
// is what is approved, what the token's action_digest names and what the executor receives.
// The real countersign over HTTP and Redis; Slack's modal through the fake Web API and signed
// interactions; Teams through the fake Bot Connector; the console over its form.

const canonicalize = canonicalizeModule as unknown as (v: unknown) => string;
const digest = (action: unknown) => createHash('sha256').update(canonicalize(action)).digest('base64url');
const SECRET = 'slack-signing-secret-for-edits';
const VAULT = '19:finance@thread.tacv2';
const AAD_ALICE = '00000000-0000-0000-0000-0000000a11ce';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function policy(executorUrl: string, serviceUrl: string): string {
  return `
version: 1
agents:
  - id: billing-agent
    sponsors: [dana]
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
  alice: { slack: U0ALICE, teams: ${AAD_ALICE}, console_key_sha256: ${sha(CONSOLE_KEYS.alice)} }
  bob: { slack: U0BOB, console_key_env: BOB_CONSOLE_KEY }
  carol: { slack: U0CAROL }
  dana: { slack: U0DANA }
  erin: { slack: U0ERIN }
groups:
  finance: [alice, bob, carol, dana]
channels:
  finance: { slack: C0FINANCE, console: true, teams: { conversation: "${VAULT}", service_url: "${serviceUrl}", tenant: ${TENANT} } }
executors:
  payments: { url: ${executorUrl}/execute, timeout: 2s }
rules:
  - name: big-payments
    when: action.tool == "payments" && context.value.amount > 10000.0
    effect: approve
    risk: critical
    route: finance
    approvers: finance
    approvals: 2
    editable: [amount, memo]
  - name: transfers
    when: action.tool == "payments" && action.operation == "transfer"
    effect: approve
    risk: high
    route: finance
    approvers: finance
    approvals: 2
    editable: [amount, memo]
  - name: payouts
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
    editable: [amount, memo]
default: { effect: deny }
`;
}

let app: TestApp;
let slack: FakeSlack;
let connector: FakeBotConnector;
let executor: FakeHttpServer;

beforeAll(async () => {
  slack = await startFakeSlack();
  connector = await startFakeBotConnector();
  executor = await startFakeHttpServer();
  app = await startTestApp({
    policy: policy(executor.url, connector.serviceUrl),
    env: { ...CONSOLE_ENV, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl },
  });
  return async () => {
    await slack.close();
    await connector.close();
    await executor.close();
  };
});

let made = 0;
async function propose(operation: string, amount: number, agent: 'ops' | 'billing' = 'ops'): Promise<string> {
  const body = {
    intent: `Pay supplier invoice SUP-${++made}`,
    action: { tool: 'payments', operation, target: `iban:DE89370400440532013${String(made).padStart(3, '0')}`, parameters: { amount, currency: 'EUR', memo: `SUP-${made}` } },
    context: { destination: 'external', value: { amount, currency: 'EUR' } },
  };
  const res = await app[agent].propose(body);
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const proposalOf = async (id: string) => (await app.admin(`/v1/proposals/${id}`)).body;
const auditOf = async (id: string) => (await app.admin(`/v1/audit?proposal_id=${id}&limit=200`)).body.events as any[];
const cardOf = (id: string) => waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: `Slack card of ${id}` });
const send = (payload: Record<string, unknown>) => postToSlackEndpoint(app.url, SECRET, payloadBody(payload));

/** Clicks Edit on the card as `user` and returns the modal Slack was asked to open. */
async function openEdit(user: string, id: string): Promise<any> {
  const card = await cardOf(id);
  const before = slack.callsTo('views.open').length;
  const click = blockActionsPayload({ user, proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
  ((click['actions'] as any[])[0] as any).action_id = 'countersign_edit';
  expect((await send(click)).status).toBe(200);
  const open = await waitFor(() => slack.callsTo('views.open').slice(before).find((c) => String(c.args['view']?.private_metadata ?? '').includes(id)), { what: 'edit modal' });
  return open.args['view'];
}

/** The modal submitted as `user` with these typed values (by parameter). */
function submitEdit(user: string, view: any, typed: Record<string, string>) {
  const payload = viewSubmissionPayload(user, view, null) as any;
  payload.view.state.values = Object.fromEntries(Object.entries(typed).map(([k, v]) => [`edit:${k}`, { value: { type: 'plain_text_input', value: v } }]));
  return send(payload);
}

const ephemeralTo = (user: string, contains: string) => waitFor(() => slack.callsTo('chat.postEphemeral').find((c) => c.args['user'] === user && String(c.args['text']).includes(contains)), { what: `private reply to ${user}: ${contains}` });

async function jwks() {
  const res = await fetch(`${app.url}/.well-known/jwks.json`);
  return createLocalJWKSet((await res.json()) as { keys: any[] });
}

describe('approve with edits', () => {
  it('an edited approval from the Slack modal runs exactly the edited action: the executor gets the revised parameters under a token whose digest is the revision; the agent reads the revision', async () => {
    const id = await propose('payout', 2480);
    const buttons = ((await cardOf(id)).args['blocks'] as any[]).find((b) => b.type === 'actions').elements.map((e: any) => e.action_id);
    expect(buttons).toEqual(['countersign_approve', 'countersign_edit', 'countersign_deny']);
    const view = await openEdit('U0BOB', id);
    const inputs = view.blocks.filter((b: any) => b.type === 'input');
    expect(inputs.map((b: any) => [b.block_id, b.element.initial_value])).toEqual([['edit:amount', '2480'], ['edit:memo', expect.stringMatching(/^SUP-/)]]);
    expect(JSON.parse(view.private_metadata)).toMatchObject({ p: id, v: 1 });

    const memo = inputs[1].element.initial_value as string;
    const first = await submitEdit('U0BOB', view, { amount: '2,000', memo });
    expect(first.status).toBe(200);
    expect(first.json).toBeNull();
    // Slack delivering the submission again: the effect of one.
    expect((await submitEdit('U0BOB', view, { amount: '2,000', memo })).status).toBe(200);

    const [req] = await executor.waitFor(1, (r) => r.body?.proposal_id === id);
    expect(req!.body.action.parameters).toEqual({ amount: 2000, currency: 'EUR', memo });
    const token = /^Bearer (\S+)$/.exec(String(req!.headers.authorization))![1]!;
    const { payload } = await jwtVerify(token, await jwks(), { issuer: app.url, audience: 'payments' });
    expect(payload.action_digest).toBe(digest(req!.body.action));
    expect(payload.approvers).toEqual(['bob']);
    expect(executor.requests.filter((r) => r.body?.proposal_id === id)).toHaveLength(1);
    expect(executor.requests.some((r) => r.body?.proposal_id === id && r.body.action.parameters.amount === 2480)).toBe(false);

    const read = (await app.ops.request('GET', `/v1/proposals/${id}`)).body;
    expect(read.action.parameters.amount).toBe(2000);
    expect(read.proposed_action.parameters.amount).toBe(2480);
    expect(read.context.value.amount).toBe(2000); // the declared value followed the edit
    expect(read.revision).toMatchObject({ number: 1, by: 'bob', platform: 'slack', changes: [{ key: 'amount', from: 2480, to: 2000 }], superseded: [] });
    expect(read.revision.proposed_context.value.amount).toBe(2480);

    const audit = await waitFor(async () => {
      const events = await auditOf(id);
      return events.some((e) => e.type === 'execution_finished') ? events : null;
    }, { what: 'execution finished' });
    const revised = audit.filter((e) => e.type === 'revised');
    expect(revised).toHaveLength(1);
    expect(revised[0].data).toMatchObject({ number: 1, by: 'bob', changes: [{ key: 'amount', from: 2480, to: 2000 }], action_digest: payload.action_digest });
    // Proposed, approved and executed actions kept apart: the proposal's first entry names what the agent sent.
    expect(audit.find((e) => e.type === 'proposal_received').data.action.parameters.amount).toBe(2480);
    expect(audit.find((e) => e.type === 'token_issued').data.action_digest).toBe(payload.action_digest);
    expect(audit.find((e) => e.type === 'execution_started').data.action_digest).toBe(payload.action_digest);
    expect(audit.filter((e) => e.type === 'approval_recorded').map((e) => e.actor)).toEqual(['person:bob']);

    // The card says what changed, by whom.
    const updated = await waitFor(() => slack.callsTo('chat.update').find((c) => JSON.stringify(c.args['blocks'] ?? '').includes('amount 2,480 → 2,000 by bob')), { what: 'card with the revision' });
    expect(updated).toBeDefined();
  });

  it('with a quorum of 2: approvals of the original no longer count after an edit, the editor’s does, and the rest must approve the revision; an edit over 10,000 makes it critical', async () => {
    const id = await propose('transfer', 5000);
    const view = await openEdit('U0BOB', id); // opened before alice's vote
    const card = await cardOf(id);
    await send(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! }));
    await waitFor(async () => (await proposalOf(id)).approvals.length === 1, { what: 'alice approved' });

    // The modal bob opened before alice voted is stale: refused, nothing stored.
    await submitEdit('U0BOB', view, { amount: '4000' });
    await ephemeralTo('U0BOB', 'changed since you opened it');
    expect(await proposalOf(id)).toMatchObject({ revision: null, approvals: [{ person: 'alice' }] });

    const fresh = await openEdit('U0BOB', id);
    await submitEdit('U0BOB', fresh, { amount: '4000' });
    const revised = await waitFor(async () => {
      const p = await proposalOf(id);
      return p.revision !== null ? p : null;
    }, { what: 'revision' });
    expect(revised).toMatchObject({ status: 'pending', approvals: [{ person: 'bob' }], revision: { superseded: ['alice'] }, decision: { risk: 'high', approvals_required: 2 } });
    expect(executor.requests.some((r) => r.body?.proposal_id === id)).toBe(false);

    // alice's earlier approval is kept in the audit, and she approves again: now it runs, edited.
    await send(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! }));
    const [req] = await executor.waitFor(1, (r) => r.body?.proposal_id === id);
    expect(req!.body.action.parameters.amount).toBe(4000);
    const votes = (await auditOf(id)).filter((e) => e.type === 'approval_recorded').map((e) => e.data.person);
    expect(votes).toEqual(['alice', 'bob', 'alice']);

    // Raised over 10,000: the big-payments rule decides the revision too, and the stricter wins.
    const big = await propose('transfer', 5000);
    const v2 = await openEdit('U0CAROL', big);
    await submitEdit('U0CAROL', v2, { amount: '12000' });
    const critical = await waitFor(async () => {
      const p = await proposalOf(big);
      return p.revision !== null ? p : null;
    }, { what: 'critical revision' });
    expect(critical).toMatchObject({ status: 'pending', context: { value: { amount: 12000 } }, decision: { risk: 'critical', approvals_required: 2, rule: 'transfers', reasons: expect.arrayContaining(['edited action: rule "big-payments" (approve, critical risk)']) }, approvals: [{ person: 'carol' }] });
  });

  it('refuses, storing nothing, an edit of a key the rule does not list, a value of the wrong type, an edit from someone not an approver or from the sponsor', async () => {
    const id = await propose('transfer', 3000, 'billing');
    const view = await openEdit('U0BOB', id);
    const before = await proposalOf(id);

    const currency = await submitEdit('U0BOB', view, { amount: '3000', currency: 'USD' });
    expect(currency.json).toMatchObject({ response_action: 'errors', errors: { 'edit:currency': expect.stringContaining('currency: may not be edited (editable: amount, memo)') } });
    const typed = await submitEdit('U0BOB', view, { amount: 'lots' });
    expect(typed.json).toMatchObject({ response_action: 'errors', errors: { 'edit:amount': 'amount: must be a number' } });
    const same = await submitEdit('U0BOB', view, { amount: '3000' });
    expect(same.json).toBeNull();
    await ephemeralTo('U0BOB', 'the edit changes nothing');

    await submitEdit('U0ERIN', view, { amount: '10' });
    await ephemeralTo('U0ERIN', 'only members of "finance"');
    await submitEdit('U0DANA', view, { amount: '10' });
    await ephemeralTo('U0DANA', 'you sponsor agent "billing-agent"');

    const p = await proposalOf(id);
    expect(p).toEqual(before);
    expect(p).toMatchObject({ status: 'pending', approvals: [], revision: null, action: { parameters: { amount: 3000, currency: 'EUR' } } });
    const audit = await auditOf(id);
    expect(audit.some((e) => e.type === 'revised')).toBe(false);
    expect(audit.filter((e) => e.type === 'approval_refused').map((e) => [e.data.person, e.data.why, e.data.edit]).sort()).toEqual([
      ['dana', 'sponsor', true],
      ['erin', 'not_an_approver', true],
    ]);
  });

  it('the console: the card offers the edit fields; "Approve with edits" posts with the CSRF token and revises; without the token nothing is stored', async () => {
    const id = await propose('payout', 900);
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const page = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain(`action="/console/proposals/${id}/edit"`);
    expect(page).toMatch(/name="edit:amount" value="900"/);
    expect(page).toContain('Approve with edits');

    const post = (form: Record<string, string>) =>
      fetch(`${app.url}/console/proposals/${id}/edit`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: alice.cookie, origin: app.url, accept: 'application/json' },
        body: new URLSearchParams(form).toString(),
      });
    expect((await post({ version: '1', 'edit:amount': '850' })).status).toBe(403);
    expect(await proposalOf(id)).toMatchObject({ revision: null, approvals: [] });

    const ok = await post({ csrf: alice.csrf, version: '1', 'edit:amount': '850', 'edit:memo': 'SUP-console' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true });
    const [req] = await executor.waitFor(1, (r) => r.body?.proposal_id === id);
    expect(req!.body.action.parameters).toMatchObject({ amount: 850, memo: 'SUP-console' });
    const read = await proposalOf(id);
    expect(read.revision).toMatchObject({ by: 'alice', platform: 'console', changes: [{ key: 'amount', from: 900, to: 850 }, { key: 'memo', to: 'SUP-console' }] });
  });

  it('Teams: the card carries the inputs and "Approve with edits"; its invoke revises and answers with the card that says so', async () => {
    const id = await propose('transfer', 700);
    const posted = await waitFor(() => connector.callsTo('createConversation').find((c) => JSON.stringify(c.body).includes(id)), { what: 'Teams card' });
    const card = posted.body?.activity?.attachments?.[0]?.content ?? posted.body?.attachments?.[0]?.content;
    const edit = JSON.stringify(card);
    expect(edit).toContain('"verb":"countersign.edit"');
    expect(edit).toContain('"id":"edit:amount"');

    const answer = await postActivity(
      app.url,
      cardInvoke(connector.serviceUrl, { conversation: VAULT, message: posted.activityId ?? 'm1' }, { aad: AAD_ALICE }, 'countersign.edit', { proposal: id, version: 1, 'edit:amount': '650', 'edit:memo': 'SUP-teams' }),
    );
    expect(answer.status).toBe(200);
    expect(JSON.stringify(answer.json.value)).toContain('amount 700 → 650');
    const p = await proposalOf(id);
    expect(p).toMatchObject({ status: 'pending', approvals: [{ person: 'alice', platform: 'teams' }], action: { parameters: { amount: 650, memo: 'SUP-teams' } } });
  });
});
