import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.ts';
import { loadConfig } from '../../src/config.ts';
import { PLATFORMS } from '../../src/wiring/platforms.ts';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { blockActionsPayload, slashCommandBody, startFakeSlack, viewSubmissionPayload, waitFor, type ClickSpec, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';
import { startFakeSocketMode, type FakeSocketMode } from '../helpers/fake-socket-mode.ts';
import { logSink } from '../helpers/observe.ts';

// Slack over Socket Mode, against a fake Socket Mode server: countersign asks the fake Web
// API for a connection (apps.connections.open, with the app-level token), connects to the
// ws://127.0.0.1 URL it hands out, and gets clicks, modal submissions and slash commands as
// envelopes that it must acknowledge by envelope_id. No signing secret, no /slack/ route.

const APP_TOKEN = 'xapp-1-A0TEST-socket-mode-tests';
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }');

let fake: FakeSlack;
let socket: FakeSocketMode;
let app: TestApp;
const log = logSink();

beforeAll(async () => {
  [fake, socket] = await Promise.all([startFakeSlack(), startFakeSocketMode()]);
  fake.socketMode({ appToken: APP_TOKEN, url: () => socket.url() });
  app = await startTestApp({
    policy: POLICY,
    env: { SLACK_BOT_TOKEN: 'xoxb-socket-tests', SLACK_APP_TOKEN: APP_TOKEN, SLACK_API_URL: fake.apiUrl, LOG_LEVEL: 'debug' },
    // A reconnect waits for this (Bolt's default is 5 s).
    start: { platformOptions: { slack: { socketPingTimeoutMs: 1500, socketRetryMs: 100 } }, logStream: log.stream },
  });
});
afterAll(async () => {
  await app.running.stop();
  await Promise.all([fake.close(), socket.close()]);
});

const mentions = (c: SlackCall, id: string) => JSON.stringify(c.args).includes(id);
const statusOf = async (id: string) => (await app.billing.request('GET', `/v1/proposals/${id}`)).body.status as string;
const auditOf = async (id: string): Promise<{ type: string; actor: string; data: any }[]> => (await app.admin(`/v1/audit?proposal_id=${id}&limit=100`)).body.events;

async function proposeWithCard(overrides: Record<string, unknown> = {}): Promise<{ id: string; card: SlackCall }> {
  const res = await app.billing.propose(proposalBody(overrides));
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && mentions(c, id)), { what: `card of ${id}` });
  return { id, card };
}

// Each proposal on a target of its own: the policy sums a target's recent payments (issue 17), and
// the earlier ones here would make a later one need two approvals.
let targets = 0;
const ownTarget = (amount = 420) => ({
  action: { tool: 'payments', operation: 'refund', target: `stripe:cus_socket_${++targets}`, parameters: { amount, currency: 'EUR' } },
  context: { ...(proposalBody().context as object), value: { amount, currency: 'EUR' } },
});

const click = (spec: ClickSpec, envelope_id?: string) =>
  socket.send({ type: 'interactive', payload: blockActionsPayload(spec), ...(envelope_id === undefined ? {} : { envelope_id }) });

/** `/countersign <text>` as Slack sends it over the socket; resolves with the answer posted to its response_url. */
async function command(user: string, text: string): Promise<any> {
  const responseUrl = fake.responseUrl();
  const payload = Object.fromEntries(new URLSearchParams(slashCommandBody(user, text, responseUrl)));
  const ack = await socket.send({ type: 'slash_commands', payload, accepts_response_payload: true });
  expect(ack.envelope_id).toBeTruthy();
  const path = new URL(responseUrl).pathname;
  return (await waitFor(() => fake.responses.find((r) => r.path === path), { what: `answer to "${text}"` })).body;
}

