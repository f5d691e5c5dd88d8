import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { channelMessage, postActivity, startFakeBotConnector, TENANT, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, slashCommandBody, startFakeSlack, waitFor, type FakeSlack, type SlackCall } from '../helpers/fake-slack.ts';
import { testRedis } from '../helpers/redis.ts';
import { comeBack, setAway } from '../../src/app/away.ts';
import type { AppDeps } from '../../src/app/deps.ts';
import { recordDecision } from '../../src/app/record-decision.ts';

// Away with a delegate (issue 17), end to end on one app: Slack's signed slash command and
// clicks, the console's /console/away page, a Teams message to the bot; real Redis, real HTTP.
// Everyone's absence lives in one hash, so each test sets the absences it relies on.

const SECRET = 'slack-signing-secret-for-away-tests';
const ALICE_KEY = 'alice-console-key-away-0123456789';
const ERIN_KEY = 'erin-console-key-away-0123456789';
const AAD = { alice: '00000000-0000-0000-0000-0000000a11ce', bob: '00000000-0000-0000-0000-000000000b0b' };
const SECOPS = '19:secops@thread.tacv2';
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

function policy(serviceUrl: string): string {
  return BASE_POLICY.replace('alice: { slack: U0ALICE, teams: 00000000-0000-0000-0000-0000000a11ce }', `alice: { slack: U0ALICE, teams: ${AAD.alice}, console_key_sha256: ${sha(ALICE_KEY)} }`)
    .replace('bob: { slack: U0BOB }', `bob: { slack: U0BOB, teams: ${AAD.bob} }`)
    .replace('erin: { slack: U0ERIN }', `erin: { slack: U0ERIN, console_key_sha256: ${sha(ERIN_KEY)} }`)
    .replace('sponsors: [dana]', 'sponsors: [dana, carol]')
    .replace('finance: { console: true }', 'finance: { slack: C0FINANCE, console: true }')
    .replace('secops: { console: true }', `secops: { teams: { conversation: "${SECOPS}", service_url: "${serviceUrl}", tenant: ${TENANT} } }`)
    .replace(
      '  - name: payments\n',
      '  - name: paired-payments\n    when: action.tool == "payments" && action.operation == "pair"\n    effect: approve\n    risk: medium\n    route: finance\n    approvers: finance\n    approvals: 2\n  - name: payments\n',
    );
}

const { redis } = testRedis();
let slack: FakeSlack;
let connector: FakeBotConnector;
let app: TestApp;

beforeAll(async () => {
  slack = await startFakeSlack();
  connector = await startFakeBotConnector();
  app = await startTestApp({ policy: policy(connector.serviceUrl), env: { SLACK_BOT_TOKEN: 'xoxb-away', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl } });
});
afterAll(async () => {
  await slack.close();
  await connector.close();
});

const DAY = 86_400_000;
const inDays = (n: number) => new Date(Date.now() + n * DAY).toISOString().slice(0, 10);
const awayKey = () => `{${app.prefix}}:away`;

/** `/countersign <text>` as `user`, signed like Slack; resolves with countersign's private answer. */
async function command(user: string, text: string): Promise<string> {
  const responseUrl = slack.responseUrl();
  const res = await postToSlackEndpoint(app.url, SECRET, slashCommandBody(user, text, responseUrl));
  expect(res.status).toBe(200);
  const path = new URL(responseUrl).pathname;
  return (await waitFor(() => slack.responses.find((r) => r.path === path), { what: `answer to ${text}` })).body.text as string;
}

async function propose(operation = 'refund'): Promise<string> {
  const res = await app.billing.propose(proposalBody({ action: { tool: 'payments', operation, target: 'stripe:cus_9' } }));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const approve = (user: string, proposalId: string) => postToSlackEndpoint(app.url, SECRET, payloadBody(blockActionsPayload({ user, proposalId, action: 'countersign_approve' })));
const events = async (id: string): Promise<{ type: string; actor: string; data: any }[]> => (await app.admin(`/v1/audit?proposal_id=${id}&limit=100`)).body.events;
const proposal = async (id: string) => (await app.billing.request('GET', `/v1/proposals/${id}`)).body;
const cardOf = (id: string): Promise<SlackCall> =>
  waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: `card of ${id}` });

