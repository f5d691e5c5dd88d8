import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';

// `countersign policy test / policy replay / audit search / propose / demo / console link /
// revoke` as a person runs them: child processes against the real app and its Redis.

const run = promisify(execFile);
const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-'));

async function countersign(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'silent', ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const policyFile = file('policy.yaml', BASE_POLICY);

describe('countersign policy test', () => {
  it('prints the decision and the rule that matched, without the agents\' secrets', async () => {
    const refund = file('refund.json', proposalBody());
    const res = await countersign(['policy', 'test', policyFile, refund, '--agent', 'billing-agent']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('decision: approve (risk high) by rule "payments"');
    expect(res.stdout).toContain('needs 1 approval(s) from group "finance", posted to route "finance", expires after 15m');

    const drop = file('drop.json', proposalBody({ action: { tool: 'postgres', operation: 'drop', target: 'db:prod', parameters: {} } }));
    const denied = await countersign(['policy', 'test', policyFile, drop, '--agent', 'ops-agent', '--json']);
    expect(denied.code).toBe(0);
    expect(JSON.parse(denied.stdout)).toMatchObject({ agent: 'ops-agent', decision: { effect: 'deny', rule: 'never-drop-production-databases' } });

    const noDefaults = file('crm.json', { intent: 'tag it', action: { tool: 'crm', operation: 'update', target: 'crm:1' } });
    const fallback = await countersign(['policy', 'test', policyFile, noDefaults, '--agent', 'ops-agent']);
    expect(fallback.stdout).toContain('by the default');
  });

  it('says when a rule needs step-up (console approvals from a fresh sign-in)', async () => {
    const stepUp = file('step-up.yaml', BASE_POLICY.replace('    risk: high\n    route: finance\n', '    risk: high\n    step_up: true\n    route: finance\n'));
    const refund = file('refund-step-up.json', proposalBody());
    const res = await countersign(['policy', 'test', stepUp, refund, '--agent', 'billing-agent']);
    expect(res.stdout).toContain('step-up: approvals count only in the console, from people who signed in there within the last 5 minutes');
    const json = await countersign(['policy', 'test', stepUp, refund, '--agent', 'billing-agent', '--json']);
    expect(JSON.parse(json.stdout).decision).toMatchObject({ rule: 'payments', step_up: true });
    expect((await countersign(['policy', 'test', policyFile, refund, '--agent', 'billing-agent'])).stdout).not.toContain('step-up');
  });

  it('asks which agent when the policy has several, and names a bad proposal field', async () => {
    const refund = file('refund2.json', proposalBody());
    const ambiguous = await countersign(['policy', 'test', policyFile, refund]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain('--agent (billing-agent, ops-agent)');
    const bad = file('bad.json', { intent: 'x', action: { tool: 'payments' } });
    const invalid = await countersign(['policy', 'test', policyFile, bad, '--agent', 'billing-agent']);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('action.operation');
  });
});

describe('against a running countersign', () => {
  let app: TestApp;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    app = await startTestApp();
    env = { REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix };
    ids['refund'] = (await app.billing.propose(proposalBody({ intent: 'Refund invoice 4711' }))).body.id;
    ids['large'] = (await app.billing.propose(proposalBody({ intent: 'Large payout', context: { value: { amount: 50_000, currency: 'EUR' } } }))).body.id;
    ids['tag'] = (await app.ops.propose({ intent: 'Tag the ticket', action: { tool: 'crm', operation: 'tag', target: 'ticket:1', parameters: {} }, context: { reversible: true } })).body.id;
    ids['crm'] = (await app.ops.propose({ intent: 'Update a contact', action: { tool: 'crm', operation: 'update', target: 'contact:9', parameters: {} } })).body.id;
  });

  it('policy replay: names the past decisions a changed policy would change', async () => {
    const changed = file(
      'changed.yaml',
      BASE_POLICY.replace(
        `  - name: reversible-internal-tagging
    when: action.operation == "tag" && context.reversible && context.destination == "internal"
    effect: allow
    risk: low`,
        `  - name: no-more-tagging
    when: action.operation == "tag"
    effect: deny
    risk: low`,
      ).replace('risk: critical', 'risk: high'),
    );
    const res = await countersign(['policy', 'replay', changed, '--since', '1h'], env);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain('replaying proposals since');
    expect(res.stdout).toContain('replayed 4 proposal(s) since 1h: 2 decision(s) would change');
    expect(res.stdout).toContain(`${ids['tag']}`);
    expect(res.stdout).toContain('allow/low (reversible-internal-tagging) -> deny/low (no-more-tagging)  [effect, rule]');
    expect(res.stdout).toContain(`${ids['large']}`);
    expect(res.stdout).toContain('approve/critical (large-payments, 2× finance) -> approve/high (large-payments, 2× finance)  [risk]');
    expect(res.stdout).not.toContain(ids['refund']!);

    const same = await countersign(['policy', 'replay', policyFile, '--since', '1h', '--json'], env);
    expect(JSON.parse(same.stdout)).toMatchObject({ replayed: 4, skipped: 0, changes: [] });
  });

  it('audit search: filters like the API', async () => {
    const res = await countersign(['audit', 'search', 'invoice', '4711', '--agent', 'billing-agent', '--json'], env);
    expect(res.code).toBe(0);
    const events = JSON.parse(res.stdout).events as { type: string; proposal_id: string }[];
    expect(events.map((e) => e.type)).toEqual(['proposal_received']);
    expect(events[0]!.proposal_id).toBe(ids['refund']);
    const byStatus = await countersign(['audit', 'search', '--status', 'approved', '--since', '1h'], env);
    expect(byStatus.stdout).toContain(ids['tag']);
    expect(byStatus.stdout).not.toContain(ids['refund']);
    expect(byStatus.stderr).toMatch(/\d+ entr(y|ies), newest first/);
    const wrong = await countersign(['audit', 'search', '--status', 'maybe'], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--status must be one of');
  });

  it('audit verify: the chain of this run checks out', async () => {
    const res = await countersign(['audit', 'verify', '--keys', `${app.url}/.well-known/audit-keys.json`], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/audit log ok: \d+ entries/);
  });

  it('propose and demo: sign as an agent from a secret file', async () => {
    const secret = file('billing-secret', `${app.secrets.billing}\n`);
    const agentFlags = ['--url', app.url, '--agent', 'billing-agent', '--secret-file', secret];
    // Another customer: the 50,000 EUR payout to stripe:cus_123 above would make any payment to it large (split-transaction aggregation).
    const res = await countersign(['propose', file('p.json', proposalBody({ intent: 'from the CLI', action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_cli', parameters: {} } })), ...agentFlags]);
    expect(res.code).toBe(0);
    const submitted = JSON.parse(res.stdout);
    expect(submitted).toMatchObject({ status: 'pending', decision: { rule: 'payments' } });

    const wrong = await countersign(['propose', file('p2.json', proposalBody()), '--url', app.url, '--agent', 'billing-agent', '--secret-file', file('bad-secret', 'nope')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('401');

    const demo = await countersign(['demo', ...agentFlags]);
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/1\. a refund \(payments\): p_\w+ pending: high risk/);
    expect(demo.stdout).toMatch(/dropping a production database \(denied by policy\): p_\w+ rejected by the policy/);
  });

  it('revoke: cancels the agent\'s pending proposals', async () => {
    const res = await countersign(['revoke', '--agent', 'ops-agent'], { ...env, POLICY_FILE: policyFile, AGENT_BILLING_SECRET: 'x', AGENT_OPS_SECRET: 'y' });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('revoked agent ops-agent');
    expect(res.stdout).toContain(`cancelled ${ids['crm']}`);
    expect((await app.admin(`/v1/proposals/${ids['crm']}`)).body.status).toBe('cancelled');
  });
});
