import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import {
  actionDigest,
  approversOf,
  delegatesOf,
  cancelApproved,
  claimExecution,
  failBeforeStart,
  finishExecution,
  isTokenExpired,
  recordTokenIssued,
  runByCountersign,
  type ExecutionMode,
} from '../core/execution.ts';
import { ExecutorUnreachableError, type ExecutionRequest } from '../core/execution-ports.ts';
import { keepable } from '../core/mcp-answers.ts';
import { newId } from '../core/ids.ts';
import type { Proposal } from '../core/proposal.ts';
import { tokenStillIssued, withdrawUnlessAuthorised } from './agent-execution.ts';
import { issueTaskCredential } from './task-credentials.ts';
import type { ExecutionDeps } from './execution-deps.ts';
import { FollowUpFailed, type CommitSubscriber, type Committed } from './after-commit.ts';
import { commitStep, mutate } from './mutate.ts';
import { authorityFrom } from './record-decision.ts';

// From approval to outcome. The rules that matter:
// - the token is minted on approval and kept in the Redis ledger, never in job data;
// - nothing runs after the token's expiry;
// - nothing runs that the policy in force no longer lets run (its agent removed from the
//   policy; approvals of people removed, out of the approvers group, or sponsors of the agent
//   since): checked before connecting and again in the claim, it ends failed / not_run /
//   agent_removed or approval_withdrawn;
// - the approved -> executing commit is the claim: only its winner sends the request, so a
//   job delivered twice (stall, second worker) executes once;
// - an execution whose request may have left is never retried: a timeout, a broken
//   connection or a worker that died mid-call ends failed with outcome unknown.
// A worker killed mid-call leaves the proposal `executing` with a tracked deadline (executor
// timeout + lease margin). After that deadline the execution sweep (at start and every
// sweepEveryMs) or BullMQ's re-delivery of the stalled job settles it as failed / unknown /
// "interrupted": that, not a second attempt, is the definite state after a crash.

/** Something failed before the request was sent (executor unreachable, Redis): the queue may retry. */
export class RetryBeforeSendError extends Error {
  constructor(
    message: string,
    readonly reason: 'executor_unreachable' | 'error_before_send',
  ) {
    super(message);
  }
}

export function executionModeFor(x: ExecutionDeps, p: Proposal): ExecutionMode {
  if (x.app.policy.executors.has(p.action.tool)) return 'executor';
  return x.app.policy.agentById(p.agent)?.callback_url ? 'callback' : 'poll';
}

/** After-commit: a proposal that became approved (by people or by policy) gets its execution. */
export function issueOnApproval(x: ExecutionDeps): CommitSubscriber {
  return {
    name: 'issue-execution',
    onCommitted: async ({ before, after }) => (after.status === 'approved' && before?.status !== 'approved' ? issueExecution(x, after) : []),
  };
}

/**
 * Mints the token, records it, hands the action to whoever runs it. Resolves with what it
 * committed (the token recorded, or the proposal cancelled for a revoked agent), for the
 * after-commit flow to follow up.
 */
