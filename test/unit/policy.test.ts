import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/core/errors.ts';
import { evaluate, type CompiledPolicy, type PolicyInput } from '../../src/core/policy/evaluate.ts';
import { loadPolicy as loadWith } from '../../src/core/policy/load.ts';
import { EXAMPLE_POLICY_YAML } from '../../src/wiring/example-policy.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

const loadPolicy = (text: string, file: string, env: Record<string, string | undefined>) => loadWith(text, file, env, POLICY_EXTENSIONS);

const ENV = { AGENT_A_SECRET: 'super-secret-value-123' };

const HEAD = `version: 1
agents:
  - id: agent-a
    sponsors: [dana]
    secret_env: AGENT_A_SECRET
  - id: agent-b
    oidc: { issuer: https://issuer.example, subject: "sa:b", audience: countersign }
people:
  alice: { slack: U0ALICE, teams: 0000-AA11CE }
  bob: { slack: U0BOB }
  dana: { slack: U0DANA }
groups:
  finance: [alice, bob]
  security: [alice]
channels:
  finance: { slack: C0FIN }
  secops: { console: true }
`;
const DEFAULT = 'default: { effect: approve, risk: medium, route: secops, approvers: security, ttl: 15m }\n';

function yamlWith(rules: string, defaults = DEFAULT): string {
  return `${HEAD}rules:\n${rules}${defaults}`;
}

function load(rules: string, defaults = DEFAULT): CompiledPolicy {
  return loadPolicy(yamlWith(rules, defaults), 'test.yaml', ENV);
}

