import { beforeAll, describe, expect, it } from 'vitest';
import type { AgentResponse, TestAgent } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';

// Issue 17: the over-the-limit notice names the true count. Posted at the first refusal, then
// updated (at most every updateEveryMs, agreed through Redis) while refusals go on, the last
// count landing through the sweep; on the console (a route with no chat channel) a banner on
// the pending page, live. Two replicas on one Redis, real HTTP, signed agents, fake Slack.

const UPDATE_EVERY_MS = 300;
const POLICY = CONSOLE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FLOOD }').replace(
  'rules:\n',
  `rules:
  - name: flood-chores
    when: action.tool == "flood"
    effect: approve
    risk: low
    route: finance
    approvers: finance
    limits: { proposals_per_minute: 2 }
  - name: desk-chores
    when: action.tool == "desk"
    effect: approve
    risk: low
    route: secops
    approvers: security
    limits: { proposals_per_minute: 1 }
`,
);

let fake: FakeSlack;
let one: TestApp;
let two: TestApp;

beforeAll(async () => {
  fake = await startFakeSlack();
  const env = { ...CONSOLE_ENV, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: 'notice-signing-secret', SLACK_API_URL: fake.apiUrl };
  const start = { limitNotices: { updateEveryMs: UPDATE_EVERY_MS } };
  one = await startTestApp({ policy: POLICY, env, start });
  // A second replica: same Redis prefix, same agents.
  two = await startTestApp({ policy: POLICY, env, start, reuse: one });
  return async () => void (await fake.close());
});

let made = 0;
const task = (tool: 'flood' | 'desk') => ({ intent: `Tidy ${tool} ${++made}`, action: { tool, operation: 'tidy', target: `room:${made}`, parameters: {} } });

/** `count` proposals, `concurrency` at a time, spread over both replicas. */
async function flood(agents: readonly TestAgent[], count: number, concurrency: number): Promise<AgentResponse[]> {
  const out: AgentResponse[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        next += 1;
        out.push(await agents[worker % agents.length]!.propose(task('flood')));
      }
    }),
  );
  return out;
}

describe('the over-the-limit notice', () => {
  it('a flood over two replicas posts one Slack message, updated at most every few hundred ms, whose last text names the true refused count', async () => {
    const answers = await flood([one.billing, two.billing], 60, 12);
    const refused = answers.filter((r) => r.status === 429).length;
    expect(answers.filter((r) => r.status === 201)).toHaveLength(2);
    expect(refused).toBe(58);

    const posts = () => fake.callsTo('chat.postMessage').filter((c) => c.ok && c.args['channel'] === 'C0FLOOD' && c.args['blocks'] === undefined);
    const [post] = await waitFor(() => (posts().length > 0 ? posts() : null), { what: 'the notice' });
    const updates = () => fake.callsTo('chat.update').filter((u) => u.ok && u.args['channel'] === 'C0FLOOD' && u.args['ts'] === post!.ts);
    // The refusals stopped: the sweep lands the last count once the throttle passed.
    const last = await waitFor(() => updates().find((u) => String(u.args['text']).includes(`: ${refused} refused since`)), { what: `an update naming ${refused} refusals` });
    expect(String(last.args['text'])).toMatch(
      new RegExp(`^billing-agent is over its limit of 2 proposals a minute for rule "flood-chores" \\(rule flood-chores: limits\\.proposals_per_minute\\): ${refused} refused since \\d\\d:\\d\\d UTC\\. `),
    );
    // One message for the route and agent, whichever replica refused; its first text was posted at once.
    expect(posts()).toHaveLength(1);
    expect(String(post!.args['text'])).toMatch(/: \d+ refused since/);
    // Updates are throttled through Redis, not per replica: consecutive ones are spaced out (less a little for HTTP).
    const times = updates().map((u) => u.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(UPDATE_EVERY_MS - 100);
    expect(updates().at(-1)).toBe(last);
  });

  it('an update Slack refuses (rate limited) is tried again by the sweep, so the last count still lands', async () => {
    const mine = (args: Record<string, any>) => String(args['text'] ?? '').startsWith('ops-agent');
    fake.failNext('chat.update', 1, { status: 429, retryAfter: 1 }, mine);
    const answers: number[] = [];
    for (let i = 0; i < 6; i++) answers.push((await (i % 2 === 0 ? one : two).ops.propose(task('flood'))).status);
    expect(answers).toEqual([201, 201, 429, 429, 429, 429]);
    const updates = () => fake.callsTo('chat.update').filter((u) => u.args['channel'] === 'C0FLOOD' && mine(u.args));
    const landed = await waitFor(() => updates().find((u) => u.ok && String(u.args['text']).includes(': 4 refused since')), { what: 'the last count, after a refused update' });
    expect(updates().filter((u) => !u.ok)).toHaveLength(1);
    expect(updates().at(-1)).toBe(landed);
  });

  it('a console-only route shows its notices on the pending page, newest first, escaped, and tells open pages when they change', async () => {
    const { cookie } = await signInWithKey(one.url, 'alice', CONSOLE_KEYS.alice);
    // The page's live stream, opened on the other replica than the refusals.
    const abort = new AbortController();
    const stream = await fetch(`${two.url}/console/events`, { headers: { cookie }, signal: abort.signal });
    expect(stream.status).toBe(200);
    let heard = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream.body!) heard += decoder.decode(chunk as Uint8Array, { stream: true });
    })().catch(() => undefined);

    expect((await one.billing.propose(task('desk'))).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await one.billing.propose(task('desk'))).status).toBe(429);
    await waitFor(() => /event: notice\ndata: \{"id":"secops","change":"notice"\}/.test(heard), { what: 'a live notice event' });

    const banner = async () => {
      const res = await fetch(`${two.url}/console`, { headers: { cookie } });
      expect(res.status).toBe(200);
      return /<section id="limit-notices"[\s\S]*?<\/section>/.exec(await res.text())?.[0] ?? '';
    };
    // The count the page shows is the store's, so it is the true one at once.
    const first = await banner();
    expect(first).toContain('billing-agent is over its limit of 1 proposal a minute for rule &quot;desk-chores&quot; (rule desk-chores: limits.proposals_per_minute): 3 refused since');
    expect(first).not.toContain(' hidden');

    // Another agent over the same route's limit: its notice comes first.
    expect((await one.ops.propose(task('desk'))).status).toBe(201);
    expect((await two.ops.propose(task('desk'))).status).toBe(429);
    const both = await banner();
    const items = [...both.matchAll(/<li class="limit-notice" data-agent="([^"]+)"/g)].map((m) => m[1]);
    expect(items).toEqual(['ops-agent', 'billing-agent']);
    // The fragment the page's script fetches on a live event is the same banner.
    const fragment = await (await fetch(`${one.url}/console/notices`, { headers: { cookie } })).text();
    expect(fragment).toContain('ops-agent is over its limit of 1 proposal a minute for rule &quot;desk-chores&quot;');
    // Nothing of the console route went to Slack (its only chat platform is the console).
    expect(fake.callsTo('chat.postMessage').filter((c) => String(c.args['text'] ?? '').includes('desk-chores'))).toHaveLength(0);
    // Signed out, the banner is not shown.
    expect((await fetch(`${one.url}/console/notices`)).status).toBe(401);

    abort.abort();
    await reading;
  });
});
