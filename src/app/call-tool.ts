import { NotFoundError, RateLimitedError } from '../core/errors.ts';
import { finishExecution, startInGateway, type ExecutionResult } from '../core/execution.ts';
import { newId } from '../core/ids.ts';
import { isFinal } from '../core/lifecycle.ts';
import { answerFor, awaitingApproval, keepable, outcomeNotRecorded, resultText, type ToolAnswer } from '../core/mcp-answers.ts';
import { UpstreamUnavailableError, type ToolCallResult, type ToolProgress, type ToolResultStore, type ToolUpstreams } from '../core/mcp-ports.ts';
import { splitAgentToolName, splitReason, toolCallDigest, toolCallProposal } from '../core/mcp-tool-call.ts';
import type { AgentSpec } from '../core/policy/model.ts';
import type { TokenLedger } from '../core/ports.ts';
import type { Proposal, ProposalInput } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { mutate } from './mutate.ts';
import { countedPlace } from './revision-aggregate.ts';
import { getProposal, waitForProposal } from './proposals.ts';
import { draftProposal, storeProposal } from './submit-proposal.ts';
import { draftWithFatigue, withFreshAggregate } from './fatigue.ts';

// The MCP gateway's `tools/call`: every call is a proposal, decided by the same policy.
// - allow: countersign calls the upstream at once, in the agent's request (no token, no queue:
//   the proposal is stored already `executing`, so no execute job can run it a second time);
// - deny: nothing is sent; the agent gets the policy's reason;
// - approve: a card, as for any proposal. The call is held (or a task returned) until people
//   decide; the execute worker then runs exactly the approved arguments (adapters/mcp/mcp-executor.ts)
//   and keeps the result, which the agent picks up with the same call again or `tasks/result`.
// A repeated identical call (same agent, tool, arguments) attaches to the open proposal through
// the store's implicit key, which is forgotten once its answer has been given.

export interface GatewayDeps {
  app: AppDeps;
  upstreams: ToolUpstreams;
  results: ToolResultStore;
  ledger: Pick<TokenLedger, 'trackExecuting' | 'untrackExecuting'>;
  /** How long a call without the Tasks extension is held for a decision (MCP_HOLD). */
  holdMs: number;
  /** Slack after an allowed call's timeout before a crashed process's call counts as abandoned. */
  leaseMarginMs: number;
  /** How long the attach key (and so a held call's answer) is kept after the proposal's own ttl. */
  pickupWindowMs: number;
}

export class UnknownToolError extends NotFoundError {
  constructor(name: string) {
    super(`unknown tool ${JSON.stringify(name.slice(0, 200))}`);
  }
}

export interface CallOptions {
  /** The Tasks extension: answer at once with the proposal (as a task) instead of holding. */
  task: boolean;
  /** Called while the call is held or running (a progress token was sent). */
  onProgress?: (p: ToolProgress) => void;
  /** The client went away: stop holding (an upstream call already sent is not abandoned). */
  signal?: AbortSignal;
}

export type CallAnswer = { kind: 'answer'; answer: ToolAnswer | Record<string, unknown> } | { kind: 'task'; proposal: Proposal };

/** What the agent's key or token said about it, beside who it is. */
export interface CallIdentity {
  agent: AgentSpec;
  signedAt: number | null;
}

const ATTACH_PREFIX = 'mcp:';

export async function callTool(g: GatewayDeps, who: CallIdentity, name: string, args: Record<string, unknown>, options: CallOptions): Promise<CallAnswer> {
  const { app } = g;
  const parts = splitAgentToolName(name);
  const server = parts === null ? undefined : app.policy.mcpServers.get(parts.server);
  if (parts === null || server === undefined) throw new UnknownToolError(name);
  const listed = await g.upstreams.listTools(server.name).catch(() => null);
  const upstreamTool = listed?.find((t) => t.name === parts.tool);
  // An upstream that cannot list now is not a reason to refuse: the call is decided and, when
  // it runs, fails as unreachable. One that lists and lacks the tool is.
  if (listed !== null && upstreamTool === undefined) throw new UnknownToolError(name);
  const hasReason = upstreamTool !== undefined && typeof upstreamTool.inputSchema['properties'] === 'object' && upstreamTool.inputSchema['properties'] !== null && 'reason' in upstreamTool.inputSchema['properties'];
  const { forward, reason } = splitReason(args, hasReason);
  const input = toolCallProposal(server, parts.tool, forward, reason);

  const now = app.clock.now();
  try {
    return await withFreshAggregate(() => decideAndCall(g, who, input, { server: server.name, tool: parts.tool, timeoutMs: server.timeout_ms, forward }, now, options));
  } catch (e) {
    // Over one of the agent's limits: the model reads the result, so it says why and when to retry.
    if (e instanceof RateLimitedError) return { kind: 'answer', answer: { content: [{ type: 'text', text: `${e.message}: nothing was proposed; try again in ${e.retryAfterSeconds}s` }], isError: true } };
    throw e;
  }
}