export async function issueExecution(x: ExecutionDeps, approved: Proposal, recovering = false): Promise<Committed[]> {
  if (approved.status !== 'approved' || approved.execution !== undefined) return [];
  const { app } = x;
  const now = app.clock.now();
  const mode = executionModeFor(x, approved);
  const jti = newId('t', now);
  const exp = Math.floor((now + x.tokenTtlMs) / 1000);
  const expiresAt = exp * 1000;
  const token = await x.signer.sign({
    sub: approved.agent,
    aud: approved.action.tool,
    jti,
    iat: Math.floor(now / 1000),
    exp,
    proposal_id: approved.id,
    action_digest: actionDigest(approved.action),
    approvers: approversOf(approved),
    ...delegatesOf(approved),
  });
  const stored = await x.ledger.save({ jti, proposal_id: approved.id, agent: approved.agent, expires_at: expiresAt, token, pickup: mode === 'poll', replace: recovering });
  if (!stored) return []; // another replica is issuing this proposal's token

  // Read after the token is stored: a revocation either sees the stored token or is seen here.
  const revokedAt = await x.ledger.agentRevokedAt(approved.agent);
  if (revokedAt !== null && approved.created_at <= revokedAt) {
    await x.ledger.revoke(jti);
    const cancelled = await commitStep(app, approved.id, (p, t) => cancelApproved(p, 'system', `agent ${approved.agent} was revoked`, t));
    return cancelled.committed === null ? [] : [cancelled.committed];
  }

  const recorded = await commitStep(app, approved.id, (p, t) => recordTokenIssued(p, { mode, jti, expires_at: expiresAt, audience: approved.action.tool }, t)).catch(
    async (e: unknown) => {
      // Not recorded (the store refused the write, say, because the audit could not take it):
      // the stored token must not stay usable. Unless the write landed after all (a timeout).
      const now = await app.store.get(approved.id).catch(() => null);
      if (now?.execution?.token_id !== jti) await x.ledger.revoke(jti).catch(() => undefined);
      throw e;
    },
  );
  if (!recorded.outcome.recorded) {
    await x.ledger.revoke(jti);
    return [];
  }
  const committed = recorded.committed === null ? [] : [recorded.committed];
  // The rule's login for the task, before anything can take the token (a poll read waits for
  // it: readWithExecutionToken); one that cannot be made ends the task not run. Only for an
  // agent that runs the action itself: an executor's action would make a login nobody receives.
  if (mode === 'executor' && approved.decision.credentials !== undefined) {
    app.logger.warn({ proposal_id: approved.id, issuer: approved.decision.credentials.issuer }, "the rule's credentials are not issued: countersign's executor runs this action, not the agent");
  } else if (!(await issueTaskCredential(x, approved))) {
    await x.ledger.revoke(jti);
    const failed = await commitStep(app, approved.id, (p, t) => failBeforeStart(p, 'credential_unavailable', t));
    return failed.committed === null ? committed : [...committed, failed.committed];
  }
  try {
    // Slack on the expiry job so it never fires a moment before the token is really expired.
    await x.queue.scheduleTokenExpiry(approved.id, expiresAt + 250);
    if (mode === 'executor') await x.queue.enqueueExecution(approved.id);
    if (app.policy.agentById(approved.agent)?.callback_url) await x.queue.enqueueCallback(approved.id, 'approved');
  } catch (e) {
    // The token is recorded: its commit still gets its follow-ups; reconcile adds the jobs again.
    throw new FollowUpFailed(e, committed);
  }
  return committed;
}

async function failNotRun(x: ExecutionDeps, id: string, reason: string): Promise<void> {
  const r = await mutate(x.app, id, (p, now) => failBeforeStart(p, reason, now));
  if (r.outcome.failed && r.proposal.execution !== undefined) await x.ledger.revoke(r.proposal.execution.token_id);
}

function executionRequest(p: Proposal): ExecutionRequest {
  const approvals = p.approvals.filter((a) => a.vote === 'approve').map((a) => ({ person: a.person, platform: a.platform, at: iso(a.at) }));
  return { proposal_id: p.id, agent: p.agent, action: p.action, approvals };
}

/** The execute job. Throws RetryBeforeSendError only while nothing has been sent. */
export async function runExecution(x: ExecutionDeps, id: string): Promise<void> {
  const sent = { value: false };
  try {
    await execute(x, id, sent);
  } catch (e) {
    if (sent.value || e instanceof RetryBeforeSendError) throw e;
    throw new RetryBeforeSendError(`before sending: ${e instanceof Error ? e.message : String(e)}`, 'error_before_send');
  }
}

