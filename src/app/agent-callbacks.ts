import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { approversOf, delegatesOf, describeExecution, redactSecrets, runByCountersign } from '../core/execution.ts';
import type { Proposal, Status } from '../core/proposal.ts';
import { requestTarget, signedHeaders } from '../core/signing.ts';
import type { ExecutionDeps } from './execution-deps.ts';
import { startAgentExecution, tokenStillIssued, withdrawUnlessAuthorised } from './agent-execution.ts';
import { credentialForHandOver } from './task-credentials.ts';
import type { CommitSubscriber } from './after-commit.ts';
import { replyToEvents } from './notify-platforms.ts';

// Callbacks to agents: only to the callback_url the policy lists for the agent, signed like
// agent requests (X-Countersign-* headers, the agent's own secret), retried with backoff by
// the callback queue. The token travels only in an `approved` callback to an agent that
// executes itself.

const CALLBACK_STATUSES: ReadonlySet<Status> = new Set(['approved', 'denied', 'expired', 'cancelled', 'succeeded', 'failed']);

/** The agent answered with something other than 2xx; the queue retries. */
export class CallbackRefusedError extends Error {
  constructor(readonly httpStatus: number) {
    super(`the agent's callback answered HTTP ${httpStatus}`);
  }
}

/** A callback that can never be delivered (no secret to sign it with). */
export class CallbackImpossibleError extends Error {}

/** After-commit: tell the agent about every end of the road it did not report itself. */
export function callAgentBack(x: ExecutionDeps): CommitSubscriber {
  return {
    name: 'call-agent-back',
    onCommitted: async ({ before, after }) => {
      if (before !== null && before.status !== after.status) await enqueueStatusCallback(x, after);
    },
  };
}

async function enqueueStatusCallback(x: ExecutionDeps, p: Proposal): Promise<void> {
  if (!CALLBACK_STATUSES.has(p.status) || p.status === 'approved') return; // approved: issueExecution sends it, with the token
  if (!x.app.policy.agentById(p.agent)?.callback_url) return;
  const e = p.execution;
  const reportedByAgent = e !== undefined && !runByCountersign(e.mode) && (e.outcome === 'succeeded' || e.reason === 'reported_failed');
  if (reportedByAgent) return;
  await x.queue.enqueueCallback(p.id, p.status);
}

export async function deliverCallback(x: ExecutionDeps, id: string, status: Status): Promise<void> {
  const { app } = x;
  const read = await app.store.get(id);
  if (read === null) return;
  const agent = app.policy.agentById(read.agent);
  if (agent === undefined) {
    // Dropped from the policy since: nobody to call back, and its approved action does not run
    // (an execution whose token was already sent, in an earlier attempt, keeps it revoked).
    if (read.status === 'approved' || read.status === 'executing') await withdrawUnlessAuthorised(x, read, read.status === 'executing');
    return;
  }
  if (agent.callback_url === null) return;
  if (agent.secret === null) throw new CallbackImpossibleError(`agent ${agent.id} has no secret_env to sign callbacks with`);
  let p = read;
  let token: string | null = null;
  if (status === 'approved' && p.execution?.mode === 'callback' && (p.status === 'approved' || p.status === 'executing')) {
    const jti = p.execution.token_id;
    token = await x.ledger.tokenFor(id, jti);
    if (token !== null && p.status === 'approved') {
      // Claim BEFORE the token leaves (the executor's order): once the request is on the wire
      // the agent may act whatever comes back (a timeout, a reset), so from here on a failure
      // ends `unknown`, never `not_run`. A claim refused (expired, cancelled, its approvals
      // withdrawn by the policy in force) sends no token.
      const actor = `agent:${p.agent}`;
      const claim = await startAgentExecution(x, id, actor);
      p = claim.proposal;
      if (!claim.outcome.claimed || !(await tokenStillIssued(x, id, jti, actor))) token = null;
    } else if (token !== null && (await x.ledger.state(jti)) === 'revoked') {
      // A retry of a callback whose execution already started: the same token again (the
      // earlier attempt may never have arrived), unless the agent was revoked since…
      token = null;
    } else if (token !== null) {
      // …or the policy in force no longer lets it run (the token is revoked; the agent may still report).
      const withdrawn = await withdrawUnlessAuthorised(x, p, true);
      if (withdrawn !== null) {
        p = withdrawn;
        token = null;
      }
    }
  }
  const payload: Record<string, unknown> = {
    proposal_id: p.id,
    agent: p.agent,
    // The status this callback is about (the proposal may have moved on since; `current_status` says where it is).
    status,
    current_status: p.status,
    action: p.action,
    decision: { effect: p.decision.effect, risk: p.decision.risk, rule: p.decision.rule, reasons: p.decision.reasons },
    resolution: p.resolution === null ? null : { ...p.resolution, at: iso(p.resolution.at) },
    approvers: approversOf(p),
    ...delegatesOf(p),
    execution: describeExecution(p.execution),
  };
  if (token !== null) payload['execution_token'] = token;
  // The task's login goes with the token; read, not taken, so a retried callback carries it
  // again; dropped once one is delivered.
  const credential = token === null ? null : await credentialForHandOver(x, p, false);
  if (credential !== null) payload['credential'] = credential;
  const body = JSON.stringify(payload);
  const httpStatus = await x.callbacks.post(agent.callback_url, signedHeaders(agent.id, agent.secret, { method: 'POST', path: requestTarget(agent.callback_url), body }, app.clock.now()), body, x.tuning.callbackTimeoutMs);
  if (httpStatus < 200 || httpStatus >= 300) throw new CallbackRefusedError(httpStatus);
  if (credential !== null) await x.credentials?.ledger.dropPickup(p.id);
  await app.audit.append([
    auditEvent('callback_delivered', { at: iso(app.clock.now()), proposal_id: p.id, agent: p.agent, actor: 'system' }, { status, http_status: httpStatus, with_token: token !== null }),
  ]);
}

/** After the last attempt: recorded, and said in the card's thread. */
export async function callbackGaveUp(x: ExecutionDeps, id: string, status: Status, attempts: number, error: unknown): Promise<void> {
  const { app } = x;
  const p = await app.store.get(id);
  if (p === null) return;
  const event = auditEvent('callback_failed', { at: iso(app.clock.now()), proposal_id: p.id, agent: p.agent, actor: 'system' }, {
      status,
      attempts,
      http_status: error instanceof CallbackRefusedError ? error.httpStatus : null,
      // Our own error classes and network errors; neither carries the token or the signature.
      error: redactSecrets(error instanceof Error ? error.message : String(error)).slice(0, 200),
    });
  await app.audit.append([event]);
  await replyToEvents(app, p, [event], `callback-${status}`);
}