/** Decides the call (with the agent's limits and its aggregate group) and runs, refuses or holds it. */
async function decideAndCall(
  g: GatewayDeps,
  who: CallIdentity,
  input: ProposalInput,
  call: { server: string; tool: string; timeoutMs: number; forward: Record<string, unknown> },
  now: number,
  options: CallOptions,
): Promise<CallAnswer> {
  const { app } = g;
  const draft = await draftWithFatigue(app, who.agent, input, now);
  const effect = draft.proposal.decision.effect;
  if (effect === 'allow') return runAllowed(g, draft, who, call.timeoutMs, options);

  // A call denied on an aggregate's sum may be the repeat of a pending call it was summed with:
  // it still goes through the attach key, so it attaches to that call instead of being a denial
  // of its own (and when it is not a repeat, the key it set is forgotten: the denial is its answer).
  const attachable = effect === 'approve' || draft.proposal.decision.aggregate !== undefined;
  const attachKey = attachable ? `${ATTACH_PREFIX}${toolCallDigest(who.agent.id, call.server, call.tool, call.forward)}` : null;
  const implicit = attachKey === null ? undefined : { key: attachKey, ttlSeconds: Math.ceil((draft.proposal.decision.ttl_ms + g.pickupWindowMs) / 1000) };
  const stored = await storeProposal(app, draft, implicit, who.signedAt);
  const proposal = stored.created ? draft.proposal : stored.existing;
  if (stored.created && effect !== 'approve' && attachKey !== null) await app.store.forgetImplicitKey(proposal.agent, attachKey, proposal.id);
  if (options.task) return { kind: 'task', proposal };
  if (stored.created && effect === 'deny') return { kind: 'answer', answer: answerFor(proposal, null) };
  return { kind: 'answer', answer: await hold(g, proposal, attachKey, options) };
}

/** Holds the call up to holdMs for a final state; the answer, or "awaiting approval". */
async function hold(g: GatewayDeps, first: Proposal, attachKey: string | null, options: CallOptions): Promise<ToolAnswer | Record<string, unknown>> {
  const { app } = g;
  const viewer = { kind: 'agent' as const, id: first.agent };
  const deadline = app.clock.now() + g.holdMs;
  let p = first;
  let beat = 0;
  while (!isFinal(p.status) && !options.signal?.aborted) {
    const left = deadline - app.clock.now();
    if (left <= 0) break;
    options.onProgress?.({ progress: ++beat, message: awaitingApproval(p).content[0]?.text ?? p.status });
    // Wake at least every 10 s: a progress notification keeps proxies and clients from giving up.
    p = await waitForProposal(app, viewer, p.id, Math.min(left, 10_000), options.signal);
  }
  // A client that went away gets nothing: delivering would forget the attach key, and the
  // outcome would be lost to the call it was made for (the next identical one, a new proposal).
  if (!isFinal(p.status) || options.signal?.aborted) return awaitingApproval(p);
  return deliver(g, p, attachKey);
}

/** The final answer, given once per attach key: the next identical call is a new proposal. */
export async function deliver(g: GatewayDeps, p: Proposal, attachKey: string | null): Promise<ToolAnswer | Record<string, unknown>> {
  const kept = p.execution === undefined ? null : await g.results.get(p.id);
  if (attachKey !== null) await g.app.store.forgetImplicitKey(p.agent, attachKey, p.id);
  return answerFor(p, kept);
}

/** The attach key of a proposal made through the gateway (for tasks/result and agents' re-reads). */
export function attachKeyOf(p: Proposal): string | null {
  if (p.decision.effect !== 'approve') return null;
  // The call the agent made: an approver's edit changes what runs, not the call it attaches to.
  const called = p.revision?.proposed.action ?? p.action;
  return `${ATTACH_PREFIX}${toolCallDigest(p.agent, called.tool, called.operation, called.parameters)}`;
}

/** A task's answer: waits until the proposal is final (the client asked with tasks/result). */
export async function taskResult(g: GatewayDeps, agent: string, id: string, signal: AbortSignal | undefined): Promise<ToolAnswer | Record<string, unknown>> {
  const viewer = { kind: 'agent' as const, id: agent };
  let p = await getProposal(g.app, viewer, id);
  while (!isFinal(p.status)) {
    if (signal?.aborted) return awaitingApproval(p);
    p = await waitForProposal(g.app, viewer, id, 30_000, signal);
  }
  // As in hold: nobody is there to take the outcome, so the attach key is not spent on it.
  if (signal?.aborted) return awaitingApproval(p);
  return deliver(g, p, attachKeyOf(p));
}