async function execute(x: ExecutionDeps, id: string, sent: { value: boolean }): Promise<void> {
  const { app } = x;
  const p = await app.store.get(id);
  if (p === null || p.execution === undefined) return;
  if (p.status === 'executing') return settleIfAbandoned(x, p);
  if (p.status !== 'approved' || p.execution.mode !== 'executor') return;
  if ((await withdrawUnlessAuthorised(x, p, false)) !== null) return;
  if (isTokenExpired(p, app.clock.now())) return failNotRun(x, id, 'token_expired');
  const spec = app.policy.executors.get(p.action.tool);
  const executor = spec === undefined ? undefined : x.executors.get(spec.kind);
  if (spec === undefined || executor === undefined) return failNotRun(x, id, 'no_executor');
  const token = await x.ledger.tokenFor(id, p.execution.token_id);
  if (token === null) {
    const state = await x.ledger.state(p.execution.token_id);
    return failNotRun(x, id, state === 'revoked' ? 'token_revoked' : 'token_expired');
  }

  let connection;
  try {
    connection = await executor.connect(spec);
  } catch (e) {
    if (e instanceof ExecutorUnreachableError) throw new RetryBeforeSendError(e.message, 'executor_unreachable');
    throw e;
  }
  try {
    // Tracked before the claim, so a second worker that sees "executing" also sees that
    // someone is on it until this deadline (the send is bounded by the timeout).
    await x.ledger.trackExecuting(id, app.clock.now() + spec.timeout_ms + x.tuning.leaseMarginMs);
    const authority = authorityFrom(app.policy);
    const claim = await mutate(app, id, (cur, now) => claimExecution(cur, 'system', now, authority));
    if (!claim.outcome.claimed) {
      if (claim.outcome.withdrawn) await x.ledger.revoke(p.execution.token_id);
      if (claim.proposal.status === 'approved' && claim.outcome.why === 'token_expired') {
        await x.ledger.untrackExecuting(id);
        await failNotRun(x, id, 'token_expired');
      }
      // Anything else: another worker holds the claim (keep its tracking) or it is final.
      if (claim.proposal.status !== 'executing') await x.ledger.untrackExecuting(id);
      return;
    }
    // The token was read before the claim: a revocation in between (it cancels first, then
    // revokes) must stop it here. Then the claimed execution ends not run.
    if (!(await tokenStillIssued(x, id, p.execution.token_id, 'system'))) return;
    sent.value = true;
    const result = await connection.send(token, executionRequest(claim.proposal));
    // Kept before the outcome is committed: whoever sees "succeeded" can pick the result up.
    if (result.kind === 'tool_result' && x.results !== undefined) {
      await x.results.keep(id, keepable(result.kept)).catch((e: unknown) => app.logger.error({ err: e, proposal_id: id }, 'could not keep a tool result for the agent'));
    }
    const finished = await mutate(app, id, (cur, now) => finishExecution(cur, result, 'system', now));
    if (!finished.outcome.finished) {
      // Declared abandoned while it ran (a stalled event loop): keep the late truth in the audit.
      await app.audit.append([
        auditEvent('execution_finished', { at: iso(app.clock.now()), proposal_id: id, agent: p.agent, actor: 'system' }, { late: true, kind: result.kind, http_status: result.kind === 'response' ? result.status_code : null, recorded_status: finished.proposal.status }),
      ]);
    }
  } finally {
    connection.close();
  }
  await x.ledger.untrackExecuting(id);
  // Over: an issued token (the executor never redeemed it) is closed, so it redeems no more.
  await x.ledger.close(p.execution.token_id);
}

/** A claimed execution nobody is running any more is failed with outcome unknown, never re-run. */
async function settleIfAbandoned(x: ExecutionDeps, p: Proposal): Promise<void> {
  const deadline = await x.ledger.executingDeadline(p.id);
  if (deadline !== null && deadline > x.app.clock.now()) return; // someone is on it
  const why = p.execution !== undefined && runByCountersign(p.execution.mode) ? 'interrupted' : 'no_outcome_reported';
  await mutate(x.app, p.id, (cur, now) => finishExecution(cur, { kind: 'interrupted', why }, 'system', now));
  await x.ledger.untrackExecuting(p.id);
  if (p.execution !== undefined) await x.ledger.close(p.execution.token_id);
}

