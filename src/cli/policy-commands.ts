import { readFileSync } from 'node:fs';
import { replayPolicy, type DecisionSummary } from '../app/replay-policy.ts';
import { parseDuration } from '../core/duration.ts';
import { CountersignError, PolicyError } from '../core/errors.ts';
import { STEP_UP_WINDOW_MS } from '../core/lifecycle.ts';
import { evaluate, type CompiledPolicy } from '../core/policy/evaluate.ts';
import { loadPolicy } from '../core/policy/load.ts';
import { showHiddenOneLine } from '../core/visible-text.ts';
import { checkPlatforms, PLATFORMS, POLICY_EXTENSIONS } from '../wiring/platforms.ts';
import { loadConfig } from '../config.ts';
import { parseProposalInput, type Decision } from '../core/proposal.ts';
import { openAuditLog } from '../wiring/cli-commands.ts';
import { evaluationEnv, usage, withoutSecrets, type Env, type Flags, type Io } from './io.ts';

// `policy check`, `policy test` and `policy replay`: try a policy before it is live.

function readPolicyFile(file: string, env: Env): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PolicyError(file, undefined, `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return loadPolicy(text, file, env, POLICY_EXTENSIONS);
}

/**
 * `policy check FILE`: the structure, rules and references, with or without the secrets the
 * policy names (a policy repository's CI has none); what `start` would still need is a note.
 */
export function runPolicyCheck(file: string, env: Env, io: Io): number {
  const { env: lookup, missing } = withoutSecrets(env);
  const policy = readPolicyFile(file, lookup);
  io.out(`${file}: ok (${policy.rules.length} rules, ${policy.agents.size} agents, ${policy.people.size} people)`);
  if (missing.size > 0) {
    io.out(`note: checked without ${[...missing].sort().join(', ')} (not set here); \`countersign start\` refuses to start until ${missing.size === 1 ? 'it is' : 'they are'} set`);
  }
  // What the routes' platforms need at start (a Slack route without Slack's variables), as a note too.
  try {
    checkPlatforms(loadConfig(env, PLATFORMS), policy);
  } catch (e) {
    if (!(e instanceof CountersignError)) throw e;
    io.out(`note: with this environment \`countersign start\` would stop: ${e.message}`);
  }
  return 0;
}

