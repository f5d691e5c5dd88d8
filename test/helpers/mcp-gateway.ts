import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

// The MCP gateway's tests: a policy that fronts the fake upstreams (test/helpers/mcp-upstream.ts
// over HTTP, mcp-stdio-upstream.mjs over stdio), and the SDK's real Client pointed at
// countersign's /mcp with an agent's bearer key.

export const MCP_KEYS = { agent: `mcp-agent-key-${randomBytes(16).toString('hex')}`, other: `other-agent-key-${randomBytes(16).toString('hex')}` };
export const UPSTREAM_SECRETS = { payments: `pay-secret-${randomBytes(12).toString('hex')}`, files: `files-secret-${randomBytes(12).toString('hex')}` };
export const CONSOLE_KEY = 'alice-console-key-0123456789';
export const STDIO_UPSTREAM = fileURLToPath(new URL('./mcp-stdio-upstream.mjs', import.meta.url));

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

export interface GatewayPolicyOptions {
  httpUpstreamUrl: string;
  callLog: string;
  /** Cards go to Slack too (the test then sets SLACK_* and a fake Slack). */
  slack?: boolean;
}

/** Rules by operation: echo/fail/slow/crash run at once, big refunds are refused, the rest waits for finance. */
export function gatewayPolicy(o: GatewayPolicyOptions): string {
  return `
version: 1
agents:
  - id: mcp-agent
    sponsors: [dana]
    mcp_key_sha256: ${sha(MCP_KEYS.agent)}
  - id: other-agent
    mcp_key_env: OTHER_MCP_KEY
  - id: billing-agent
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
  alice: { slack: U0ALICE, console_key_sha256: ${sha(CONSOLE_KEY)} }
  bob: { slack: U0BOB }
  dana: { slack: U0DANA }
groups:
  finance: [alice, bob, dana]
channels:
  finance: { ${o.slack === true ? 'slack: C0FINANCE, ' : ''}console: true }
mcp:
  servers:
    payments:
      url: ${o.httpUpstreamUrl}
      headers: { Authorization: { env: PAYMENTS_MCP_TOKEN, prefix: "Bearer " } }
      target: charge_id
      context: { data_sensitivity: confidential, destination: external, value: { amount_argument: amount, currency_argument: currency } }
      tools:
        echo: { context: { reversible: true, destination: internal } }
    files:
      command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(STDIO_UPSTREAM)}]
      env: { FILES_TOKEN: { env: FILES_TOKEN }, UPSTREAM_CALL_LOG: ${JSON.stringify(o.callLog)} }
      timeout: 5s
# The tests hold many calls of one agent at once, far above the default limits.
limits:
  agents:
    mcp-agent: { proposals_per_minute: 1000, pending: 1000 }
rules:
  - name: reads-run-at-once
    when: action.operation in ["echo", "fail", "slow", "crash"] && action.target != "needs-people"
    effect: allow
  - name: big-refunds-never
    when: action.operation == "refund" && context.value.amount > 1000.0
    effect: deny
    reason: refunds over 1000 are done by finance themselves
  - name: quick-refunds
    when: action.operation == "refund" && action.target.startsWith("quick")
    effect: approve
    route: finance
    approvers: finance
    ttl: 1s
default: { effect: approve, risk: medium, route: finance, approvers: finance, ttl: 15m }
`;
}

export function gatewayEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { OTHER_MCP_KEY: MCP_KEYS.other, PAYMENTS_MCP_TOKEN: UPSTREAM_SECRETS.payments, FILES_TOKEN: UPSTREAM_SECRETS.files, ...extra };
}

export function tempCallLog(): string {
  return join(mkdtempSync(join(tmpdir(), 'countersign-mcp-')), 'calls.jsonl');
}

/** The SDK's Client on countersign's /mcp, authenticated with `key`. */
export async function gatewayClient(baseUrl: string, key: string, options: { tasks?: boolean } = {}): Promise<Client> {
  const client = new Client({ name: 'gateway-test-agent', version: '1.0.0' }, { capabilities: options.tasks === true ? { tasks: { requests: {} } } : {} });
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
  await client.connect(transport);
  return client;
}

export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}
