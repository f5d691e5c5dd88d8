import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, slashCommandBody, startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';
import { testRedis } from '../helpers/redis.ts';

// The Slack intakes changed this session, sent what Slack itself never would but a holder of
// the signing secret (or a bug upstream) could: a batch button value with 10,000 ids or nested
// 5,000 deep, an away command of a megabyte or with control characters, and two away commands
// of one person at once. Each is answered, decides nothing it should not, and stores nothing.

const SECRET = 'slack-signing-secret-for-hostile-intakes';
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }');
const { redis } = testRedis();
let fake: FakeSlack;
let app: TestApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  app = await startTestApp({ policy: POLICY, env: { SLACK_BOT_TOKEN: 'xoxb-hostile', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl } });
});
afterAll(async () => {
  await fake.close();
});

let targets = 0;
async function propose(): Promise<string> {
  const action = { tool: 'payments', operation: 'refund', target: `stripe:cus_hostile_${++targets}`, parameters: { amount: 420, currency: 'EUR' } };
  const res = await app.billing.propose(proposalBody({ action }));
  expect(res.status).toBe(201);
  return res.body.id as string;
}
const events = async (id: string): Promise<{ type: string }[]> => (await app.admin(`/v1/audit?proposal_id=${id}&limit=100`)).body.events;
const awayKey = () => `{${app.prefix}}:away`;
const inDays = (n: number) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);

async function answerAt(responseUrl: string, what: string): Promise<string> {
  const path = new URL(responseUrl).pathname;
  return (await waitFor(() => fake.responses.find((r) => r.path === path), { what })).body.text as string;
}

function batchClick(value: string, responseUrl: string): string {
  const payload = blockActionsPayload({ user: 'U0ALICE', proposalId: 'unused', action: 'countersign_approve', responseUrl });
  (payload['actions'] as any[])[0] = { type: 'button', action_id: 'countersign_approve_batch', block_id: 'batch:0', value, text: { type: 'plain_text', text: 'Approve all' }, action_ts: `${Date.now() / 1000}` };
  return payloadBody(payload);
}

describe('a signed batch click Slack would never send', () => {
  it('10,000 ids (one real) or a value nested 5,000 deep: answered 200, nothing decided', async () => {
    const real = await propose();
    const ids = [real, ...Array.from({ length: 9_999 }, (_, i) => `p_${String(i).padStart(20, '0')}`)];
    for (const value of [JSON.stringify({ a: 'billing-agent', r: 'payments', i: ids }), `${'['.repeat(5_000)}${']'.repeat(5_000)}`, JSON.stringify({ a: 'billing-agent', r: 'payments', i: [real, { deep: [[[[real]]]] }] })]) {
      const responseUrl = fake.responseUrl();
      const res = await postToSlackEndpoint(app.url, SECRET, batchClick(value, responseUrl));
      expect(res.status, value.slice(0, 40)).toBe(200);
    }
    // No answer promised for a value that cannot be read; the proposal is what matters.
    expect((await events(real)).filter((e) => e.type === 'approval_recorded')).toEqual([]);
    expect((await app.billing.request('GET', `/v1/proposals/${real}`)).body.status).toBe('pending');
  });

  it('a body over 1 MB is 413 before its signature is even read', async () => {
    const res = await postToSlackEndpoint(app.url, SECRET, batchClick('x'.repeat(1_100_000), fake.responseUrl()));
    expect(res.status).toBe(413);
  });
});

describe('the away command under attack', () => {
  async function command(user: string, text: string): Promise<string> {
    const responseUrl = fake.responseUrl();
    const res = await postToSlackEndpoint(app.url, SECRET, slashCommandBody(user, text, responseUrl));
    expect(res.status).toBe(200);
    return answerAt(responseUrl, `answer to ${text.slice(0, 40)}`);
  }

  it('a huge text or one with control characters sets nothing, and the answer does not echo it whole', async () => {
    await redis.hdel(awayKey(), 'alice');
    for (const text of [`away until ${inDays(2)} to @${'e'.repeat(200_000)}`, `away until ${inDays(2)} to @erin\u0000`, `away until ${inDays(2)}\u202e to @erin`, `away until ${'9'.repeat(100_000)} to @erin`, `away until ${inDays(2)} to @erin\n<!channel>`]) {
      const answer = await command('U0ALICE', text);
      expect(answer.length, text.slice(0, 40)).toBeLessThan(2_000);
      expect(answer).not.toContain('<!channel>');
    }
    expect(await redis.hget(awayKey(), 'alice')).toBeNull();
  });

  it('two away commands of alice at once: one absence stands, and it is the one the last away_set names', async () => {
    await redis.hdel(awayKey(), 'alice');
    await Promise.all([command('U0ALICE', `away until ${inDays(3)} to @bob`), command('U0ALICE', `away until ${inDays(3)} to @erin`)]);
    const stored = JSON.parse((await redis.hget(awayKey(), 'alice'))!) as { delegate: string };
    const log = ((await app.admin('/v1/audit?actor=person:alice&limit=50')).body.events as { type: string; data: { delegate: string } }[]).filter((e) => e.type === 'away_set');
    expect(log.length).toBeGreaterThanOrEqual(2);
    expect(log[0]!.data.delegate).toBe(stored.delegate);
  });
});
