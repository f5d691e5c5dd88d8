import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, inject } from 'vitest';
import { start, type Running, type StartOptions } from '../../src/main.ts';
import { testAgent, type TestAgent } from './agent.ts';

// Starts the real countersign (HTTP server, queues, workers) in this test process, on a
// free port, against the run's private redis-server under a prefix of its own.

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export const BASE_POLICY = `
version: 1
agents:
  - id: billing-agent
    sponsors: [dana]
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
  alice: { slack: U0ALICE, teams: 00000000-0000-0000-0000-0000000a11ce }
  bob: { slack: U0BOB }
  carol: { slack: U0CAROL }
  dana: { slack: U0DANA }
  erin: { slack: U0ERIN }
groups:
  finance: [alice, bob, dana]
  security: [alice, carol]
  admins: [alice]
channels:
  finance: { console: true }
  secops: { console: true }
rules:
  - name: never-drop-production-databases
    when: action.tool == "postgres" && action.operation == "drop" && context.environment == "production"
    effect: deny
    reason: Dropping production databases is never delegated to agents
  - name: large-payments
    when: action.tool == "payments" && context.value.amount > 10000.0
    effect: approve
    risk: critical
    route: finance
    approvers: finance
    approvals: 2
    ttl: 30m
  - name: quick-payments
    when: action.tool == "payments" && action.operation == "quick"
    effect: approve
    risk: medium
    route: finance
    approvers: finance
    ttl: 1s
  - name: payments
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
  - name: reversible-internal-tagging
    when: action.operation == "tag" && context.reversible && context.destination == "internal"
    effect: allow
    risk: low
default: { effect: approve, risk: medium, route: secops, approvers: security, approvals: 1, ttl: 15m }
`;

export interface TestApp {
  running: Running;
  url: string;
  prefix: string;
  billing: TestAgent;
  ops: TestAgent;
  secrets: { billing: string; ops: string };
  /** Admin GET with the bearer token. */
  admin<T = any>(path: string): Promise<{ status: number; body: T }>;
}

export interface TestAppOptions {
  policy?: string;
  env?: Record<string, string>;
  start?: StartOptions;
  /** Run on an earlier app's Redis prefix with its agent secrets (see restartTestApp). */
  reuse?: Pick<TestApp, 'prefix' | 'secrets'>;
}

// Registered once, when a test file imports this module: a hook registered inside beforeAll or
// a test is never run, so apps started there would outlive their file (workers, connections).
const started: { running: Running; prefix: string }[] = [];
afterAll(async () => {
  for (const { running, prefix } of started.splice(0).reverse()) {
    const redis = running.redis;
    // An app stopped by a restart has closed its connection: the app that replaced it cleans up.
    let cursor = redis.status === 'ready' ? '0' : null;
    while (cursor !== null) {
      const [next, keys] = await (redis as import('ioredis').Redis).scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
      if (cursor === '0') cursor = null;
    }
    await running.stop();
  }
});

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const url = inject('redisUrl');
  if (url === null) throw new Error('no test Redis');
  const dir = mkdtempSync(join(tmpdir(), 'countersign-test-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, options.policy ?? BASE_POLICY);
  const prefix = options.reuse?.prefix ?? `t-${randomBytes(6).toString('hex')}`;
  const secrets = options.reuse?.secrets ?? { billing: randomBytes(24).toString('hex'), ops: randomBytes(24).toString('hex') };
  const running = await start(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: url,
      COUNTERSIGN_PREFIX: prefix,
      COUNTERSIGN_DATA_DIR: dir,
      POLICY_FILE: policyFile,
      COUNTERSIGN_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      AGENT_BILLING_SECRET: secrets.billing,
      AGENT_OPS_SECRET: secrets.ops,
      LOG_LEVEL: 'silent',
      ...options.env,
    },
    { say: () => undefined, ...options.start },
  );
  started.push({ running, prefix });
  return {
    running,
    url: running.url,
    prefix,
    secrets,
    billing: testAgent(running.url, 'billing-agent', secrets.billing),
    ops: testAgent(running.url, 'ops-agent', secrets.ops),
    async admin<T>(path: string) {
      const res = await fetch(`${running.url}${path}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}

/**
 * Stops `previous` and starts countersign again on the same Redis prefix (its proposals, tokens,
 * queues and audit log) with the same agent secrets: a restart, here with another policy.
 */
export async function restartTestApp(previous: TestApp, options: Omit<TestAppOptions, 'reuse'> = {}): Promise<TestApp> {
  await previous.running.stop();
  return startTestApp({ ...options, reuse: { prefix: previous.prefix, secrets: previous.secrets } });
}
