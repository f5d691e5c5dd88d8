import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { runCli } from '../../src/cli.ts';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { channelMessage, postActivity, startFakeBotConnector, TENANT, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { postToSlackEndpoint, slashCommandBody, startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';

// The kill switch as an attacker would test it: after `revoke`, the agent's next proposals are
// refused at intake (403 agent_revoked, audited, nothing stored) until `restore`; a proposal
// racing the switch ends refused or cancelled, never pending and never with a token; the
// console and chat say which agents are revoked; the CLI pulls and lifts the switch too.

const SLACK_SECRET = 'slack-signing-secret-for-kill-switch';
const SECOPS = '19:secops@thread.tacv2';
const ALICE_AAD = '00000000-0000-0000-0000-0000000a11ce';

let connector: FakeBotConnector;
let slack: FakeSlack;
let app: TestApp;

const policy = (serviceUrl: string) =>
  CONSOLE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE, console: true }').replace(
    'secops: { console: true }',
    `secops: { console: true, teams: { conversation: "${SECOPS}", service_url: "${serviceUrl}", tenant: ${TENANT} } }`,
  );

beforeAll(async () => {
  connector = await startFakeBotConnector();
  slack = await startFakeSlack();
  app = await startTestApp({
    policy: policy(connector.serviceUrl),
    env: { ...CONSOLE_ENV, SLACK_BOT_TOKEN: 'xoxb-kill-switch', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl },
  });
});
afterAll(async () => {
  await connector.close();
  await slack.close();
});

const tag = (n: string) => ({ intent: `Tag ticket ${n}`, action: { tool: 'crm', operation: 'tag', target: `ticket:${n}`, parameters: {} }, context: { reversible: true } });
const update = (n: string, extra: Record<string, unknown> = {}) => ({ intent: `Update contact ${n}`, action: { tool: 'crm', operation: 'update', target: `contact:${n}`, parameters: {} }, ...extra });