describe('Slack over Socket Mode', () => {
  it('connects with the app token, posts cards with the bot token, and serves no /slack/ route', async () => {
    await socket.waitForConnections(1);
    const open = fake.callsTo('apps.connections.open');
    expect(open.length).toBeGreaterThanOrEqual(1);
    expect(open.every((c) => c.token === APP_TOKEN && c.ok)).toBe(true);
    const { card } = await proposeWithCard();
    expect(card.token).toBe('xoxb-socket-tests');
    expect(card.args['channel']).toBe('C0FINANCE');
    // Nothing comes over HTTP in Socket Mode: an unsigned path does not exist.
    expect((await fetch(`${app.url}/slack/events`, { method: 'POST', body: 'payload={}' })).status).toBe(404);
  });

  it('a click on the socket is acked by envelope_id and approves; the card is updated and the vote audited', async () => {
    const { id, card } = await proposeWithCard(ownTarget());
    const ack = await click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! }, 'env-approve-1');
    expect(ack).toEqual({ envelope_id: 'env-approve-1', payload: {} });
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'approved' });
    await waitFor(() => fake.callsTo('chat.update').some((u) => u.args['ts'] === card.ts && JSON.stringify(u.args['blocks']).includes('Approved')), { what: 'final card' });
    const votes = (await auditOf(id)).filter((e) => e.type === 'approval_recorded');
    expect(votes.map((e) => e.actor)).toEqual(['person:alice']);
  });

  it('the deny modal: a missing reason is answered in the ack (response_action errors), a reason denies', async () => {
    const { id, card } = await proposeWithCard(ownTarget());
    await click({ user: 'U0BOB', proposalId: id, action: 'countersign_deny', messageTs: card.ts! });
    const open = await waitFor(() => fake.callsTo('views.open').find((c) => mentions(c, id)), { what: 'views.open' });
    const view = open.args['view'];
    const empty = await socket.send({ type: 'interactive', payload: viewSubmissionPayload('U0BOB', view, '  '), accepts_response_payload: true });
    expect(empty.payload).toMatchObject({ response_action: 'errors', errors: { reason: expect.any(String) } });
    expect(await statusOf(id)).toBe('pending');
    const ok = await socket.send({ type: 'interactive', payload: viewSubmissionPayload('U0BOB', view, 'Charged once only'), accepts_response_payload: true });
    expect(ok.payload ?? {}).toEqual({});
    await waitFor(async () => (await statusOf(id)) === 'denied', { what: 'denied' });
    expect(JSON.stringify((await auditOf(id)).find((e) => e.type === 'decided'))).toContain('Charged once only');
  });

  it('the slash command answers over the socket; its batch button approves; away is set and cleared', async () => {
    const { id } = await proposeWithCard(ownTarget());
    const pending = await command('U0BOB', 'pending');
    expect(pending.response_type).toBe('ephemeral');
    expect(JSON.stringify(pending.blocks)).toContain(id);
    const button = pending.blocks
      .filter((b: any) => b.type === 'actions')
      .flatMap((b: any) => b.elements)
      .find((e: any) => e.action_id === 'countersign_approve_batch' && JSON.parse(e.value).i.includes(id));
    expect(button).toBeDefined();
    const payload = blockActionsPayload({ user: 'U0BOB', proposalId: 'unused', action: 'countersign_approve', responseUrl: fake.responseUrl() });
    (payload['actions'] as any[])[0] = { type: 'button', action_id: 'countersign_approve_batch', block_id: 'batch:0', value: button.value, text: { type: 'plain_text', text: 'Approve all' }, action_ts: `${Date.now() / 1000}` };
    await socket.send({ type: 'interactive', payload });
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'batch approved' });
    const until = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
    expect((await command('U0CAROL', `away until ${until} to @alice`)).text).toBe(`You are away until the end of ${until} (UTC): alice decides for you.`);
    expect((await command('U0CAROL', 'back')).text).toBe('Welcome back: alice no longer decides for you.');
  });

  it('a duplicate envelope (same envelope_id, or the same click in a new envelope) counts once', async () => {
    // Two approvals needed: a duplicated first click must not be taken for the second.
    const { id, card } = await proposeWithCard(ownTarget(24800));
    const spec: ClickSpec = { user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! };
    const payload = blockActionsPayload(spec);
    const acks = [
      await socket.send({ type: 'interactive', payload, envelope_id: 'env-dup-1' }),
      await socket.send({ type: 'interactive', payload, envelope_id: 'env-dup-1' }),
      await socket.send({ type: 'interactive', payload, envelope_id: 'env-dup-2' }),
    ];
    expect(acks.map((a) => a.envelope_id)).toEqual(['env-dup-1', 'env-dup-1', 'env-dup-2']);
    await waitFor(async () => (await auditOf(id)).some((e) => e.type === 'approval_recorded'), { what: 'first vote' });
    // Every duplicate has been handled once its ack came back and its work settled: a second
    // vote would have approved the proposal by now.
    const repeats = () => fake.callsTo('chat.postEphemeral').filter((c) => c.args['user'] === 'U0ALICE' && mentions(c, 'already counted'));
    await waitFor(() => repeats().length >= 2, { what: '"already counted" for both repeats' });
    expect(await statusOf(id)).toBe('pending');
    expect((await auditOf(id)).filter((e) => e.type === 'approval_recorded')).toHaveLength(1);
    await click({ ...spec, user: 'U0BOB' });
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'approved by the second approver' });
    expect((await auditOf(id)).filter((e) => e.type === 'approval_recorded').map((e) => e.actor).sort()).toEqual(['person:alice', 'person:bob']);
  });

  it('envelopes Slack would not send: a payload nested 5,000 deep or naming a proposal in an unknown shape decides nothing, a 2 MB click counts once, the next click works', async () => {
    const { id, card } = await proposeWithCard(ownTarget());
    let deep: Record<string, unknown> = { type: 'block_actions' };
    for (let i = 0; i < 5_000; i++) deep = { nested: deep };
    const big = blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    (big as Record<string, unknown>)['padding'] = 'x'.repeat(2 * 1024 * 1024);
    const odd = { type: 'block_actions', user: { id: 'U0ALICE' }, actions: [{ action_id: 'countersign_approve', value: { id } }] };
    // An ack may or may not come for what cannot be read; what counts is that nothing is decided and the socket lives on.
    for (const payload of [deep, odd]) await socket.send({ type: 'interactive', payload }, 1_000).catch(() => undefined);
    expect(await statusOf(id)).toBe('pending');
    expect((await auditOf(id)).filter((e) => e.type === 'approval_recorded')).toEqual([]);
    // A 2 MB envelope of a real click is Slack's own shape; it is processed like any other (no size limit of ours on the socket).
    await socket.send({ type: 'interactive', payload: big }, 3_000).catch(() => undefined);
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'the padded click approved' });
    expect((await auditOf(id)).filter((e) => e.type === 'approval_recorded')).toHaveLength(1);
    const next = await proposeWithCard(ownTarget());
    await click({ user: 'U0ALICE', proposalId: next.id, action: 'countersign_approve', messageTs: next.card.ts! });
    await waitFor(async () => (await statusOf(next.id)) === 'approved', { what: 'the next click approved' });
  });

  it("reconnects after Slack's disconnect (refresh_requested), through a refused reconnect; the next click works", async () => {
    const opened = socket.opened();
    const asked = fake.callsTo('apps.connections.open').length;
    // Slack refusing the token on the way back is logged and tried again, not a crash.
    fake.failNext('apps.connections.open', 1, { error: 'invalid_auth' });
    socket.disconnect('refresh_requested');
    await socket.waitForConnections(opened + 1);
    expect(fake.callsTo('apps.connections.open').slice(asked).map((c) => c.ok)).toEqual([false, true]);
    await waitFor(() => socket.open() === 1, { what: 'the old connection closed' });
    const { id, card } = await proposeWithCard(ownTarget());
    const ack = await click({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! });
    expect(ack.envelope_id).toBeTruthy();
    await waitFor(async () => (await statusOf(id)) === 'approved', { what: 'approved after the reconnect' });
  });

  it('stopping countersign closes the socket; no token or envelope content was logged, even at debug', async () => {
    expect(socket.open()).toBe(1);
    await app.running.stop();
    await waitFor(() => socket.open() === 0, { what: 'socket closed' });
    const text = log.lines().map((l) => JSON.stringify(l)).join('\n');
    expect(text).toContain('Slack Socket Mode connected');
    expect(text).toContain('Slack Socket Mode could not reconnect: SLACK_APP_TOKEN was refused by Slack (invalid_auth)');
    for (const secret of [APP_TOKEN, 'xoxb-socket-tests', 'Charged once only', '/respond/', 'env-dup-1']) expect(text).not.toContain(secret);
  });
});

