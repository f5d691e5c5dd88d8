import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import { CountersignClient } from '../src/client/index.ts';
import { blockActionsPayload, payloadBody, slackSignature } from '../test/helpers/fake-slack.ts';
import { spawnChild, startFlags, Timeline, type Child } from './children.ts';
import { waitFollowUps } from './follow-ups.ts';
import { fmt, HttpClient, summarize, wallNow, type Summary } from './lib.ts';

// 11. Just-in-time credentials (issue 15): from the approval click to the agent holding its
// task's login. The agent is the real CountersignClient, waiting in wait() (poll mode) before a
// person clicks Approve in Slack; countersign (a child of its own, prefix benchcred) then mints
// the token, makes an ACL user on a downstream redis-server of its own (a stand-in for a cache,
// with a least-privilege admin user), seals it for the pick-up, and hands both to the agent's
// read. The same flow for a rule without credentials, in the same run and alternating, is the
// baseline: the difference is what the login costs. Each task is then reported, which revokes
// the login in the report's request (timed too). One task at a time: latency, not throughput.

const CRED_PREFIX = 'benchcred';
const AGENT = 'bench-cred-agent';
const ADMIN_ENV = 'BENCH_CACHE_ADMIN_URL';

function credentialsPolicy(): string {
  return `
version: 1
agents:
  - id: ${AGENT}
    secret_env: AGENT_BENCH_CRED_SECRET
people:
  alice: { slack: U0ALICE }
groups:
  finance: [alice]
channels:
  finance: { slack: C0FINANCE }
credentials:
  cache:
    kind: redis-acl
    admin_url: { env: ${ADMIN_ENV} }
    acl: "~orders:* +get +set"
rules:
  - name: with-login
    when: action.operation == "with-login"
    effect: approve
    route: finance
    approvers: finance
    ttl: 2h
    credentials: { issuer: cache, ttl: 10m }
  - name: token-only
    when: action.operation == "token-only"
    effect: approve
    route: finance
    approvers: finance
    ttl: 2h
default: { effect: deny }
# The bench floods one agent with proposals needing people on purpose: far above the defaults.
limits: { proposals_per_minute: 1000000, pending: 1000000 }
`;
}

interface Series {
  /** Click sent -> the agent's wait() returned with the token (and the login). */
  clickToHand: number[];
  /** Approval committed (observer, in countersign) -> the same. */
  approvedToHand: number[];
  /** reportOutcome round trip (with a login: it is revoked inside it). */
  report: number[];
  missing: number;
}

export interface CredentialsResult {
  withLogin: { clickToHand: Summary; approvedToHand: Summary; report: Summary; missing: number };
  tokenOnly: { clickToHand: Summary; approvedToHand: Summary; report: Summary; missing: number };
  /** Logins still on the downstream after every task was reported (should be 0). */
  leftOnDownstream: number;
  /** Reads that saw the approval only at the end of a long poll (the approval landed between two polls). */
  lateLongPolls: number;
  longPollSeconds: number;
}

const stopChild = (c: Child) =>
  new Promise<void>((resolve) => {
    if (c.proc.exitCode !== null) return resolve();
    c.proc.once('exit', () => resolve());
    c.proc.disconnect?.();
  });

