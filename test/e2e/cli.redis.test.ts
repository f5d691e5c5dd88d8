import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';

// The `countersign` command as a person runs it: a child process, real exit codes.

const run = promisify(execFile);
const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-'));

async function countersign(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const TYPO_POLICY = BASE_POLICY.replace('when: action.tool == "payments" && context.value.amount > 10000.0', 'when: action.tool == "payments" && contxt.value.amount > 10000.0');

describe('start-up refuses a broken policy', () => {
  it('names the file, the rule and the CEL problem, and exits 1', async () => {
    const file = join(dir, 'typo.yaml');
    writeFileSync(file, TYPO_POLICY);
    const res = await countersign(['start'], { POLICY_FILE: file, PORT: '0', AGENT_BILLING_SECRET: 'x', AGENT_OPS_SECRET: 'y', LOG_LEVEL: 'silent' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(file);
    expect(res.stderr).toContain('rule "large-payments"');
    expect(res.stderr).toMatch(/contxt/);
  });

  it('names a missing agent secret variable without starting', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, BASE_POLICY);
    const res = await countersign(['start'], { POLICY_FILE: file, PORT: '0', AGENT_OPS_SECRET: 'y', LOG_LEVEL: 'silent' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('AGENT_BILLING_SECRET');
  });

  it('refuses the built-in example policy in production', async () => {
    const res = await countersign(['start'], { NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', AUDIT_SIGNING_KEY: 'k', REDIS_URL: 'redis://127.0.0.1:1', PUBLIC_URL: 'https://cs.example', COUNTERSIGN_DATA_DIR: dir });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('NODE_ENV=production needs a policy file');
  });

  it('refuses to start in production without AUDIT_SIGNING_KEY', async () => {
    const res = await countersign(['start'], { NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', REDIS_URL: 'redis://127.0.0.1:1', PUBLIC_URL: 'https://cs.example', COUNTERSIGN_DATA_DIR: dir });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/AUDIT_SIGNING_KEY: required/);
  });

  it('names a wrong environment variable', async () => {
    const res = await countersign(['start'], { PORT: 'eighty' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('PORT');
  });
});

describe('countersign policy check', () => {
  it('passes a good policy and fails a typo', async () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, BASE_POLICY);
    const ok = await countersign(['policy', 'check', good], { AGENT_BILLING_SECRET: 'x', AGENT_OPS_SECRET: 'y' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('ok (5 rules, 2 agents, 5 people)');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, TYPO_POLICY);
    const fail = await countersign(['policy', 'check', bad], { AGENT_BILLING_SECRET: 'x', AGENT_OPS_SECRET: 'y' });
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain('large-payments');
  });
});

describe('countersign audit verify', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    for (let i = 0; i < 5; i++) await app.billing.propose(proposalBody({ intent: `refund ${i}` }));
  });

  it('passes on a real log, then names the entry that was edited', async () => {
    const env = { REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix };
    const keys = ['--keys', `${app.url}/.well-known/audit-keys.json`];
    const ok = await countersign(['audit', 'verify', ...keys], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit log ok: \d+ entries \(seq 1 to \d+\), \d+ signed checkpoints?, head [0-9a-f]{64}/);

    // Forge: append an entry whose digest does not match its content.
    const redis = app.running.redis as import('ioredis').Redis;
    const key = `{${app.prefix}}:audit`;
    const [[lastId, fields]] = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][] as [[string, string[]]];
    const copy = [...fields];
    copy[copy.indexOf('seq') + 1] = String(Number(fields[fields.indexOf('seq') + 1]) + 1);
    copy[copy.indexOf('prev_hash') + 1] = fields[fields.indexOf('hash') + 1]!;
    copy[copy.indexOf('data') + 1] = '{"forged":true}';
    const forgedId = await redis.xadd(key, '*', ...copy);
    expect(lastId).not.toBe(forgedId);
    const broken = await countersign(['audit', 'verify', ...keys], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`stream id ${forgedId}`);
    expect(broken.stdout).toContain('edited');
  });
});