describe('Socket Mode configuration', () => {
  it('refuses a token that is not an app-level token, and a bot token without either way in, naming SLACK_APP_TOKEN', () => {
    const load = (env: Record<string, string>) => () => loadConfig(env, PLATFORMS);
    expect(load({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xoxb-2' })).toThrow(/SLACK_APP_TOKEN must be an app-level token \(it starts with xapp-/);
    expect(load({ SLACK_APP_TOKEN: APP_TOKEN })).toThrow(/SLACK_APP_TOKEN is set .*SLACK_BOT_TOKEN/);
    expect(load({ SLACK_BOT_TOKEN: 'xoxb-1' })).toThrow(/SLACK_APP_TOKEN .*SLACK_SIGNING_SECRET/);
    expect(load({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' })).not.toThrow();
  });

  it('an app token Slack refuses stops the start with an error naming SLACK_APP_TOKEN', async () => {
    const refused = startTestApp({ policy: POLICY, env: { SLACK_BOT_TOKEN: 'xoxb-socket-tests', SLACK_APP_TOKEN: 'xapp-1-revoked', SLACK_API_URL: fake.apiUrl } });
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(/SLACK_APP_TOKEN was refused by Slack \(invalid_auth\)/);
    expect(fake.callsTo('apps.connections.open').some((c) => c.token === 'xapp-1-revoked' && !c.ok)).toBe(true);
  });
});