function loadError(text: string, env: Record<string, string | undefined> = ENV): PolicyError {
  try {
    loadPolicy(text, 'bad.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error('policy loaded but should have been refused');
}

function input(over: { tool?: string; operation?: string; amount?: number; parameters?: Record<string, unknown>; reversible?: boolean } = {}): PolicyInput {
  return {
    agent: { id: 'agent-a', sponsors: ['dana'] },
    intent: 'test',
    action: {
      tool: over.tool ?? 'payments',
      operation: over.operation ?? 'refund',
      target: 'stripe:cus_1',
      parameters: (over.parameters ?? {}) as PolicyInput['action']['parameters'],
    },
    context: {
      data_sensitivity: 'internal',
      destination: 'internal',
      environment: 'production',
      reversible: over.reversible ?? false,
      value: { amount: over.amount ?? 0, currency: 'EUR' },
    },
  };
}

const RULES = `  - name: no-drop
    when: action.operation == "drop"
    effect: deny
    reason: never drop
  - name: large
    when: action.tool == "payments" && context.value.amount > 10000.0
    effect: approve
    risk: critical
    route: finance
    approvers: finance
    approvals: 2
    ttl: 30m
  - name: payments
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
  - name: tagging
    when: action.operation == "tag" && context.reversible
    effect: allow
    risk: low
`;

describe('evaluate', () => {
  const policy = load(RULES);

  it('takes the first matching rule, in file order', () => {
    const d = evaluate(policy, input({ operation: 'drop' }));
    expect(d.rule).toBe('no-drop');
    expect(evaluate(policy, input({ amount: 20_000 })).rule).toBe('large');
    expect(evaluate(policy, input({ amount: 20 })).rule).toBe('payments');
  });

  it('deny carries the rule reason and no approval fields', () => {
    expect(evaluate(policy, input({ operation: 'drop' }))).toEqual({
      effect: 'deny', risk: 'medium', rule: 'no-drop', reasons: ['never drop'],
      route: null, approvers: null, approvals_required: 0, ttl_ms: 0,
    });
  });

  it('approve carries route, approvers, approvals and ttl', () => {
    expect(evaluate(policy, input({ amount: 20_000 }))).toEqual({
      effect: 'approve', risk: 'critical', rule: 'large', reasons: ['matched rule "large"'],
      route: 'finance', approvers: 'finance', approvals_required: 2, ttl_ms: 30 * 60_000,
    });
    const d = evaluate(policy, input({ amount: 5 }));
    expect(d).toMatchObject({ effect: 'approve', risk: 'high', approvals_required: 1, ttl_ms: 15 * 60_000 });
  });

  it('carries step_up: true on the decision of a rule that says it, and nothing on any other', () => {
    const p = load(`  - name: keys\n    when: action.tool == "vault"\n    effect: approve\n    risk: critical\n    step_up: true\n    route: finance\n    approvers: finance\n${RULES}`);
    expect(p.rules[0]).toMatchObject({ name: 'keys', step_up: true });
    expect(evaluate(p, input({ tool: 'vault' }))).toEqual({
      effect: 'approve', risk: 'critical', rule: 'keys', reasons: ['matched rule "keys"'],
      route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 15 * 60_000, step_up: true,
    });
    expect(evaluate(p, input({ amount: 5 }))).not.toHaveProperty('step_up');
    expect(p.rules[1]).toMatchObject({ name: 'no-drop', step_up: false });
  });

  it('allow carries no approval fields', () => {
    expect(evaluate(policy, input({ tool: 'crm', operation: 'tag', reversible: true }))).toEqual({
      effect: 'allow', risk: 'low', rule: 'tagging', reasons: ['matched rule "tagging"'],
      route: null, approvers: null, approvals_required: 0, ttl_ms: 0,
    });
  });

  it('falls back to the default', () => {
    const d = evaluate(policy, input({ tool: 'crm', operation: 'tag', reversible: false }));
    expect(d).toMatchObject({ effect: 'approve', risk: 'medium', rule: 'default', route: 'secops', approvers: 'security', approvals_required: 1, ttl_ms: 900_000 });
    expect(d.reasons).toHaveLength(1);
  });

  it('compares amounts given as integers or doubles against int and double literals', () => {
    const p = load(`  - name: int-literal
    when: context.value.amount > 10000
    effect: deny
  - name: double-literal
    when: context.value.amount >= 420.0
    effect: allow
  - name: param-equality
    when: has(action.parameters.count) && action.parameters.count == 3 && action.parameters.ratio > 1
    effect: allow
`);
    expect(evaluate(p, input({ amount: 10_001 })).rule).toBe('int-literal');
    expect(evaluate(p, input({ amount: 10_000.5 })).rule).toBe('int-literal');
    expect(evaluate(p, input({ amount: 10_000 })).rule).toBe('double-literal');
    expect(evaluate(p, input({ amount: 420 })).rule).toBe('double-literal');
    expect(evaluate(p, input({ amount: 419.99 })).rule).toBe('default');
    expect(evaluate(p, input({ parameters: { count: 3, ratio: 1.5 } })).rule).toBe('param-equality');
    expect(evaluate(p, input({ parameters: { count: 3.0, ratio: 2 } })).rule).toBe('param-equality');
  });

  it('fails closed: a rule that throws never allows, even when a later rule would', () => {
    const p = load(`  - name: needs-foo
    when: action.parameters.foo == "x"
    effect: deny
  - name: allow-all
    when: "true"
    effect: allow
`);
    const d = evaluate(p, input({ parameters: {} }));
    expect(d.effect).toBe('approve');
    expect(d).toMatchObject({ risk: 'critical', rule: 'needs-foo', route: 'secops', approvers: 'security', approvals_required: 1 });
    expect(d.reasons[0]).toMatch(/^rule "needs-foo" could not be evaluated: .*foo/);
    // With the key present the same policy evaluates normally.
    expect(evaluate(p, input({ parameters: { foo: 'y' } })).effect).toBe('allow');
  });

  it('fails closed to deny when the default does not route to approvers', () => {
    const p = load('  - name: boom\n    when: action.parameters.missing > 1\n    effect: allow\n', 'default: { effect: allow }\n');
    expect(evaluate(p, input())).toMatchObject({ effect: 'deny', risk: 'critical', rule: 'boom', route: null, approvals_required: 0 });
  });

  it('treats a non-boolean result as an evaluation failure', () => {
    const p = load('  - name: dyn-flag\n    when: action.parameters.flag\n    effect: allow\n');
    expect(evaluate(p, input({ parameters: { flag: true } })).effect).toBe('allow');
    const d = evaluate(p, input({ parameters: { flag: 'yes' } }));
    expect(d).toMatchObject({ effect: 'approve', risk: 'critical', rule: 'dyn-flag' });
  });

  it('accepts `when: true` written as a YAML boolean', () => {
    const p = load('  - name: all\n    when: true\n    effect: deny\n');
    expect(evaluate(p, input()).effect).toBe('deny');
  });

  it('sees agent, intent and has()', () => {
    const p = load(`  - name: sponsored-by-dana
    when: '"dana" in agent.sponsors && agent.id == "agent-a" && intent == "test" && !has(action.parameters.x)'
    effect: allow
`);
    expect(evaluate(p, input()).rule).toBe('sponsored-by-dana');
    expect(evaluate(p, input({ parameters: { x: 1 } })).rule).toBe('default');
  });
});

describe('loadPolicy refuses', () => {
  it('a CEL typo, naming the file and the rule', () => {
    const err = loadError(yamlWith('  - name: typo\n    when: actoin.tool == "x"\n    effect: deny\n'));
    expect(err.message).toMatch(/^bad\.yaml: rule "typo": CEL: .*actoin/);
    expect(err.rule).toBe('typo');
  });

  it('an unknown field on a declared variable, a type error and a non-boolean when', () => {
    expect(loadError(yamlWith('  - name: r\n    when: action.tol == "x"\n    effect: deny\n')).message).toMatch(/rule "r": CEL: .*tol/);
    expect(loadError(yamlWith('  - name: r\n    when: context.value.amount == 5\n    effect: deny\n')).message).toMatch(/decimal point/);
    expect(loadError(yamlWith('  - name: r\n    when: action.tool\n    effect: deny\n')).message).toMatch(/true or false/);
    expect(loadError(yamlWith('  - name: r\n    when: action.tool ==\n    effect: deny\n')).message).toMatch(/rule "r": CEL:/);
  });

  it('unknown route, group and person', () => {
    const approve = (route: string, group: string) =>
      yamlWith(`  - name: r\n    when: "true"\n    effect: approve\n    route: ${route}\n    approvers: ${group}\n`);
    expect(loadError(approve('nowhere', 'finance')).message).toMatch(/rule "r": route "nowhere" is not listed under channels/);
    expect(loadError(approve('finance', 'ghosts')).message).toMatch(/rule "r": approvers "ghosts" is not listed under groups/);
    expect(loadError(yamlWith('', 'default: { effect: approve, route: secops, approvers: nobody }\n')).message).toMatch(/rule "default".*nobody/);
    expect(loadError(HEAD.replace('security: [alice]', 'security: [alice, mallory]') + DEFAULT).message).toMatch(/group "security" names "mallory"/);
    expect(loadError(HEAD.replace('sponsors: [dana]', 'sponsors: [zed]') + DEFAULT).message).toMatch(/agent "agent-a" sponsors names "zed"/);
  });

  it('an unknown key, naming its path and the rule', () => {
    const err = loadError(yamlWith('  - name: r1\n    when: "true"\n    effect: deny\n  - name: r2\n    when: "true"\n    effect: deny\n    aprovers: finance\n'));
    expect(err.message).toBe('bad.yaml: rule "r2": rules[1].aprovers: unknown key');
    expect(loadError(`${yamlWith('')}extra: 1\n`).message).toMatch(/extra: unknown key/);
  });

  it('a bad enum value with its path', () => {
    const err = loadError(yamlWith('  - name: r1\n    when: "true"\n    effect: maybe\n'));
    expect(err.rule).toBe('r1');
    expect(err.message).toMatch(/rules\[0\]\.effect: Invalid option/);
  });

  it('a YAML syntax error, with the line', () => {
    const err = loadError('version: 1\nrules: [\n  - name: x\n');
    expect(err.message).toMatch(/^bad\.yaml: YAML syntax error at line \d+/);
  });

  it('step_up on an allow or deny rule (it only means something when people approve), or given as anything but true/false', () => {
    expect(loadError(yamlWith('  - name: r\n    when: "true"\n    effect: allow\n    step_up: true\n')).message).toMatch(/rules\[0\]\.step_up: only applies to effect approve, not allow/);
    expect(loadError(yamlWith('', 'default: { effect: deny, step_up: false }\n')).message).toMatch(/default\.step_up: only applies to effect approve, not deny/);
    expect(loadError(yamlWith('  - name: r\n    when: "true"\n    effect: approve\n    route: finance\n    approvers: finance\n    step_up: "yes"\n')).message).toMatch(/rules\[0\]\.step_up:/);
  });

  it('approve without route/approvers, and approval settings on allow/deny', () => {
    expect(loadError(yamlWith('  - name: r\n    when: "true"\n    effect: approve\n')).message).toMatch(/rules\[0\]\.route: is required/);
    expect(loadError(yamlWith('', 'default: { effect: approve }\n')).message).toMatch(/default\.route: is required/);
    expect(loadError(yamlWith('  - name: r\n    when: "true"\n    effect: deny\n    approvals: 2\n')).message).toMatch(/only applies to effect approve/);
  });

  it('duplicates, approvals beyond the group, short ttl, agents without credentials', () => {
    const rule = '  - name: same\n    when: "true"\n    effect: deny\n';
    expect(loadError(yamlWith(rule + rule)).message).toMatch(/rule "same": another rule has the same name/);
    expect(loadError(yamlWith('', 'default: { effect: approve, route: secops, approvers: security, approvals: 2 }\n')).message).toMatch(/only 1 member/);
    expect(loadError(yamlWith('', 'default: { effect: approve, route: secops, approvers: security, ttl: 500ms }\n')).message).toMatch(/at least 1s/);
    expect(loadError(yamlWith('', 'default: { effect: approve, route: secops, approvers: security, ttl: soon }\n')).message).toMatch(/invalid duration/);
    expect(loadError(HEAD.replace('id: agent-b', 'id: agent-a') + DEFAULT).message).toMatch(/agent "agent-a" is listed twice/);
    expect(loadError(HEAD.replace('    secret_env: AGENT_A_SECRET\n', '') + DEFAULT).message).toMatch(/agents\[0\]: an agent needs secret_env/);
    expect(loadError(HEAD.replace('secops: { console: true }', 'secops: { console: false }') + DEFAULT).message).toMatch(/channels\.secops: a channel must list/);
  });

  it('a missing or empty agent secret, naming the variable but not leaking values', () => {
    for (const env of [{}, { AGENT_A_SECRET: '' }]) {
      const err = loadError(yamlWith('', DEFAULT), env);
      expect(err.message).toMatch(/agent "agent-a": environment variable AGENT_A_SECRET is not set/);
    }
    const other = loadError(yamlWith('', DEFAULT), { OTHER: 'do-not-print-me' });
    expect(other.message).not.toContain('do-not-print-me');
  });
});

describe('executors', () => {
  const withExecutor = (entry: string) => yamlWith('', DEFAULT).replace('rules:\n', `executors:\n  payments: ${entry}\nrules:\n`);

  it('reads an entry without a kind as a webhook, with its url and timeout', () => {
    const p = loadPolicy(withExecutor('{ url: "https://exec.example/run", timeout: 5s }'), 'p.yaml', ENV);
    expect(p.executors.get('payments')).toEqual({ tool: 'payments', kind: 'webhook', timeout_ms: 5000, settings: { url: 'https://exec.example/run' } });
    expect(loadPolicy(withExecutor('{ kind: webhook, url: "https://exec.example/run" }'), 'p.yaml', ENV).executors.get('payments')?.timeout_ms).toBe(10_000);
  });

  it('refuses an unknown kind, a key the kind does not take, and a webhook without a url', () => {
    expect(loadError(withExecutor('{ kind: ftp, url: "https://exec.example/run" }')).message).toMatch(/executors\.payments\.kind/);
    expect(loadError(withExecutor('{ url: "https://exec.example/run", header: x }')).message).toMatch(/executors\.payments\.header: unknown key/);
    expect(loadError(withExecutor('{ timeout: 5s }')).message).toMatch(/executors\.payments\.url/);
  });
});

describe('platform keys', () => {
  it('refuses a console key given both ways, and a key variable that is not set, naming the person', () => {
    const both = HEAD.replace('bob: { slack: U0BOB }', `bob: { slack: U0BOB, console_key_sha256: ${'a'.repeat(64)}, console_key_env: BOB_KEY }`) + DEFAULT;
    expect(loadError(both, { ...ENV, BOB_KEY: 'k' }).message).toMatch(/person "bob": give console_key_sha256 or console_key_env, not both/);
    const unset = HEAD.replace('bob: { slack: U0BOB }', 'bob: { slack: U0BOB, console_key_env: BOB_KEY }') + DEFAULT;
    expect(loadError(unset).message).toMatch(/person "bob": environment variable BOB_KEY is not set or empty/);
  });

  it('refuses two people with one user id on a platform, compared the platform\'s way', () => {
    expect(loadError(HEAD.replace('bob: { slack: U0BOB }', 'bob: { slack: U0ALICE }') + DEFAULT).message).toMatch(/people "alice" and "bob" have the same slack id/);
    expect(loadError(HEAD.replace('bob: { slack: U0BOB }', 'bob: { slack: U0BOB, teams: 0000-aa11ce }') + DEFAULT).message).toMatch(/same teams id/);
    expect(() => loadPolicy(HEAD.replace('bob: { slack: U0BOB }', 'bob: { slack: u0alice }') + DEFAULT, 'p.yaml', ENV)).not.toThrow();
  });

  it('refuses a key no platform owns, under a person and under a channel', () => {
    expect(loadError(HEAD.replace('bob: { slack: U0BOB }', 'bob: { slack: U0BOB, discord: "123" }') + DEFAULT).message).toMatch(/people\.bob\.discord: unknown key/);
    expect(loadError(HEAD.replace('finance: { slack: C0FIN }', 'finance: { slack: C0FIN, discord: "123" }') + DEFAULT).message).toMatch(/channels\.finance\.discord: unknown key/);
  });
});

describe('policy lookups', () => {
  const policy = load(RULES);

  it('exposes agents with their secret, without making the secret enumerable', () => {
    const a = policy.agentById('agent-a');
    expect(a?.secret).toBe(ENV.AGENT_A_SECRET);
    expect(JSON.stringify(a)).not.toContain(ENV.AGENT_A_SECRET);
    expect(policy.agentById('agent-b')?.secret).toBeNull();
    expect(policy.agentById('nobody')).toBeUndefined();
  });

  it('maps platform user ids back to people and answers membership', () => {
    expect(policy.personByPlatformId('slack', 'U0BOB')?.id).toBe('bob');
    expect(policy.personByPlatformId('teams', '0000-aa11ce')?.id).toBe('alice');
    expect(policy.personByPlatformId('slack', 'u0bob')).toBeUndefined();
    expect(policy.isMember('finance', 'bob')).toBe(true);
    expect(policy.isMember('security', 'bob')).toBe(false);
    expect(policy.isMember('nope', 'bob')).toBe(false);
  });

  it('finds agents by OIDC issuer, subject and audience', () => {
    expect(policy.agentByOidc('https://issuer.example', 'sa:b', 'countersign')?.id).toBe('agent-b');
    expect(policy.agentByOidc('https://issuer.example', 'sa:b', ['other', 'countersign'])?.id).toBe('agent-b');
    expect(policy.agentByOidc('https://issuer.example', 'sa:b', 'other')).toBeUndefined();
    expect(policy.agentByOidc('https://evil.example', 'sa:b', 'countersign')).toBeUndefined();
  });
});

describe('shipped policies', () => {
  it('policy.example.yaml loads and decides like DESIGN.md describes', () => {
    const text = readFileSync(new URL('../../policy.example.yaml', import.meta.url), 'utf8');
    const p = loadPolicy(text, 'policy.example.yaml', { AGENT_BILLING_SECRET: 'x' });
    expect(evaluate(p, { ...input({ tool: 'postgres', operation: 'drop' }), agent: { id: 'billing-agent', sponsors: ['dana'] } }).effect).toBe('deny');
    expect(evaluate(p, input({ amount: 420 })).rule).toBe('payments');
    expect(evaluate(p, input({ amount: 10_000.01 })).rule).toBe('large-payments');
    expect(evaluate(p, input({ tool: 'vault', operation: 'read' }))).toMatchObject({ rule: 'production-secrets', risk: 'critical', step_up: true });
  });

  it('the built-in example loads, routes to the console and decides', () => {
    const p = loadPolicy(EXAMPLE_POLICY_YAML, '(built-in example)', { COUNTERSIGN_DEMO_AGENT_SECRET: 'demo', COUNTERSIGN_DEMO_MCP_KEY: 'k'.repeat(32), COUNTERSIGN_DEMO_PAYMENTS_TOKEN: 't' });
    expect([...p.channels.keys()]).toEqual(['ops']);
    expect(p.platformsOf('ops')).toEqual(['console']);
    expect(p.targetOf('ops', 'console')).toEqual({ target: 'ops', details: {}, bindable: false });
    expect(p.agentById('demo-agent')?.sponsors).toEqual(['sam']);
    expect(p.isMember('admins', 'demo')).toBe(true);
    expect(evaluate(p, input({ amount: 50_000 }))).toMatchObject({ effect: 'approve', risk: 'critical', rule: 'large-payments', route: 'ops' });
    expect(evaluate(p, input({ tool: 'crm', operation: 'tag', reversible: true })).effect).toBe('allow');
    expect(evaluate(p, input({ tool: 'postgres', operation: 'drop' })).effect).toBe('deny');
    expect(evaluate(p, { ...input({ tool: 'email', operation: 'send' }), context: { ...input().context, destination: 'external' } }).rule).toBe('external-email');
    expect(evaluate(p, input({ tool: 'crm', operation: 'update' }))).toMatchObject({ rule: 'default', effect: 'approve', ttl_ms: 900_000 });
  });
});

describe('quorum reachable for every agent', () => {
  it('refuses a rule whose approvals an agent\'s sponsors put out of reach', () => {
    const yaml = `
version: 1
agents:
  - { id: a1, sponsors: [bob], secret_env: S }
people: { alice: {}, bob: {} }
groups: { finance: [alice, bob] }
channels: { c: { console: true } }
rules:
  - { name: two-eyes, when: "true", effect: approve, route: c, approvers: finance, approvals: 2 }
default: { effect: deny }
`;
    expect(() => loadPolicy(yaml, 'p.yaml', { S: 'x' })).toThrow(/rule "two-eyes".*agent "a1" could never get 2 approvals/);
    expect(() => loadPolicy(yaml.replace('sponsors: [bob]', 'sponsors: []'), 'p.yaml', { S: 'x' })).not.toThrow();
  });
});
