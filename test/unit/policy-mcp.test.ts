import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/core/errors.ts';
import { agentToolName, splitAgentToolName } from '../../src/core/mcp-tool-call.ts';
import { loadPolicy as loadWith } from '../../src/core/policy/load.ts';
import { DEFAULT_MCP_TIMEOUT_MS, mergeDefaults } from '../../src/core/policy/mcp-servers.ts';
import type { ToolCallDefaults } from '../../src/core/policy/model.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// The policy's `mcp:` section and agents' MCP keys: what loads, and refusals that say where.

type Env = Record<string, string | undefined>;
const loadPolicy = (text: string, env: Env = ENV) => loadWith(text, 'p.yaml', env, POLICY_EXTENSIONS);

const PAYMENTS_TOKEN = 'pay-token-do-not-print-0001';
const GITHUB_TOKEN = 'ghp-token-do-not-print-0002';
const AGENT_KEY = 'agent-a-mcp-key-0123456789abcdef';
const ENV: Env = { PAYMENTS_TOKEN, GITHUB_TOKEN, AGENT_A_MCP_KEY: AGENT_KEY };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const AGENTS = `agents:
  - id: agent-a
    sponsors: []
    mcp_key_env: AGENT_A_MCP_KEY
`;
const DEFAULT = 'default: { effect: deny }\n';

function policyWith(mcp: string, agents = AGENTS, extra = ''): string {
  return `version: 1\n${agents}${extra}mcp:\n  servers:\n${mcp}${DEFAULT}`;
}

const PAYMENTS = `    payments:
      url: "https://payments.example/mcp"
      headers:
        Authorization: { env: PAYMENTS_TOKEN, prefix: "Bearer " }
        X-Tenant: acme
      timeout: 5s
      target: charge
      context: { destination: external, value: { amount_argument: amount, currency: EUR } }
      tools:
        refund: { context: { reversible: false } }
`;
const GITHUB = `    github:
      command: [npx, -y, "@modelcontextprotocol/server-github"]
      env:
        GITHUB_PERSONAL_ACCESS_TOKEN: { env: GITHUB_TOKEN }
        LOG_LEVEL: warn
      cwd: /srv/github
`;

