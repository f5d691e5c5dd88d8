import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { ValidationError } from '../core/errors.ts';
import { cancelApproved } from '../core/execution.ts';
import { cancel } from '../core/lifecycle.ts';
import { ID_PATTERN, ID_RULE } from '../core/policy/schema.ts';
import type { WriteOptions } from '../core/ports.ts';
import type { Proposal } from '../core/proposal.ts';
import type { ExecutionDeps } from './execution-deps.ts';
import { revokeAgentCredentials } from './task-credentials.ts';
import { mutate } from './mutate.ts';

// The kill switch. Stops everything of one agent that has not started: queued executions
// removed and cancelled, outstanding tokens revoked (redeem answers inactive), pending
// proposals cancelled. An execution already running cannot be called back; its token is
// revoked so a downstream that redeems refuses it, and the result lists it.
// Order: each proposal is cancelled (compare-and-set) BEFORE its token is revoked. A worker
// racing the switch either loses its claim to the cancellation, or wins it and then finds the
// token revoked before it sends (tokenStillIssued), or sent before the revocation: then the
// execution was already under way and is listed in still_executing.
// From the revocation on, the proposal store refuses the agent's new proposals (checked in the
// step that writes, see ProposalStore.create): one stored before is in the pending list this
// sweep reads, or, allowed by the policy, loses its token like any approved one (the loop
// above, or issueExecution, which reads the revocation after storing the token).
// Every write of the switch is made even when the store is full (WriteOptions.evenWhenFull): the
// agent to stop may be the one filling it. It takes any well-formed agent id, in the policy or
// not: an agent dropped from the policy may still have work in flight.

export interface RevocationResult {
  agent: string;
  /** False when the policy in force does not name the agent (dropped from it, or never there). */
  in_policy: boolean;
  tokens_revoked: number;
  cancelled: string[];
  /** Executions already under way when the switch was pulled. */
  still_executing: string[];
}

const PENDING_SCAN_LIMIT = 100_000;

const KILL_SWITCH: WriteOptions = { evenWhenFull: true };

/** Any id the policy could name: the switch reaches agents it no longer names. */
function checkAgentId(agentId: string): void {
  if (!ID_PATTERN.test(agentId)) throw new ValidationError(`agent id must be ${ID_RULE}`, [{ path: 'agent', code: 'invalid_format', message: `must be ${ID_RULE}` }]);
}

/** Cancels the agent's pending proposals that `which` picks; their ids. */
async function cancelPending(x: ExecutionDeps, agentId: string, actor: string, reason: string, which: (p: Proposal) => boolean, write: WriteOptions = {}): Promise<string[]> {
  const pending = (await x.app.store.listPending(PENDING_SCAN_LIMIT)).filter((p) => p.agent === agentId && which(p));
  const cancelled: string[] = [];
  for (const p of pending) {
    const r = await mutate(x.app, p.id, (cur, t) => cancel(cur, actor, reason, t), write);
    if (r.outcome.kind === 'cancelled') cancelled.push(p.id);
  }
  return cancelled;
}

export async function revokeAgent(x: ExecutionDeps, agentId: string, actor: string): Promise<RevocationResult> {
  const { app } = x;
  checkAgentId(agentId);
  const inPolicy = app.policy.agentById(agentId) !== undefined;
  const now = app.clock.now();
  // First, so that a token issued from here on is refused at issue (see issueExecution).
  await x.ledger.markAgentRevoked(agentId, now);
  const outstanding = await x.ledger.outstandingTokens(agentId);
  const reason = `agent ${agentId} was revoked`;
  const cancelled: string[] = [];
  const stillExecuting: string[] = [];
  let tokensRevoked = 0;

  for (const { jti, proposal_id } of outstanding) {
    await x.queue.removeExecution(proposal_id);
    const r = await mutate(app, proposal_id, (p, t) => cancelApproved(p, actor, reason, t), KILL_SWITCH);
    if (r.outcome.cancelled) cancelled.push(proposal_id);
    else if (r.proposal.status === 'executing') stillExecuting.push(proposal_id);
    if (await x.ledger.revoke(jti, KILL_SWITCH)) tokensRevoked++;
  }
  cancelled.push(...(await cancelPending(x, agentId, actor, reason, () => true, KILL_SWITCH)));
  // Logins made for its tasks, those still running included: the switch ends every way in.
  await revokeAgentCredentials(x, agentId);

  await app.audit.append(
    [
      auditEvent('agent_revoked', { at: iso(app.clock.now()), proposal_id: null, agent: agentId, actor: actor }, { tokens_revoked: tokensRevoked, cancelled: cancelled.slice(0, 200), cancelled_count: cancelled.length, still_executing: stillExecuting.slice(0, 200), in_policy: inPolicy }),
    ],
    KILL_SWITCH,
  );
  app.logger.warn({ agent: agentId, actor, tokens_revoked: tokensRevoked, cancelled: cancelled.length, still_executing: stillExecuting.length, in_policy: inPolicy }, 'agent revoked');
  return { agent: agentId, in_policy: inPolicy, tokens_revoked: tokensRevoked, cancelled, still_executing: stillExecuting };
}

export interface RestorationResult {
  agent: string;
  /** False when the policy in force does not name the agent: lifted, it still cannot sign in until the policy names it again. */
  in_policy: boolean;
  /** False when the agent was not revoked: nothing changed. */
  restored: boolean;
  /** The revocation this restore lifted (when restored: false, the last one, if any). */
  revoked_at: string | null;
  restored_at: string | null;
  /** What a revocation that stopped midway had left pending: made before it, it could never run. */
  cancelled: string[];
}

/**
 * Lifts the kill switch: the agent may propose again. Brings nothing back: what the
 * revocation cancelled stays cancelled, its revoked tokens stay revoked, and a proposal made
 * before the revocation never gets a token (the revocation time is kept for issueExecution).
 * Pending leftovers of a revocation that stopped midway are cancelled first, before the lift.
 */
export async function restoreAgent(x: ExecutionDeps, agentId: string, actor: string): Promise<RestorationResult> {
  const { app } = x;
  checkAgentId(agentId);
  const inPolicy = app.policy.agentById(agentId) !== undefined;
  const revokedAt = await x.ledger.agentRevokedAt(agentId);
  const unchanged = (cancelled: string[] = []): RestorationResult => ({ agent: agentId, in_policy: inPolicy, restored: false, revoked_at: revokedAt === null ? null : iso(revokedAt), restored_at: null, cancelled });
  if (revokedAt === null || !(await app.store.revokedAgents([agentId])).has(agentId)) return unchanged();

  const cancelled = await cancelPending(x, agentId, actor, `made before agent ${agentId} was revoked`, (p) => p.created_at <= revokedAt);
  const lifted = await x.ledger.markAgentRestored(agentId, app.clock.now());
  if (lifted === null) return unchanged(cancelled); // restored meanwhile by someone else

  const times = { revoked_at: iso(lifted.revoked_at), restored_at: iso(lifted.restored_at) };
  await app.audit.append([
    auditEvent('agent_restored', { at: iso(app.clock.now()), proposal_id: null, agent: agentId, actor }, { ...times, cancelled: cancelled.slice(0, 200), cancelled_count: cancelled.length, in_policy: inPolicy }),
  ]);
  app.logger.warn({ agent: agentId, actor, ...times, cancelled: cancelled.length, in_policy: inPolicy }, 'agent restored');
  return { agent: agentId, in_policy: inPolicy, restored: true, ...times, cancelled };
}