async function refusedFor(id: string, actor: string): Promise<string> {
  const e = await waitFor(async () => (await events(id)).find((x) => x.type === 'approval_refused' && x.actor === actor), { what: `refusal of ${actor}` });
  return e.data.why as string;
}

describe('away in Slack', () => {
  it('erin (not in finance) approves for alice, away: audited as erin for alice, and the card says so', async () => {
    expect(await command('U0ALICE', `away until ${inDays(3)} to <@U0ERIN|erin>`)).toBe(`You are away until the end of ${inDays(3)} (UTC): erin decides for you.`);
    const id = await propose();
    const card = await cardOf(id);
    expect((await approve('U0ERIN', id)).status).toBe(200);
    // The token is handed on the first read after it is issued: keep it from whichever read that is.
    let token: string | undefined;
    const readUntilToken = async () => {
      const p = await proposal(id);
      token ??= p.execution_token;
      return token !== undefined;
    };
    await waitFor(readUntilToken, { what: 'approved, with its execution token' });
    const recorded = (await events(id)).find((e) => e.type === 'approval_recorded')!;
    expect(recorded.actor).toBe('person:erin');
    expect(recorded.data).toMatchObject({ person: 'alice', delegate: 'erin', vote: 'approve' });
    expect((await proposal(id)).approvals).toEqual([expect.objectContaining({ person: 'alice', delegate: 'erin' })]);
    await waitFor(() => slack.callsTo('chat.update').some((u) => u.args['ts'] === card.ts && JSON.stringify(u.args['blocks']).includes('erin for alice')), { what: 'card says erin for alice' });
    // Whoever reads the token (or the audit) downstream can tell who clicked for whom.
    const issued = await waitFor(async () => (await events(id)).find((e) => e.type === 'token_issued'), { what: 'token_issued' });
    expect(issued.data).toMatchObject({ approvers: ['alice'], delegates: { alice: 'erin' } });
    const claims = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).toMatchObject({ approvers: ['alice'], delegates: { alice: 'erin' } });
  });

  it('bob, in finance and alice\'s delegate, counts once on a proposal needing two', async () => {
    await command('U0ALICE', `away until ${inDays(2)} to @bob`);
    const id = await propose('pair');
    await approve('U0BOB', id);
    await waitFor(async () => (await proposal(id)).approvals.length === 1, { what: "bob's approval" });
    await approve('U0BOB', id);
    expect(await refusedFor(id, 'person:bob')).toBe('already_voted');
    const p = await proposal(id);
    expect(p.status).toBe('pending');
    expect(p.approvals.map((a: any) => [a.person, a.delegate ?? null])).toEqual([['bob', null]]);
  });

  it('a delegate who sponsors the agent is refused (sponsor) and audited', async () => {
    await command('U0ALICE', `away until ${inDays(2)} to @carol`);
    const id = await propose();
    await approve('U0CAROL', id);
    expect(await refusedFor(id, 'person:carol')).toBe('sponsor');
    expect((await proposal(id)).approvals).toEqual([]);
  });

  it('after its until the delegation counts for nothing; `/countersign back` ends it at once', async () => {
    // An absence whose end has passed, as Redis holds it afterwards.
    await redis.hset(awayKey(), 'alice', JSON.stringify({ delegate: 'erin', until: Date.now() - 1, set_at: Date.now() - DAY }));
    const lapsed = await propose();
    await approve('U0ERIN', lapsed);
    expect(await refusedFor(lapsed, 'person:erin')).toBe('not_an_approver');

    await command('U0ALICE', `away until ${inDays(1)} to @erin`);
    expect(await command('U0ALICE', 'back')).toBe('Welcome back: erin no longer decides for you.');
    const after = await propose();
    await approve('U0ERIN', after);
    expect(await refusedFor(after, 'person:erin')).toBe('not_an_approver');
    const log = (await app.admin('/v1/audit?actor=person:alice&limit=50')).body.events.map((e: any) => e.type);
    expect(log).toContain('away_cleared');
  });

  it("only alice sets alice's absence: an unsigned or forged command is 401 and stores nothing", async () => {
    await command('U0ALICE', 'back');
    const body = slashCommandBody('U0ALICE', `away until ${inDays(2)} to @erin`, slack.responseUrl());
    expect((await postToSlackEndpoint(app.url, SECRET, body, { signature: 'v0=' + '0'.repeat(64) })).status).toBe(401);
    expect((await postToSlackEndpoint(app.url, 'not-the-secret', body)).status).toBe(401);
    // Erin can only ever set erin's own.
    expect(await command('U0ERIN', 'away until 2099-01-01 to @alice')).toMatch(/^Not set: until: .*90 days/);
    expect(await redis.hget(awayKey(), 'alice')).toBeNull();
    expect(await command('U0ALICE', 'away')).toBe('You are not marked away.');
  });
});

