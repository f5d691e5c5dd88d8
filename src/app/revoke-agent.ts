import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { NotFoundError } from '../core/errors.ts';
import { cancelApproved } from '../core/execution.ts';
import { cancel } from '../core/lifecycle.ts';
import type { ExecutionDeps } from './execution-deps.ts';
import { mutate } from './mutate.ts';

// The kill switch. Stops everything of one agent that has not started: queued executions
// removed and cancelled, outstanding tokens revoked (redeem answers inactive), pending
// proposals cancelled. An execution already running cannot be called back; its token is
// revoked so a downstream that redeems refuses it, and the result lists it.
// Order: each proposal is cancelled (compare-and-set) BEFORE its token is revoked. A worker
// racing the switch either loses its claim to the cancellation, or wins it and then finds the
// token revoked before it sends (tokenStillIssued), or sent before the revocation: then the
// execution was already under way and is listed in still_executing.

export interface RevocationResult {
  agent: string;
  tokens_revoked: number;
  cancelled: string[];
  /** Executions already under way when the switch was pulled. */
  still_executing: string[];
}

const PENDING_SCAN_LIMIT = 100_000;

export async function revokeAgent(x: ExecutionDeps, agentId: string, actor: string): Promise<RevocationResult> {
  const { app } = x;
  if (app.policy.agentById(agentId) === undefined) throw new NotFoundError(`no agent ${agentId} in the policy`);
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
    const r = await mutate(app, proposal_id, (p, t) => cancelApproved(p, actor, reason, t));
    if (r.outcome.cancelled) cancelled.push(proposal_id);
    else if (r.proposal.status === 'executing') stillExecuting.push(proposal_id);
    if (await x.ledger.revoke(jti)) tokensRevoked++;
  }
  const pending = (await app.store.listPending(PENDING_SCAN_LIMIT)).filter((p) => p.agent === agentId);
  for (const p of pending) {
    const r = await mutate(app, p.id, (cur, t) => cancel(cur, actor, reason, t));
    if (r.outcome.kind === 'cancelled') cancelled.push(p.id);
  }

  await app.audit.append([
    auditEvent('agent_revoked', { at: iso(app.clock.now()), proposal_id: null, agent: agentId, actor: actor }, { tokens_revoked: tokensRevoked, cancelled: cancelled.slice(0, 200), cancelled_count: cancelled.length, still_executing: stillExecuting.slice(0, 200) }),
  ]);
  app.logger.warn({ agent: agentId, actor, tokens_revoked: tokensRevoked, cancelled: cancelled.length, still_executing: stillExecuting.length }, 'agent revoked');
  return { agent: agentId, tokens_revoked: tokensRevoked, cancelled, still_executing: stillExecuting };
}