async function adminPost(a: TestApp, path: string) {
  const res = await fetch(`${a.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  return { status: res.status, body: (await res.json()) as any };
}
/**
 * A time to sign at that is after `revokedAt`: a signature's timestamp has whole seconds, and one
 * in the revocation's own second counts as made before it.
 */
const afterRevocation = (revokedAt: string) => Math.max(Date.now(), Math.floor(Date.parse(revokedAt) / 1000) * 1000 + 1000);
const statusOf = async (a: TestApp, id: string) => (await a.admin(`/v1/proposals/${id}`)).body.status as string;
const auditOf = async (a: TestApp, query: string) => (await a.admin<{ events: any[] }>(`/v1/audit?limit=500&${query}`)).body.events;

describe('a revoked agent at intake', () => {
  it('is refused (403 agent_revoked, audited, nothing stored) until restored; restore brings back proposing, not what was cancelled', async () => {
    const allowedBefore = await app.ops.propose(tag('before-1'));
    expect(allowedBefore.body.status).toBe('approved');
    const pendingBefore = await app.ops.propose(update('before-2'));
    expect(pendingBefore.body.status).toBe('pending');

    const revoked = await adminPost(app, '/v1/agents/ops-agent/revoke');
    expect(revoked.status).toBe(200);
    expect(await statusOf(app, pendingBefore.body.id)).toBe('cancelled');
    const received = (await auditOf(app, 'agent=ops-agent&q=proposal_received')).length;

    const allowed = await app.ops.propose(tag('after-1'));
    expect(allowed.status).toBe(403);
    expect(allowed.body).toMatchObject({ error: 'agent_revoked' });
    expect(allowed.body.message).toContain('ops-agent');
    const keyed = await app.ops.propose(update('after-2', { idempotency_key: 'while-revoked-1' }));
    expect(keyed.status).toBe(403);
    expect(keyed.body.error).toBe('agent_revoked');

    // Nothing stored: no proposal_received; each refusal is its own audit event saying who tried.
    expect((await auditOf(app, 'agent=ops-agent&q=proposal_received')).length).toBe(received);
    const refusals = await auditOf(app, 'agent=ops-agent&q=proposal_refused');
    expect(refusals).toHaveLength(2);
    expect(refusals.map((e) => [e.actor, e.proposal_id, e.data.reason, e.data.action.operation])).toEqual([
      ['agent:ops-agent', null, 'agent_revoked', 'update'],
      ['agent:ops-agent', null, 'agent_revoked', 'tag'],
    ]);
    expect(refusals[0].data.idempotency_key).toBe('while-revoked-1');
    // Another agent is not affected.
    expect((await app.billing.propose(proposalBody())).status).toBe(201);

    // Restore: admin only, audited once; a second restore changes nothing.
    expect((await app.ops.request('POST', '/v1/agents/ops-agent/restore', {})).status).toBe(403);
    const restored = await adminPost(app, '/v1/agents/ops-agent/restore');
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ agent: 'ops-agent', restored: true });
    expect(Date.parse(restored.body.restored_at)).toBeGreaterThanOrEqual(Date.parse(restored.body.revoked_at));
    const again = await adminPost(app, '/v1/agents/ops-agent/restore');
    expect(again.body).toMatchObject({ agent: 'ops-agent', restored: false });
    expect(await auditOf(app, 'agent=ops-agent&q=agent_restored')).toMatchObject([{ actor: 'admin', proposal_id: null, data: { revoked_at: restored.body.revoked_at } }]);
    // Any well-formed id: an agent the policy does not name (any more) can be stopped and lifted too.
    expect((await adminPost(app, '/v1/agents/nobody/restore')).body).toMatchObject({ agent: 'nobody', in_policy: false, restored: false });

    // It proposes again, and an allowed action gets its token; the key refused while revoked was never used.
    const signed = { now: afterRevocation(restored.body.revoked_at) };
    const after = await app.ops.request('POST', '/v1/proposals', tag('after-restore'), signed);
    expect(after.status).toBe(201);
    expect(after.body.status).toBe('approved');
    const read = await app.ops.request('GET', `/v1/proposals/${after.body.id}`);
    expect(typeof read.body.execution_token).toBe('string');
    expect((await app.ops.request('POST', '/v1/proposals', update('after-2', { idempotency_key: 'while-revoked-1' }), signed)).status).toBe(201);
    // What the revocation cancelled stays cancelled, without a token.
    expect(await statusOf(app, pendingBefore.body.id)).toBe('cancelled');
    expect(await statusOf(app, allowedBefore.body.id)).toBe('cancelled');
    expect((await app.ops.request('GET', `/v1/proposals/${allowedBefore.body.id}`)).body.execution_token).toBeUndefined();
  });

  it('a proposal racing the switch ends refused or cancelled: none stays pending, none keeps a token', async () => {
    const race = await startTestApp();
    const submissions: Promise<{ status: number; body: any }>[] = [];
    let revoke: Promise<{ status: number; body: any }> | undefined;
    for (let i = 0; i < 40; i++) {
      submissions.push(race.ops.propose(i % 2 === 0 ? update(`race-${i}`) : tag(`race-${i}`)));
      if (i === 12) revoke = adminPost(race, '/v1/agents/ops-agent/revoke');
      if (i % 4 === 3) await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(submissions);
    expect((await revoke!).status).toBe(200);
    expect((await race.ops.propose(tag('race-late'))).status).toBe(403);

    const accepted = results.filter((r) => r.status === 201).map((r) => r.body.id as string);
    const refused = results.filter((r) => r.status === 403);
    expect(accepted.length + refused.length).toBe(results.length);
    for (const r of refused) expect(r.body.error).toBe('agent_revoked');
    for (const id of accepted) expect([id, await statusOf(race, id)]).toEqual([id, 'cancelled']);
    for (const id of accepted) expect((await race.ops.request('GET', `/v1/proposals/${id}`)).body.execution_token).toBeUndefined();
    expect((await auditOf(race, 'agent=ops-agent&q=proposal_received')).length).toBe(accepted.length);
    expect((await auditOf(race, 'agent=ops-agent&q=proposal_refused')).length).toBe(refused.length + 1);
  });

  it('an approval racing the switch ends cancelled and never executes', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await app.billing.propose(proposalBody({ intent: `Refund racing the switch ${i}` }))).body.id);
    const clicks = ids.map((id) =>
      fetch(`${app.url}/console/proposals/${id}/decide`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: alice.cookie, origin: app.url },
        body: new URLSearchParams({ csrf: alice.csrf, vote: 'approve' }).toString(),
      }),
    );
    const revoked = adminPost(app, '/v1/agents/billing-agent/revoke');
    await Promise.all(clicks);
    expect((await revoked).status).toBe(200);
    for (const id of ids) {
      await waitFor(async () => ((await statusOf(app, id)) === 'cancelled' ? true : null), { what: `${id} cancelled` });
      expect((await app.billing.request('GET', `/v1/proposals/${id}`)).body.execution_token).toBeUndefined();
    }
    expect((await adminPost(app, '/v1/agents/billing-agent/restore')).body.restored).toBe(true);
  });

  it('a flood of proposals from a revoked agent is refused in full, but adds only the limiter’s share to the audit log', async () => {
    const flood = await startTestApp();
    expect((await adminPost(flood, '/v1/agents/ops-agent/revoke')).status).toBe(200);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => flood.ops.propose(update(`flood-${i}`))));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 403));
    for (const r of results) expect(r.body.error).toBe('agent_revoked');
    // 30 a minute per agent; a burst may straddle two minutes.
    const refusals = await auditOf(flood, 'agent=ops-agent&q=proposal_refused');
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals.length).toBeLessThanOrEqual(60);
    // Another agent's refusals have their own share.
    expect((await adminPost(flood, '/v1/agents/billing-agent/revoke')).status).toBe(200);
    expect((await flood.billing.propose(proposalBody())).status).toBe(403);
    expect(await auditOf(flood, 'agent=billing-agent&q=proposal_refused')).toHaveLength(1);
  });

  it('a request signed before the revocation is refused after restore: it was proposed before the switch', async () => {
    const a = await startTestApp();
    const signedBefore = Date.now() - 2_000;
    const revoked = await adminPost(a, '/v1/agents/ops-agent/revoke');
    expect(revoked.status).toBe(200);
    const restored = await adminPost(a, '/v1/agents/ops-agent/restore');
    expect(restored.body.restored).toBe(true);

    const replayed = await a.ops.request('POST', '/v1/proposals', update('signed-before'), { now: signedBefore });
    expect(replayed.status).toBe(403);
    expect(replayed.body.error).toBe('agent_revoked');
    expect(await auditOf(a, 'agent=ops-agent&q=proposal_received')).toHaveLength(0);
    expect((await auditOf(a, 'agent=ops-agent&q=proposal_refused'))[0]).toMatchObject({ data: { reason: 'agent_revoked', revoked_at: restored.body.revoked_at } });
    // Signed after the revocation (a signature's time has whole seconds): accepted.
    const fresh = await a.ops.request('POST', '/v1/proposals', update('signed-after'), { now: afterRevocation(restored.body.revoked_at) });
    expect(fresh.status).toBe(201);
  });
});

describe('revoked agents in the console and in chat', () => {
  let stuck: string;

  beforeAll(async () => {
    // A revocation whose process died right after pulling the switch leaves a pending proposal behind.
    // Signed a second ahead: the tests above revoked and restored ops-agent moments ago, and a
    // signature from the second of that revocation counts as made before it (refused).
    stuck = (await app.ops.request('POST', '/v1/proposals', update('left-pending'), { now: Date.now() + 1000 })).body.id;
    await createRedisTokenLedger(app.running.redis, { prefix: app.prefix }).markAgentRevoked('ops-agent', Date.now());
  });

  const signedIn = () => signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
  const get = async (session: { cookie: string }, path: string) => (await fetch(`${app.url}${path}`, { headers: { cookie: session.cookie } })).text();

  it('the console lists revoked agents on the pending page and marks their cards, without buttons', async () => {
    const alice = await signedIn();
    const page = await get(alice, '/console');
    const section = /<section class="revoked-agents"[\s\S]*?<\/section>/.exec(page)?.[0] ?? '';
    expect(section).toContain('ops-agent');
    expect(section).not.toContain('billing-agent');
    const card = await get(alice, `/console/proposals/${stuck}/card`);
    expect(card).toContain('agent-revoked');
    expect(card).toContain('Agent ops-agent is revoked');
    expect(card).not.toContain('class="decide"');
  });

  it('Slack and Teams `show` and `pending` say the agent is revoked', async () => {
    const slash = async (text: string) => {
      const responseUrl = slack.responseUrl();
      expect((await postToSlackEndpoint(app.url, SLACK_SECRET, slashCommandBody('U0ALICE', text, responseUrl))).status).toBe(200);
      const path = new URL(responseUrl).pathname;
      return JSON.stringify((await waitFor(() => slack.responses.find((r) => r.path === path), { what: `Slack answer to ${text}` })).body.blocks);
    };
    expect(await slash(`show ${stuck}`)).toContain('agent revoked');
    const pending = await slash('pending');
    expect(pending).toContain(stuck);
    expect(pending).toContain('agent revoked');

    await postActivity(app.url, channelMessage(connector.serviceUrl, SECOPS, { aad: ALICE_AAD }, `show ${stuck}`));
    const teams = await waitFor(() => connector.callsTo('replyToActivity').find((c) => JSON.stringify(c.body).includes(stuck) && JSON.stringify(c.body).includes('History')), { what: 'Teams show answer' });
    expect(JSON.stringify(teams.body)).toContain('agent revoked');
  });

  it('restore cancels what the revocation left pending, then the agent is no longer listed or marked', async () => {
    const restored = await adminPost(app, '/v1/agents/ops-agent/restore');
    // Proposals made before the switch was pulled (this one; any earlier pending one) could never run.
    expect(restored.body.restored).toBe(true);
    expect(restored.body.cancelled).toContain(stuck);
    expect(await statusOf(app, stuck)).toBe('cancelled');
    const alice = await signedIn();
    expect(await get(alice, '/console')).not.toContain('class="revoked-agents"');
    expect(await get(alice, `/console/proposals/${stuck}/card`)).not.toContain('is revoked');
  });
});

describe('countersign revoke / restore', () => {
  const run = promisify(execFile);
  const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;
  async function countersign(args: string[], env: Record<string, string>) {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'silent', ...env }, timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }

  it('restore lifts the switch pulled by revoke, in the same output style; both are in the usage text', async () => {
    const cli = await startTestApp();
    const policyFile = join(mkdtempSync(join(tmpdir(), 'countersign-kill-')), 'policy.yaml');
    writeFileSync(policyFile, BASE_POLICY);
    const env = {
      REDIS_URL: inject('redisUrl') ?? '',
      COUNTERSIGN_PREFIX: cli.prefix,
      POLICY_FILE: policyFile,
      AGENT_BILLING_SECRET: 'x',
      AGENT_OPS_SECRET: 'y',
    };
    // revoke in this process (the same dispatch: cli-commands.redis.test.ts runs it as a child),
    // restore as a person runs it.
    const lines = { out: [] as string[], err: [] as string[] };
    const io = { out: (l: string) => lines.out.push(l), err: (l: string) => lines.err.push(l) };
    expect(await runCli(['revoke', '--agent', 'ops-agent'], env, io)).toBe(0);
    expect(lines.out[0]).toMatch(/^revoked agent ops-agent: /);
    expect((await cli.ops.propose(tag('cli-1'))).status).toBe(403);

    const restored = await countersign(['restore', '--agent', 'ops-agent'], env);
    expect(restored.code).toBe(0);
    expect(restored.stderr).toContain('restoring agent ops-agent…');
    expect(restored.stdout).toMatch(/^restored agent ops-agent: it may propose again \(revoked at \S+, restored at \S+\)/);
    expect(restored.stdout).toContain('cancelled proposals stay cancelled');
    const revokedAt = /revoked at (\S+),/.exec(restored.stdout)?.[1] ?? '';
    expect((await cli.ops.request('POST', '/v1/proposals', tag('cli-2'), { now: afterRevocation(revokedAt) })).status).toBe(201);
    expect(await auditOf(cli, 'agent=ops-agent&q=agent_restored')).toMatchObject([{ actor: 'admin:cli' }]);

    expect(await runCli(['restore', '--agent', 'ops-agent'], env, io)).toBe(0);
    expect(lines.out.at(-1)).toBe('agent ops-agent is not revoked: nothing changed');
    expect(await runCli(['restore'], env, io)).toBe(2);
    expect(lines.err.at(-1)).toContain('restore needs --agent ID');
    expect(await runCli(['help'], env, io)).toBe(0);
    expect(lines.out.at(-1)).toMatch(/revoke --agent ID\s+kill switch/);
    expect(lines.out.at(-1)).toMatch(/restore --agent ID\s+lift the kill switch/);
  }, 60_000);
});