/** After the last attempt failed before sending: nothing was sent, so it did not run. */
export async function executionGaveUp(x: ExecutionDeps, id: string, error: unknown): Promise<void> {
  await failNotRun(x, id, error instanceof RetryBeforeSendError ? error.reason : 'error_before_send');
}

/** Delayed job at the token's expiry: an unused token ends the execution (every mode). */
export async function checkTokenExpiry(x: ExecutionDeps, id: string): Promise<void> {
  const p = await x.app.store.get(id);
  if (p === null || p.status !== 'approved' || !isTokenExpired(p, x.app.clock.now())) return;
  await failNotRun(x, id, 'token_expired');
}

/**
 * Runs at start and periodically: executions claimed by a worker that is gone (crash,
 * SIGKILL, lost host) are settled as failed / unknown once their deadline has passed.
 */
export async function sweepExecutions(x: ExecutionDeps, limit = 200): Promise<number> {
  const ids = await x.ledger.overdueExecutions(x.app.clock.now(), limit);
  let settled = 0;
  for (const id of ids) {
    const p = await x.app.store.get(id);
    if (p?.status === 'executing') {
      await settleIfAbandoned(x, p);
      settled++;
    } else {
      await x.ledger.untrackExecuting(id);
    }
  }
  return settled;
}

/**
 * Approved with a token recorded, but the jobs that move it on may never have been added (the
 * process died, or Redis refused, after recordTokenIssued): a token already past its expiry
 * fails the proposal (not run: it is still approved, so nothing took the token), otherwise the
 * expiry, execute and callback jobs are added again; their job ids make that a no-op when
 * they exist.
 */
async function resumeIssued(x: ExecutionDeps, p: Proposal): Promise<void> {
  if (p.execution === undefined) return;
  if (isTokenExpired(p, x.app.clock.now())) return failNotRun(x, p.id, 'token_expired');
  await x.queue.scheduleTokenExpiry(p.id, p.execution.token_expires_at + 250);
  if (p.execution.mode === 'executor') await x.queue.enqueueExecution(p.id);
  if (x.app.policy.agentById(p.agent)?.callback_url) await x.queue.enqueueCallback(p.id, 'approved');
}

/**
 * The approval commit and the token issue are two steps: a process that dies between them
 * leaves a proposal approved with no token. Runs at start and periodically: approvals from
 * the audit log's recent past that still have no execution are issued now (the issue's
 * compare-and-set keeps a slow live issuer and this pass from both recording a token); those
 * still approved with a token get their jobs again (resumeIssued).
 */
export async function reissueMissingTokens(x: ExecutionDeps): Promise<number> {
  const now = x.app.clock.now();
  const seen = new Set<string>();
  let issued = 0;
  let cursor: string | null = null;
  do {
    const page = await x.app.audit.search({
      words: ['decided'],
      since: now - x.tuning.reconcileWindowMs,
      until: now - x.tuning.reconcileGraceMs,
      limit: 500,
      ...(cursor === null ? {} : { cursor }),
    });
    for (const e of page.events) {
      if (e.type !== 'decided' || e.data['status'] !== 'approved' || e.proposal_id === null || seen.has(e.proposal_id)) continue;
      seen.add(e.proposal_id);
      const p = await x.app.store.get(e.proposal_id);
      if (p === null || p.status !== 'approved') continue;
      if (p.execution !== undefined) {
        await resumeIssued(x, p);
        continue;
      }
      x.app.logger.warn({ proposal_id: p.id }, 'approved proposal had no execution token (a process stopped mid-way): issuing it now');
      let committed: readonly Committed[];
      try {
        committed = await issueExecution(x, p, true);
      } catch (e) {
        if (!(e instanceof FollowUpFailed)) throw e;
        x.app.logger.error({ err: e.cause, proposal_id: p.id }, 'recovery recorded a token but could not add its jobs; the next pass adds them');
        committed = e.committed;
      }
      for (const c of committed) await x.app.commits.dispatch(c);
      issued++;
    }
    cursor = page.next;
  } while (cursor !== null);
  return issued;
}