function asExecutionResult(r: ToolCallResult): ExecutionResult {
  switch (r.kind) {
    case 'result':
      return { kind: 'tool_result', is_error: r.is_error, text: resultText(r.result), duration_ms: r.duration_ms };
    case 'error':
      return { kind: 'tool_error', code: r.code, message: r.message, duration_ms: r.duration_ms };
    default:
      return r;
  }
}

/**
 * An allowed call: stored `executing` with its start (and tracked, so a crash mid-call is
 * settled failed / unknown by the execution sweep), sent, finished; one round trip to Redis
 * on each side of the upstream call.
 */
async function runAllowed(g: GatewayDeps, draft: ReturnType<typeof draftProposal>, who: CallIdentity, timeoutMs: number, options: CallOptions): Promise<CallAnswer> {
  const { app } = g;
  const now = draft.proposal.created_at;
  const started = startInGateway(draft.proposal, newId('t', now), now + timeoutMs, now);
  if (started.next === null) throw new Error('an allowed proposal could not start');
  const executing: Proposal = { ...started.next, version: 1 };
  const deadline = now + timeoutMs + g.leaseMarginMs;
  // Sent together (one round trip): the tracking is harmless for a create that is refused.
  const [tracked, stored] = await Promise.allSettled([
    g.ledger.trackExecuting(executing.id, deadline),
    // Its follow-ups (the change published, metrics) need not hold the agent's call up.
    storeProposal(app, { proposal: executing, events: [...draft.events, ...started.events], ...(draft.create === undefined ? {} : { create: draft.create }) }, undefined, who.signedAt, 'background'),
  ]);
  if (stored.status === 'rejected') {
    await g.ledger.untrackExecuting(executing.id).catch(() => undefined);
    throw stored.reason;
  }
  if (!stored.value.created) throw new Error('an allowed call has no key to be deduped by');
  if (tracked.status === 'rejected') {
    // Stored `executing` with no deadline: no sweep would ever settle it. Nothing was sent, so it
    // ends not run now (best effort: a store that refuses this too leaves it to an operator).
    await finish(g, executing, { kind: 'not_sent', why: 'not_tracked' }).catch((e: unknown) => app.logger.error({ err: e, proposal_id: executing.id }, 'an untracked MCP call could not be ended'));
    throw tracked.reason;
  }

  let sent: ToolCallResult;
  try {
    const caller = await g.upstreams.connect(executing.action.tool);
    sent = await caller.call(executing.action.operation, executing.action.parameters, { timeoutMs, ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) });
  } catch (e) {
    if (!(e instanceof UpstreamUnavailableError)) throw e;
    await finish(g, executing, { kind: 'not_sent', why: 'upstream_unreachable' });
    const p = await app.store.get(executing.id);
    return { kind: 'answer', answer: answerFor(p ?? executing, null) };
  }
  let finished: Proposal;
  try {
    finished = await finish(g, executing, asExecutionResult(sent));
  } catch (e) {
    // The call left: the store's error ("nothing was written, try again") would have the agent
    // send it a second time. It stays `executing` (tracked), so the sweep settles it unknown.
    app.logger.error({ err: e, proposal_id: executing.id }, 'an MCP call was sent but its outcome could not be recorded');
    if (options.task) return { kind: 'task', proposal: executing };
    return { kind: 'answer', answer: outcomeNotRecorded(executing) };
  }
  if (sent.kind === 'result' && options.task) {
    // Recorded already: a result that cannot be kept is "no longer kept" at pick-up, not an error now.
    await g.results.keep(executing.id, keepable(sent.result)).catch((e: unknown) => app.logger.error({ err: e, proposal_id: executing.id }, 'could not keep a tool result for the agent'));
  }
  if (options.task) return { kind: 'task', proposal: finished };
  if (sent.kind === 'result') return { kind: 'answer', answer: sent.result };
  return { kind: 'answer', answer: answerFor(finished, null) };
}

/** The finish commit, against the version this request stored; a conflict (the sweep, a revocation) goes the long way. */
async function finish(g: GatewayDeps, p: Proposal, result: ExecutionResult): Promise<Proposal> {
  const { app } = g;
  const step = finishExecution(p, result, 'system', app.clock.now());
  let after = p;
  const counted = step.next === null ? undefined : countedPlace(app.policy, p, step.next);
  if (step.next !== null && (await app.store.commit(step.next, p.version, step.events, counted === undefined ? {} : { counted })) === 'ok') {
    after = step.next;
    // The outcome is committed: what follows (the change published, a thread reply) and the
    // tracking's removal need not hold the agent's answer up; the flow logs its own failures.
    void app.commits.dispatchInBackground({ before: p, after, events: step.events });
  } else {
    after = (await mutate(app, p.id, (cur, now) => finishExecution(cur, result, 'system', now))).proposal;
  }
  // Only after the outcome is recorded (a call whose record failed stays tracked, for the sweep);
  // an entry left behind is dropped by the sweep, the proposal being final.
  void g.ledger.untrackExecuting(p.id).catch(() => undefined);
  return after;
}