function loadError(text: string, env: Env = ENV): PolicyError {
  try {
    loadPolicy(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error('policy loaded but should have been refused');
}

describe('mcp.servers', () => {
  it('reads an http server with a header secret and a stdio server with env, keeping secrets as references', () => {
    const p = loadPolicy(policyWith(PAYMENTS + GITHUB));
    const payments = p.mcpServers.get('payments');
    expect(payments?.transport).toEqual({
      kind: 'http',
      url: 'https://payments.example/mcp',
      headers: new Map<string, unknown>([
        ['Authorization', { env: 'PAYMENTS_TOKEN', prefix: 'Bearer ' }],
        ['X-Tenant', 'acme'],
      ]),
    });
    expect(payments?.timeout_ms).toBe(5000);
    expect(payments?.defaults).toMatchObject({ target_argument: 'charge', destination: 'external', value_argument: 'amount', currency: 'EUR' });
    expect(payments?.tools.get('refund')).toMatchObject({ reversible: false, target_argument: null, value_argument: null });

    const github = p.mcpServers.get('github');
    expect(github?.transport).toEqual({
      kind: 'stdio',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-github'],
      env: new Map<string, unknown>([
        ['GITHUB_PERSONAL_ACCESS_TOKEN', { env: 'GITHUB_TOKEN', prefix: '' }],
        ['LOG_LEVEL', 'warn'],
      ]),
      cwd: '/srv/github',
    });
    expect(github?.timeout_ms).toBe(DEFAULT_MCP_TIMEOUT_MS);

    // Read at call time, never copied into the policy.
    const everything = JSON.stringify(p, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v));
    expect(everything).not.toContain(PAYMENTS_TOKEN);
    expect(everything).not.toContain(GITHUB_TOKEN);
  });

  it('makes each server the `mcp` executor of the tool of its name', () => {
    const p = loadPolicy(policyWith(PAYMENTS + GITHUB));
    expect(p.executors.get('payments')).toEqual({ tool: 'payments', kind: 'mcp', timeout_ms: 5000, settings: { server: 'payments' } });
    expect(p.executors.get('github')).toEqual({ tool: 'github', kind: 'mcp', timeout_ms: DEFAULT_MCP_TIMEOUT_MS, settings: { server: 'github' } });
  });

  it('loads a policy without an mcp section, with no servers', () => {
    const p = loadPolicy(`version: 1\n${AGENTS}${DEFAULT}`);
    expect(p.mcpServers.size).toBe(0);
  });

  it('refuses a server with both url and command, or neither', () => {
    const both = '    s:\n      url: "https://s.example/mcp"\n      command: [s-server]\n';
    expect(loadError(policyWith(both)).message).toMatch(/mcp\.servers\.s: an MCP server needs url \(Streamable HTTP\) or command \(stdio\), not both/);
    expect(loadError(policyWith('    s:\n      target: id\n')).message).toMatch(/mcp\.servers\.s: an MCP server needs url/);
  });

  it('refuses env (or cwd) on a url server and headers on a command server', () => {
    expect(loadError(policyWith('    s:\n      url: "https://s.example/mcp"\n      env: { A: b }\n')).message).toMatch(/mcp\.servers\.s: env and cwd are for command \(stdio\) servers/);
    expect(loadError(policyWith('    s:\n      url: "https://s.example/mcp"\n      cwd: /tmp\n')).message).toMatch(/mcp\.servers\.s: env and cwd are for command/);
    expect(loadError(policyWith('    s:\n      command: [s-server]\n      headers: { X-A: b }\n')).message).toMatch(/mcp\.servers\.s: headers are for url servers/);
  });

  it.each([
    ['pay__ments', 'p.yaml: mcp.servers.pay__ments: '],
    ['a'.repeat(31), `p.yaml: mcp.servers.${'a'.repeat(31)}: `],
    ['_payments', 'p.yaml: mcp.servers._payments: '],
    ['pay.ments', 'p.yaml: mcp.servers["pay.ments"]: '],
  ])('refuses the server name %j, naming it', (name, where) => {
    expect(loadError(policyWith(`    "${name}":\n      url: "https://s.example/mcp"\n`)).message.startsWith(where)).toBe(true);
  });

  // BUG (reported): zod reports a bad record key as "Invalid key in record", and the policy
  // error shows that instead of the schema's own words about server names.
  it('says what a server name may be', () => {
    expect(loadError(policyWith('    pay__ments:\n      url: "https://s.example/mcp"\n')).message).toMatch(/an MCP server name must be 1-30 letters/);
  });

  it('accepts a 30-character server name', () => {
    expect(loadPolicy(policyWith(`    ${'a'.repeat(30)}:\n      url: "https://s.example/mcp"\n`)).mcpServers.has('a'.repeat(30))).toBe(true);
  });

  // A name ending in "_" would make `<server>__<tool>` split at the server's own "_" (a_'s tool b
  // read back as server "a", tool "_b"): such names are refused, and every accepted one round-trips.
  it('refuses a server name ending in "_", and routes every tool of every server it accepts back to that server', () => {
    expect(loadError(policyWith('    a_:\n      url: "https://s.example/mcp"\n')).message).toMatch(/not at the end/);
    const p = loadPolicy(policyWith('    a_b:\n      url: "https://s.example/mcp"\n    a:\n      url: "https://t.example/mcp"\n'));
    expect([...p.mcpServers.keys()].sort()).toEqual(['a', 'a_b']);
    for (const name of p.mcpServers.keys()) expect(splitAgentToolName(agentToolName(name, '_b'))).toEqual({ server: name, tool: '_b' });
  });

  it('refuses a credential whose variable is unset or empty, naming the variable and no value', () => {
    for (const env of [{ ...ENV, PAYMENTS_TOKEN: undefined }, { ...ENV, PAYMENTS_TOKEN: '  ' }]) {
      const err = loadError(policyWith(PAYMENTS), env);
      expect(err.message).toBe('p.yaml: mcp.servers.payments.headers.Authorization: environment variable PAYMENTS_TOKEN is not set or empty');
    }
    const err = loadError(policyWith(GITHUB), { ...ENV, GITHUB_TOKEN: undefined });
    expect(err.message).toMatch(/mcp\.servers\.github\.env\.GITHUB_PERSONAL_ACCESS_TOKEN: environment variable GITHUB_TOKEN is not set/);
    expect(err.message).not.toContain(PAYMENTS_TOKEN);
    expect(err.message).not.toContain(AGENT_KEY);
  });

  it('refuses an executors entry for the tool an MCP server already runs', () => {
    const executors = 'executors:\n  payments: { url: "https://exec.example/run" }\n';
    expect(loadError(policyWith(PAYMENTS, AGENTS, executors)).message).toMatch(/mcp\.servers\.payments: executors already has an entry for the tool "payments"/);
    // Another tool's executor is fine beside it.
    const other = loadPolicy(policyWith(PAYMENTS, AGENTS, 'executors:\n  deploy: { url: "https://exec.example/run" }\n'));
    expect(other.executors.get('deploy')?.kind).toBe('webhook');
    expect(other.executors.get('payments')?.kind).toBe('mcp');
  });

  it('refuses a zero timeout and a value with both currency and currency_argument', () => {
    expect(loadError(policyWith('    s:\n      url: "https://s.example/mcp"\n      timeout: 0s\n')).message).toMatch(/mcp\.servers\.s: timeout must be longer than 0s/);
    const both = '    s:\n      url: "https://s.example/mcp"\n      context: { value: { amount_argument: a, currency: EUR, currency_argument: c } }\n';
    expect(loadError(policyWith(both)).message).toMatch(/mcp\.servers\.s\.context\.value: give currency or currency_argument, not both/);
  });
});

describe('mergeDefaults', () => {
  const none: ToolCallDefaults = { target_argument: null, data_sensitivity: null, destination: null, environment: null, reversible: null, value_argument: null, currency: null, currency_argument: null };
  const serverWide: ToolCallDefaults = { ...none, target_argument: 'id', data_sensitivity: 'confidential', environment: 'prod', reversible: true, value_argument: 'amount', currency: 'EUR' };

  it("is the server's settings for a tool without its own", () => {
    expect(mergeDefaults(serverWide, undefined)).toEqual(serverWide);
    expect(mergeDefaults(serverWide, none)).toEqual(serverWide);
  });

  it("takes each key the tool sets, false included, and the server's for the rest", () => {
    expect(mergeDefaults(serverWide, { ...none, reversible: false, target_argument: 'repo' })).toEqual({ ...serverWide, reversible: false, target_argument: 'repo' });
  });

  it('lets a tool naming its own amount argument decide the currency, even to none', () => {
    expect(mergeDefaults(serverWide, { ...none, value_argument: 'sum', currency_argument: 'ccy' })).toEqual({ ...serverWide, value_argument: 'sum', currency: null, currency_argument: 'ccy' });
    expect(mergeDefaults(serverWide, { ...none, value_argument: 'sum' })).toEqual({ ...serverWide, value_argument: 'sum', currency: null, currency_argument: null });
  });

  it('leaves both inputs as they were', () => {
    const tool = { ...none, environment: 'staging' };
    const before = [structuredClone(serverWide), structuredClone(tool)];
    mergeDefaults(serverWide, tool);
    expect([serverWide, tool]).toEqual(before);
  });
});

describe('agents’ MCP keys', () => {
  const agent = (keys: string, id = 'agent-a') => `  - id: ${id}\n    sponsors: []\n${keys}`;
  const withAgents = (...agents: string[]) => policyWith(GITHUB, `agents:\n${agents.join('')}`);

  it('hashes a key from the environment, and finds the agent by its hash', () => {
    const p = loadPolicy(policyWith(GITHUB));
    expect(p.agentById('agent-a')?.mcp_key_sha256).toBe(sha(AGENT_KEY));
    expect(p.agentByMcpKeyHash(sha(AGENT_KEY))?.id).toBe('agent-a');
    expect(p.agentByMcpKeyHash(sha('another key'))).toBeUndefined();
  });

  it('accepts a given hash in upper case, stored in lower case; an agent with only an MCP key is valid', () => {
    const hash = sha('key-of-agent-b-0123456789abcdef');
    const p = loadPolicy(withAgents(agent(`    mcp_key_sha256: ${hash.toUpperCase()}\n`, 'agent-b')));
    expect(p.agentById('agent-b')).toMatchObject({ mcp_key_sha256: hash, secret_env: null, oidc: null });
    expect(p.agentByMcpKeyHash(hash)?.id).toBe('agent-b');
  });

  it('leaves agents without a key out of the MCP index', () => {
    const p = loadPolicy(withAgents(agent('    secret_env: AGENT_A_MCP_KEY\n')));
    expect(p.agentById('agent-a')?.mcp_key_sha256).toBeNull();
    expect(p.agentByMcpKeyHash(sha(AGENT_KEY))).toBeUndefined();
  });

  it.each(['abc', 'g'.repeat(64), 'a'.repeat(63), 'a'.repeat(65)])('refuses mcp_key_sha256 %j, which is not 64 hex digits', (hash) => {
    expect(loadError(withAgents(agent(`    mcp_key_sha256: "${hash}"\n`))).message).toMatch(/agents\[0\]\.mcp_key_sha256: must be the 64 hex digits of a SHA-256/);
  });

  it('refuses an unset key variable and a key shorter than 24 characters, naming the variable, never the key', () => {
    for (const env of [{ ...ENV, AGENT_A_MCP_KEY: undefined }, { ...ENV, AGENT_A_MCP_KEY: ' ' }]) {
      expect(loadError(policyWith(GITHUB), env).message).toBe('p.yaml: agent "agent-a": environment variable AGENT_A_MCP_KEY is not set or empty');
    }
    const short = 'short-key-23-characters';
    const err = loadError(policyWith(GITHUB), { ...ENV, AGENT_A_MCP_KEY: short });
    expect(err.message).toMatch(/agent "agent-a": the MCP key in AGENT_A_MCP_KEY is shorter than 24 characters/);
    expect(err.message).not.toContain(short);
    // 24 is enough.
    expect(loadPolicy(policyWith(GITHUB), { ...ENV, AGENT_A_MCP_KEY: `${short}x` }).agentById('agent-a')?.mcp_key_sha256).toBe(sha(`${short}x`));
  });

  it('refuses an agent given both mcp_key_sha256 and mcp_key_env', () => {
    const both = agent(`    mcp_key_sha256: ${sha(AGENT_KEY)}\n    mcp_key_env: AGENT_A_MCP_KEY\n`);
    expect(loadError(withAgents(both)).message).toMatch(/agents\[0\]\.mcp_key_env: give mcp_key_sha256 or mcp_key_env, not both/);
  });

  it('refuses two agents with the same key, however each gives it', () => {
    const fromEnv = agent('    mcp_key_env: AGENT_A_MCP_KEY\n');
    const sameHash = agent(`    mcp_key_sha256: ${sha(AGENT_KEY).toUpperCase()}\n`, 'agent-b');
    expect(loadError(withAgents(fromEnv, sameHash)).message).toBe('p.yaml: agents "agent-a" and "agent-b" have the same MCP key');
    const sameEnv = agent('    mcp_key_env: AGENT_A_MCP_KEY\n', 'agent-b');
    expect(loadError(withAgents(fromEnv, sameEnv)).message).toMatch(/agents "agent-a" and "agent-b" have the same MCP key/);
  });
});