/** Phase 11: its own downstream redis-server, fixtures and countersign children, all stopped after. */
export async function credentialsPhase(o: { redisUrl: string; dir: string; count: number; capMs: number; log: (line: string) => void }): Promise<CredentialsResult> {
  const dir = join(o.dir, 'credentials');
  mkdirSync(dir, { recursive: true });
  const downstream = await startPrivateRedis({ dir: join(dir, 'downstream'), persist: false, searchPath: process.env['PATH'] ?? '' });
  const root = new Redis(downstream.url, { disableClientInfo: true });
  const children: Child[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const adminPassword = randomBytes(16).toString('hex');
    await root.call('ACL', 'SETUSER', 'csadmin', 'reset', 'on', `>${adminPassword}`, '-@all', '+acl|setuser', '+acl|deluser', '+client|kill');
    const fixtures = await spawnChild('./fixtures-child.ts', {});
    children.push(fixtures);
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, credentialsPolicy());
    const agentSecret = randomBytes(24).toString('hex');
    const slackSecret = randomBytes(16).toString('hex');
    const server = await spawnChild(
      './server-child.js',
      {
        PORT: '0',
        HOST: '127.0.0.1',
        REDIS_URL: o.redisUrl,
        COUNTERSIGN_PREFIX: CRED_PREFIX,
        COUNTERSIGN_DATA_DIR: join(dir, 'data'),
        POLICY_FILE: policyFile,
        COUNTERSIGN_ADMIN_TOKEN: randomBytes(24).toString('hex'),
        AGENT_BENCH_CRED_SECRET: agentSecret,
        [ADMIN_ENV]: `redis://csadmin:${adminPassword}@127.0.0.1:${downstream.port}/0`,
        SLACK_BOT_TOKEN: 'xoxb-bench-token',
        SLACK_SIGNING_SECRET: slackSecret,
        SLACK_API_URL: String(fixtures.ready['slackApiUrl']),
        LOG_LEVEL: 'silent',
        NODE_ENV: 'development',
      },
      startFlags(),
    );
    children.push(server);
    const approved = new Timeline();
    server.on('approved', (m) => approved.record(String(m['id']), Number(m['t'])));
    const url = String(server.ready['url']);

    // The agent's client; its fetch says when a long poll leaves, so the click follows it.
    let pollSent: (() => void) | null = null;
    let lateLongPolls = 0;
    const longPollSeconds = 5;
    const agentFetch: typeof fetch = async (input, init) => {
      const target = String(input);
      const isPoll = target.includes('/wait?');
      const started = wallNow();
      if (isPoll) pollSent?.();
      const res = await fetch(input, init);
      if (isPoll && wallNow() - started >= longPollSeconds * 1000 - 50) lateLongPolls += 1;
      return res;
    };
    const client = new CountersignClient({ url, agent: AGENT, secret: agentSecret, fetch: agentFetch, longPollSeconds });
    const slack = new HttpClient(new URL(url).origin, 4);
    closers.push(async () => slack.close());

    const click = async (id: string) => {
      const body = payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve' }));
      const ts = Math.floor(Date.now() / 1000);
      const res = await slack.send('POST', '/slack/events', { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(ts), 'x-slack-signature': slackSignature(slackSecret, ts, body) }, body);
      if (res.status !== 200) throw new Error(`click: ${res.status} ${res.body.slice(0, 200)}`);
    };

    const series = (): Series => ({ clickToHand: [], approvedToHand: [], report: [], missing: 0 });
    const runs = { 'with-login': series(), 'token-only': series() };
    // Proposed up front, cards posted, so the clicks do not compete with intake or card posting.
    const plan: { id: string; kind: keyof typeof runs }[] = [];
    for (let i = 0; i < o.count * 2; i++) {
      const kind = i % 2 === 0 ? 'with-login' : 'token-only';
      const p = await client.propose({ intent: `Mark order ${i} shipped (${kind})`, action: { tool: 'cache', operation: kind, target: `orders:${i}` } });
      if (p.status !== 'pending') throw new Error(`credentials bench: proposal is ${p.status}, expected pending`);
      plan.push({ id: p.id, kind });
    }
    await waitFollowUps(fixtures, { cards: plan.length }, null, o.capMs);

    const deadline = wallNow() + o.capMs;
    for (const { id, kind } of plan) {
      if (wallNow() > deadline) break;
      const s = runs[kind];
      const polling = new Promise<void>((r) => (pollSent = r));
      const waiting = client.wait(id, { timeout: 30 });
      await polling;
      pollSent = null;
      const t0 = wallNow();
      await click(id);
      const p = await waiting;
      const t1 = wallNow();
      const tApproved = approved.get(id);
      const token = p.execution_token;
      if (token === undefined || (kind === 'with-login') !== (p.credential !== undefined) || tApproved === undefined) {
        s.missing += 1;
        continue;
      }
      s.clickToHand.push(t1 - t0);
      s.approvedToHand.push(t1 - tApproved);
      if (p.credential !== undefined) {
        // In hand means usable: one command with it, outside the timed span.
        const agent = new Redis(p.credential.url, { enableReadyCheck: false, disableClientInfo: true, maxRetriesPerRequest: 0, lazyConnect: true });
        await agent.connect();
        await agent.set(`orders:${id}`, 'shipped');
        agent.disconnect();
      }
      const r0 = wallNow();
      await client.reportOutcome(id, token, { status: 'succeeded' });
      s.report.push(wallNow() - r0);
    }
    const left = ((await root.call('ACL', 'USERS')) as string[]).filter((u) => u.startsWith('cs_')).length;
    const sum = (s: Series) => ({ clickToHand: summarize(s.clickToHand), approvedToHand: summarize(s.approvedToHand), report: summarize(s.report), missing: s.missing });
    return { withLogin: sum(runs['with-login']), tokenOnly: sum(runs['token-only']), leftOnDownstream: left, lateLongPolls, longPollSeconds };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    for (const c of children.reverse()) await stopChild(c);
    root.disconnect();
    await downstream.stop();
  }
}

export function credentialsRows(r: CredentialsResult, row: (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void): void {
  const lat = (s: Summary) => `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} / max ${fmt(s.max, 2)} ms`;
  const p = (s: Summary) => `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} ms`;
  const signed = (d: number) => `${d >= 0 ? '+' : ''}${fmt(d, 2)}`;
  const added = (a: Summary, b: Summary) => `added p50 ${signed(a.p50 - b.p50)} / p99 ${signed(a.p99 - b.p99)} ms`;
  const { withLogin: w, tokenOnly: t } = r;
  const missing = w.missing + t.missing > 0 ? `; ${w.missing} + ${t.missing} tasks without what they should carry` : '';
  row(`11. click -> agent holds token + login (redis-acl), wait() in poll mode (${w.clickToHand.count} tasks)`, `${lat(w.clickToHand)}${missing}`, `token only: ${p(t.clickToHand)}`, added(w.clickToHand, t.clickToHand));
  row(`11. approval committed -> agent holds token + login (${w.approvedToHand.count} tasks)`, lat(w.approvedToHand), `token only: ${p(t.approvedToHand)}`, added(w.approvedToHand, t.approvedToHand));
  row(
    `11. outcome report, which revokes the login (ACL user deleted, its clients killed) (${w.report.count} tasks)`,
    `${lat(w.report)}; logins left on the downstream: ${r.leftOnDownstream}`,
    `token only: ${p(t.report)}`,
    added(w.report, t.report),
    r.leftOnDownstream === 0 && w.report.count > 0 ? 'met: every login revoked' : 'MISSED: every login revoked',
  );
  if (r.lateLongPolls > 0) row(`11. long polls that ran their full ${r.longPollSeconds} s (an approval between two polls)`, String(r.lateLongPolls));
}