function ttl(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

export function describeDecision(d: Decision): string {
  const head = `${d.effect} (risk ${d.risk}) by ${d.rule === 'default' ? 'the default' : `rule "${d.rule}"`}`;
  const reasons = d.reasons.length > 0 ? `\nreason: ${d.reasons.join('; ')}` : '';
  const people = d.effect === 'approve' ? `\nneeds ${d.approvals_required} approval(s) from group "${d.approvers ?? ''}", posted to route "${d.route ?? ''}", expires after ${ttl(d.ttl_ms)}` : '';
  const stepUp = d.step_up === true ? `\nstep-up: approvals count only in the console, from people who signed in there within the last ${STEP_UP_WINDOW_MS / 60_000} minutes` : '';
  // When nobody answers (escalation.ts): each step, reminders, and what the deadline does.
  const steps = (d.escalate ?? []).map((s, i) => `\nescalation step ${i + 1}: after ${ttl(s.after_ms)} to route "${s.route}", group "${s.approvers}" may decide too`).join('');
  const remind = d.remind_ms === undefined ? '' : `\nreminder every ${ttl(d.remind_ms)}`;
  const timeout = d.effect === 'approve' && d.on_timeout === 'deny' ? '\nat the deadline: denied by the policy (on_timeout: deny)' : '';
  return `decision: ${head}${reasons}${people}${stepUp}${steps}${remind}${timeout}`;

}

/** `policy test FILE PROPOSAL.json [--agent ID] [--json]`: the decision and the rule that matched. */
export function runPolicyTest(file: string, proposalFile: string, flags: Flags, env: Env, io: Io): number {
  const policy = readPolicyFile(file, evaluationEnv(env));
  const input = parseProposalInput(JSON.parse(readFileSync(proposalFile, 'utf8')));
  const agents = [...policy.agents.keys()];
  const agentId = flags.string('agent') ?? (agents.length === 1 ? agents[0]! : undefined);
  if (agentId === undefined) throw usage(`the policy has ${agents.length} agents: say which one proposes with --agent (${agents.join(', ')})`);
  const agent = policy.agentById(agentId);
  if (agent === undefined) throw usage(`no agent "${agentId}" in ${file} (agents: ${agents.join(', ') || 'none'})`);
  const decision = evaluate(policy, { agent: { id: agent.id, sponsors: [...agent.sponsors] }, intent: input.intent, action: input.action, context: input.context });
  if (flags.has('json')) io.out(JSON.stringify({ agent: agent.id, decision }, null, 2));
  else io.out(`agent: ${agent.id}\naction: ${showHiddenOneLine(`${input.action.tool} ${input.action.operation} on ${input.action.target}`)}\n${describeDecision(decision)}`);
  return 0;
}

function sinceMs(text: string, now: number): number {
  if (/^\d+(ms|d|h|m|s)/.test(text)) return now - parseDuration(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw usage(`--since "${text}": write a duration (7d, 24h) or a date (2026-01-31)`);
  return ms;
}

function short(d: DecisionSummary | null): string {
  if (d === null) return '(unknown)';
  return `${d.effect}/${d.risk} (${d.rule}${d.effect === 'approve' ? `, ${d.approvals_required}× ${d.approvers ?? ''}${d.step_up === true ? ', step-up' : ''}` : ''})`;
}

/** `policy replay FILE [--since 7d] [--until DATE] [--json]`: which past decisions the policy would change. */
export async function runPolicyReplay(file: string, flags: Flags, env: Env, io: Io): Promise<number> {
  const policy = readPolicyFile(file, evaluationEnv(env));
  const now = Date.now();
  const sinceText = flags.string('since') ?? '7d';
  const since = sinceMs(sinceText, now);
  const untilText = flags.string('until');
  const range = untilText === undefined ? { since } : { since, until: sinceMs(untilText, now) };
  const { audit, close } = await openAuditLog(env);
  let result;
  try {
    io.err(`replaying proposals since ${new Date(since).toISOString()} against ${file}…`);
    let last = 0;
    result = await replayPolicy(audit, policy, range, (scanned) => {
      if (scanned - last >= 5000) {
        last = scanned;
        io.err(`  read ${scanned} audit entries…`);
      }
    });
  } finally {
    await close();
  }
  if (flags.has('json')) {
    io.out(JSON.stringify(result, null, 2));
    return 0;
  }
  for (const c of result.changes) {
    // What the agent wrote reaches the operator's terminal: escape sequences and hidden characters shown, not run.
    const what = showHiddenOneLine(`${c.action.tool} ${c.action.operation} ${c.action.target}`);
    io.out(`${c.proposal_id}  ${c.at}  ${c.agent}  ${what}\n    ${short(c.before)} -> ${short(c.after)}  [${c.changed.join(', ')}]`);
  }
  const skipped = result.skipped > 0 ? ` (${result.skipped} could not be read back)` : '';
  io.out(`replayed ${result.replayed} proposal(s) since ${sinceText}: ${result.changes.length} decision(s) would change, ${result.unchanged} unchanged${skipped}`);
  const unknown = Object.entries(result.unknown_agents);
  if (unknown.length > 0) {
    const who = unknown.map(([agent, n]) => `${showHiddenOneLine(agent)} (${n})`).join(', ');
    io.out(`not compared: ${unknown.reduce((sum, [, n]) => sum + n, 0)} proposal(s) from agents not in ${file}: ${who}; their requests would be refused`);
  }
  return 0;
}