describe('an absence that ends while a delegate\'s vote is in flight', () => {
  /** The app's own deps, whose first read of the absences is answered as it was, after `meanwhile` ran. */
  function readThen(meanwhile: (deps: AppDeps) => Promise<unknown>): AppDeps {
    const deps = app.running.deps;
    let first = true;
    const list: AppDeps['away']['list'] = async (now) => {
      const seen = await deps.away.list(now);
      if (first) {
        first = false;
        await meanwhile(deps);
      }
      return seen;
    };
    return { ...deps, away: { ...deps.away, list } };
  }

  it("alice's back between erin's read of the absences and her vote's commit: erin's approval does not count for alice", async () => {
    await command('U0ALICE', `away until ${inDays(2)} to @erin`);
    const id = await propose();
    const r = await recordDecision(readThen((deps) => comeBack(deps, 'alice')), { proposalId: id, person: 'erin', platform: 'slack', vote: 'approve' });
    expect(r.outcome).toMatchObject({ kind: 'refused', why: 'not_an_approver' });
    expect((await proposal(id)).approvals).toEqual([]);
    expect((await proposal(id)).status).toBe('pending');
  });

  it('alice naming carol instead of erin meanwhile: erin\'s approval does not count for alice either', async () => {
    await command('U0ALICE', `away until ${inDays(2)} to @erin`);
    const id = await propose();
    const r = await recordDecision(readThen((deps) => setAway(deps, 'alice', { delegate: 'carol', until: Date.now() + DAY })), { proposalId: id, person: 'erin', platform: 'slack', vote: 'approve' });
    expect(r.outcome).toMatchObject({ kind: 'refused', why: 'not_an_approver' });
    expect((await proposal(id)).approvals).toEqual([]);
    await command('U0ALICE', 'back');
  });
});

