import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { postToSlackEndpoint, slashCommandBody, startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';

// `/countersign search|show|pending`: private answers from the audit log, with links to
// the cards' threads; only people in the policy may ask. Also Slack's own probes.

const SECRET = 'slack-signing-secret-for-command-tests';
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }');

let fake: FakeSlack;
let app: TestApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({ policy: POLICY, env: { SLACK_BOT_TOKEN: 'xoxb-command-tests', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl } });
});
afterAll(async () => {
  await fake.close();
});

/** Sends the command and resolves with what countersign posted to its response_url. */
async function command(user: string, text: string): Promise<any> {
  const responseUrl = fake.responseUrl();
  const res = await postToSlackEndpoint(app.url, SECRET, slashCommandBody(user, text, responseUrl));
  expect(res.status).toBe(200);
  const path = new URL(responseUrl).pathname;
  return (await waitFor(() => fake.responses.find((r) => r.path === path), { what: `answer to "${text}"` })).body;
}

async function proposeWithCard(intent: string): Promise<{ id: string; ts: string }> {
  const res = await app.billing.propose(proposalBody({ intent }));
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && JSON.stringify(c.args).includes(id)), { what: 'card' });
  await waitFor(async () => ((await app.admin(`/v1/audit?q=card_posted+${id}`)).body.events.length > 0 ? true : null), { what: 'card_posted' });
  return { id, ts: card.ts! };
}

describe('/countersign', () => {
  it('search answers privately with matching proposals and links to their card threads', async () => {
    const a = await proposeWithCard('Refund the zebra invoice 991');
    const b = await proposeWithCard('Refund the walrus invoice 992');
    const answer = await command('U0ALICE', 'search zebra');
    expect(answer.response_type).toBe('ephemeral');
    const text = JSON.stringify(answer.blocks);
    expect(text).toContain(a.id);
    expect(text).not.toContain(b.id);
    expect(text).toContain(`https://fake.slack.test/archives/C0FINANCE/p${a.ts.replace('.', '')}`);
    expect(fake.callsTo('chat.getPermalink').some((c) => c.args['message_ts'] === a.ts && c.args['channel'] === 'C0FINANCE')).toBe(true);
  });

  it('show gives one proposal with its history; pending lists what waits', async () => {
    const { id } = await proposeWithCard('Refund the okapi invoice 993');
    const shown = await command('U0BOB', `show ${id}`);
    expect(shown.response_type).toBe('ephemeral');
    const text = JSON.stringify(shown.blocks);
    expect(text).toContain(id);
    // The heading keeps the id exact, as code, so it can be copied into another command.
    expect(shown.blocks[0].text.text).toBe(`Proposal \`${id}\``);
    expect(text).toContain('proposal_received');
    expect(text).toContain('card_posted');
    const missing = await command('U0BOB', 'show p_00000000000000000000000000');
    expect(missing.text).toContain('No proposal');
    const pending = await command('U0CAROL', 'pending');
    expect(JSON.stringify(pending.blocks)).toContain(id);
  });

  it('refuses people who are not in the policy, and explains usage otherwise', async () => {
    const refused = await command('U0STRANGER', 'search refund');
    expect(refused.response_type).toBe('ephemeral');
    expect(refused.text).toContain('Only people listed in the countersign policy');
    expect(refused.blocks).toBeUndefined();
    const help = await command('U0ALICE', '');
    expect(help.text).toContain('/countersign search');
  });

  it('escapes what agents wrote in search results', async () => {
    await proposeWithCard('Refund <!channel> *now* capybara');
    const answer = await command('U0ALICE', 'search capybara');
    const text = JSON.stringify(answer.blocks);
    expect(text).not.toContain('<!channel>');
    expect(text).toMatch(/&lt;!\u2060?channel&gt;/);
  });
});

describe('Slack request flood', () => {
  it('refuses every forged request but audits at most the per-address budget', async () => {
    const responseUrl = fake.responseUrl();
    const body = slashCommandBody('U0ALICE', 'pending', responseUrl);
    const results = await Promise.all(Array.from({ length: 40 }, () => postToSlackEndpoint(app.url, 'forged-secret', body)));
    expect(results.every((r) => r.status === 401)).toBe(true);
    const audited = await waitFor(async () => {
      const events = (await app.admin('/v1/audit?q=auth_failed+slack&limit=100')).body.events as any[];
      return events.length >= 30 ? events : null;
    }, { what: '30 audited failures' });
    expect(audited.length).toBeLessThanOrEqual(30);
    // None of them ran: the command never answered.
    expect(fake.responses.filter((r) => r.path === new URL(responseUrl).pathname)).toEqual([]);
  });
});

describe('Slack probes', () => {
  it('answers url_verification and ssl_check, 404s other paths, 405s GET', async () => {
    const challenge = await postToSlackEndpoint(app.url, SECRET, JSON.stringify({ type: 'url_verification', challenge: 'abc123', token: 't' }), {
      contentType: 'application/json',
    });
    expect(challenge).toMatchObject({ status: 200, json: { challenge: 'abc123' } });
    const ssl = await fetch(`${app.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'ssl_check=1&token=x' });
    expect(ssl.status).toBe(200);
    expect((await fetch(`${app.url}/slack/other`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${app.url}/slack/events`)).status).toBe(405);
    // An unsigned url_verification is refused like anything else.
    const unsigned = await fetch(`${app.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"url_verification","challenge":"x"}' });
    expect(unsigned.status).toBe(401);
  });
});
