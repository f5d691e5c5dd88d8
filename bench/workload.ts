// What the benchmark submits: proposal bodies that differ per call, and the policy they meet.

import { signedHeaders } from '../src/core/signing.ts';
import type { HttpClient } from './lib.ts';

let seq = 0;
/** A fresh number for each call: distinct bodies, because identical signed bytes dedupe. */
export const nextSeq = (): number => ++seq;
export function paymentBody(): string {
  const seq = nextSeq();
  return JSON.stringify({
    intent: `Refund invoice ${seq}: the customer was charged twice`,
    action: { tool: 'payments', operation: 'refund', target: `stripe:cus_${seq % 997}`, parameters: { amount: 420, currency: 'EUR' } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
  });
}
export function tagBody(): string {
  const seq = nextSeq();
  return JSON.stringify({
    intent: `Tag ticket ${seq} as duplicate`,
    action: { tool: 'crm', operation: 'tag', target: `ticket:${seq}`, parameters: { tag: 'duplicate' } },
    context: { destination: 'internal', reversible: true },
  });
}

/** A proposal the bench policy denies: no card, no queue job, only the create script in Redis. */
export function deleteBody(): string {
  const seq = nextSeq();
  return JSON.stringify({
    intent: `Delete customer record ${seq}`,
    action: { tool: 'crm', operation: 'delete', target: `customer:${seq}`, parameters: { hard: true } },
    context: { data_sensitivity: 'confidential', destination: 'internal', reversible: false },
  });
}

export function benchPolicy(executorUrl: string): string {
  return `
version: 1
agents:
  - id: bench-agent
    secret_env: AGENT_BENCH_SECRET
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
groups:
  finance: [alice, bob]
  admins: [alice]
channels:
  finance: { slack: C0FINANCE }
executors:
  payments: { url: "${executorUrl}", timeout: 10s }
  crm: { url: "${executorUrl}", timeout: 10s }
rules:
  - name: no-deletes
    when: action.operation == "delete"
    effect: deny
    reason: Agents do not delete customer records
  - name: reversible-internal-tagging
    when: action.operation == "tag" && context.reversible && context.destination == "internal"
    effect: allow
    risk: low
  - name: payments
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
    ttl: 2h
default: { effect: approve, risk: medium, route: finance, approvers: finance, approvals: 1, ttl: 2h }
# The bench floods one agent with proposals needing people on purpose: far above the defaults.
limits: { proposals_per_minute: 1000000, pending: 1000000 }
`;
}


export interface ServerSetting {
  redisUrl: string;
  prefix: string;
  dataDir: string;
  policyFile: string;
  adminToken: string;
  agentSecret: string;
  slackSigningSecret: string;
  slackApiUrl: string;
}

/** countersign's environment in a benchmark: the bench policy, Slack at the fake, no logs. */
export function countersignEnv(s: ServerSetting): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: s.redisUrl,
    COUNTERSIGN_PREFIX: s.prefix,
    COUNTERSIGN_DATA_DIR: s.dataDir,
    POLICY_FILE: s.policyFile,
    COUNTERSIGN_ADMIN_TOKEN: s.adminToken,
    AGENT_BENCH_SECRET: s.agentSecret,
    SLACK_BOT_TOKEN: 'xoxb-bench-token',
    SLACK_SIGNING_SECRET: s.slackSigningSecret,
    SLACK_API_URL: s.slackApiUrl,
    LOG_LEVEL: 'silent',
    NODE_ENV: 'development',
  };
}

/** Submits `body` signed as the bench agent; anything but 201 is an error. */
export async function propose(client: HttpClient, secret: string, body: string): Promise<{ id: string; status: string }> {
  const headers = signedHeaders('bench-agent', secret, { method: 'POST', path: '/v1/proposals', body }, Date.now());
  const res = await client.send('POST', '/v1/proposals', headers, body);
  if (res.status !== 201) throw new Error(`POST /v1/proposals: ${res.status} ${res.body.slice(0, 200)}`);
  return JSON.parse(res.body) as { id: string; status: string };
}