describe('away in the console and in Teams', () => {
  async function signIn(person = 'alice', key = ALICE_KEY): Promise<{ cookie: string; csrf: string }> {
    const form = await fetch(`${app.url}/console/login`);
    const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!;
    const loginCsrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
    const res = await fetch(`${app.url}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie, origin: app.url },
      body: new URLSearchParams({ csrf: loginCsrf, person, key }).toString(),
    });
    expect(res.status).toBe(303);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
    const page = await (await fetch(`${app.url}/console/away`, { headers: { cookie } })).text();
    return { cookie, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]! };
  }
  const post = (s: { cookie: string }, fields: Record<string, string>, origin = app.url) =>
    fetch(`${app.url}/console/away`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie, origin }, body: new URLSearchParams(fields).toString() });

  it('the console page sets and clears it, behind the CSRF and origin checks; the header says so', async () => {
    await command('U0ALICE', 'back');
    const s = await signIn();
    const until = inDays(5);
    expect((await post(s, { action: 'set', until, delegate: 'erin' })).status).toBe(403);
    expect((await post(s, { csrf: s.csrf, action: 'set', until, delegate: 'erin' }, 'https://evil.example')).status).toBe(403);
    expect(await redis.hget(awayKey(), 'alice')).toBeNull();

    const bad = await post(s, { csrf: s.csrf, action: 'set', until, delegate: '<script>x</script>' });
    expect(bad.status).toBe(400);
    const badPage = await bad.text();
    expect(badPage).toContain('delegate: &quot;&lt;script&gt;x&lt;/script&gt;&quot; is not a person in the policy');
    expect(badPage).not.toContain('<script>x');

    const set = await post(s, { csrf: s.csrf, action: 'set', until, delegate: 'erin' });
    expect(set.status).toBe(303);
    expect(set.headers.get('location')).toBe('/console/away?done=set');
    const pending = await (await fetch(`${app.url}/console`, { headers: { cookie: s.cookie } })).text();
    expect(pending).toContain(`You are away until the end of ${until} (UTC) (erin decides for you).`);
    expect(JSON.parse((await redis.hget(awayKey(), 'alice'))!)).toMatchObject({ delegate: 'erin', until: Date.parse(`${until}T00:00:00Z`) + DAY });

    expect((await post(s, { csrf: s.csrf, action: 'back' })).headers.get('location')).toBe('/console/away?done=back');
    expect(await redis.hget(awayKey(), 'alice')).toBeNull();
    expect(await (await fetch(`${app.url}/console/away`, { headers: { cookie: s.cookie } })).text()).not.toContain('id="away-banner"');
  });

  it("erin, alice's delegate, gets the console's buttons on alice's proposals, and her approval counts for alice", async () => {
    const id = await propose();
    const erin = await signIn('erin', ERIN_KEY);
    const before = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie: erin.cookie } })).text();
    expect(before).not.toContain(`action="/console/proposals/${id}/decide"`);
    await command('U0ALICE', `away until ${inDays(2)} to @erin`);
    const page = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie: erin.cookie } })).text();
    expect(page).toContain(`action="/console/proposals/${id}/decide"`);
    const res = await fetch(`${app.url}/console/proposals/${id}/decide`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: erin.cookie, origin: app.url, accept: 'application/json' },
      body: new URLSearchParams({ csrf: erin.csrf, vote: 'approve' }).toString(),
    });
    expect(res.status).toBe(200);
    expect((await proposal(id)).approvals).toEqual([expect.objectContaining({ person: 'alice', delegate: 'erin', platform: 'console' })]);
    const timeline = await (await fetch(`${app.url}/console/proposals/${id}`, { headers: { cookie: erin.cookie } })).text();
    expect(timeline).toContain('erin for alice approved');
    await command('U0ALICE', 'back');
  });

  it("the page's ?done= names only its own three notes: an inherited name (__proto__, constructor) shows none", async () => {
    const s = await signIn();
    for (const done of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const res = await fetch(`${app.url}/console/away?done=${done}`, { headers: { cookie: s.cookie } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('id="away-message"');
      expect(text).not.toMatch(/native code|\[object Object\]/);
    }
    expect(await (await fetch(`${app.url}/console/away?done=set`, { headers: { cookie: s.cookie } })).text()).toContain('<p class="flash" role="status" id="away-message">Your absence is set.</p>');
  });

  it('a Teams message `away until … to <at>Bob</at>` sets it, the mention resolved to bob by its Entra id', async () => {
    const activity = channelMessage(connector.serviceUrl, SECOPS, { aad: AAD.alice }, `away until ${inDays(4)} to <at>Bob</at>`);
    (activity['entities'] as unknown[]).push({ type: 'mention', text: '<at>Bob</at>', mentioned: { id: `29:${AAD.bob}`, name: 'Bob', aadObjectId: AAD.bob } });
    expect((await postActivity(app.url, activity)).status).toBe(200);
    await waitFor(() => connector.callsTo('replyToActivity').some((c) => String(c.body?.text).includes('bob decides for you')), { what: 'Teams answer' });
    expect(JSON.parse((await redis.hget(awayKey(), 'alice'))!)).toMatchObject({ delegate: 'bob' });
    expect((await postActivity(app.url, channelMessage(connector.serviceUrl, SECOPS, { aad: AAD.alice }, 'back'))).status).toBe(200);
    await waitFor(async () => (await redis.hget(awayKey(), 'alice')) === null, { what: 'back in Teams' });
  });
});
