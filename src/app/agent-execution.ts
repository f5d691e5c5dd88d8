import { auditEvent, type KnownAuditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../core/errors.ts';
import { actionDigest, claimExecution, finishExecution, isTokenExpired, runByCountersign, withdrawUnlessStillAuthorised, type ExecutionTokenClaims } from '../core/execution.ts';
import { mayStillRun } from '../core/lifecycle.ts';
import type { Proposal } from '../core/proposal.ts';
import type { ExecutionDeps } from './execution-deps.ts';
import { mutate } from './mutate.ts';
import { replyToEvents } from './notify-platforms.ts';
import { credentialForHandOver, type HandedCredential } from './task-credentials.ts';
import type { Viewer } from './proposals.ts';
import { authorityFrom } from './record-decision.ts';

// The token's other readers: agents that execute themselves (they take the token, report
// the outcome with it) and downstream services (they redeem it, once).
//
// For an agent that executes itself, the execution is claimed just BEFORE the token leaves
// countersign (the poll read that takes it, the callback that carries it), as the executor's
// is: from then on the action may happen whatever countersign hears (a reset, a timeout), so
// the proposal is `executing` until the agent reports, and failed / unknown if it never does
// within the report window. A token that never left expires with the proposal failed / not_run.
// When an execution ends, its token is closed: redemption needs approved or executing.
// Every one of these checks the proposal against the policy in force first (the claim does,
// or withdrawUnlessStillAuthorised): an agent the policy no longer names runs nothing, people
// removed since they approved do not make a quorum, and such a proposal ends failed / not_run /
// agent_removed or approval_withdrawn with its token revoked.

/**
 * Poll mode: the agent's first read of its approved proposal carries the token, later reads do
 * not. The token is handed out only when this read's claim started the execution and the
 * token is still `issued` after it (a kill switch pulled in between wins). The one exception
 * to "first read only": a token put back because the read that took it was never written
 * (returnExecutionToken) goes to the next read, the execution being already started.
 */
export async function takeExecutionToken(x: ExecutionDeps, p: Proposal, viewer: Viewer): Promise<string | null> {
  return (await readWithExecutionToken(x, p, viewer)).token;
}

/** takeExecutionToken for the agent's read: also the proposal that read shows (see TakenToken). */
export async function readWithExecutionToken(x: ExecutionDeps, read: Proposal, viewer: Viewer): Promise<TakenToken> {
  if (viewer.kind !== 'agent' || viewer.id !== read.agent) return { token: null, proposal: read };
  // Allowed by policy and answered before its token was issued: a read that comes at once
  // (served by this process) waits for the issue instead of answering "approved, no token".
  const p = read.status === 'approved' && (await x.app.commits.settled(read.id)) ? ((await x.app.store.get(read.id)) ?? read) : read;
  const none = { token: null, proposal: p };
  if (p.execution?.mode !== 'poll' || (p.status !== 'approved' && p.status !== 'executing')) return none;
  const jti = p.execution.token_id;
  // A task with a login: the token waits until the login is there to go with it.
  if (p.decision.credentials !== undefined && x.credentials !== undefined && (await x.credentials.ledger.pickup(p.id, false)) === null) return none;
  const token = await x.ledger.takePickup(p.id, jti);
  if (token === null) return none;
  const actor = `agent:${p.agent}`;
  if (p.status === 'approved') {
    const claim = await startAgentExecution(x, p.id, actor);
    // Withdrawn by the claim: the read answers with the proposal as it ended.
    if (!claim.outcome.claimed) return { token: null, proposal: claim.changed ? claim.proposal : p };
  } else {
    // A token put back for this read never left countersign.
    const withdrawn = await withdrawUnlessAuthorised(x, p, false);
    if (withdrawn !== null) return { token: null, proposal: withdrawn };
  }
  if (!(await tokenStillIssued(x, p.id, jti, actor))) return { token: null, proposal: p };
  const credential = await credentialForHandOver(x, p, true);
  return credential === null ? { token, proposal: p } : { token, proposal: p, credential };
}

/** A poll read's token, and the proposal to show: as read, unless this read ended it (approval withdrawn). */
export interface TakenToken {
  token: string | null;
  proposal: Proposal;
  /** The task's login, handed over with the token (once). */
  credential?: HandedCredential;
}

/**
 * For an execution already claimed, before its token leaves (again) or is redeemed: when the
 * policy in force no longer lets it run (its agent removed, its approvals no longer a quorum),
 * it is withdrawn (see withdrawUnlessStillAuthorised) and its token revoked. Resolves with the
 * proposal as it is then, or null when it may still run.
 */
export async function withdrawUnlessAuthorised(x: ExecutionDeps, p: Proposal, tokenOut: boolean): Promise<Proposal | null> {
  const authority = authorityFrom(x.app.policy);
  // The approvals and agent of a decided proposal never change and this process's policy
  // neither: the copy just read answers for the usual case without another round trip.
  if (mayStillRun(p, authority).ok) return null;
  // Whatever the commit finds (it may have ended meanwhile), the token is not honoured.
  let unchanged: readonly KnownAuditEvent[] = [];
  const r = await mutate(x.app, p.id, (cur, now) => {
    const step = withdrawUnlessStillAuthorised(cur, authority, now, tokenOut);
    unchanged = step.next === null ? step.events : [];
    return step;
  });
  await revokeWithdrawn(x, r.proposal);
  // Recorded without a commit (the execution goes on): the thread hears of it all the same.
  if (unchanged.length > 0) await replyToEvents(x.app, r.proposal, unchanged, `void-${r.proposal.version}`);
  return r.proposal;
}

async function revokeWithdrawn(x: ExecutionDeps, p: Proposal): Promise<void> {
  if (p.execution !== undefined) await x.ledger.revoke(p.execution.token_id);
  // Still executing (its token was out): the report window stays tracked for the agent's report.
  if (p.status !== 'executing') await x.ledger.untrackExecuting(p.id);
}

/**
 * The read that took the token was never written (its client had left before the write): the
 * token never left countersign, so it is offered to the agent's next read instead of being
 * lost with the execution already started. Only while it is still `issued` and unexpired.
 */
export async function returnExecutionToken(x: ExecutionDeps, id: string, token: string): Promise<void> {
  const p = await x.app.store.get(id);
  if (p === null || p.execution?.mode !== 'poll' || p.status !== 'executing') return;
  const restored = await x.ledger.restorePickup(id, p.execution.token_id, token);
  x.app.logger.warn({ proposal_id: id, restored }, 'the agent left before its execution token was written: offered to its next read');
}

/**
 * After a successful claim, before the token leaves: a token revoked (or closed) since it was
 * read must not be sent. The claimed execution then ends failed / not_run: nothing left.
 */
export async function tokenStillIssued(x: ExecutionDeps, id: string, jti: string, actor: string): Promise<boolean> {
  const state = await x.ledger.state(jti);
  if (state === 'issued') return true;
  // Redeemed: a downstream holds it and may be acting. It is not handed out again, and the
  // execution is not ended as not run: the agent's report (or the report window) settles it.
  if (state === 'redeemed') return false;
  const why = state === 'revoked' ? 'token_revoked' : 'token_expired';
  await mutate(x.app, id, (cur, now) => finishExecution(cur, { kind: 'not_sent', why }, actor, now));
  await x.ledger.untrackExecuting(id);
  await x.ledger.close(jti);
  return false;
}

export type Redemption = ({ active: true } & ExecutionTokenClaims) | { active: false };

/**
 * `POST /v1/tokens/redeem`: the first valid call spends the token; every other call is `{active: false}`.
 * A downstream may name the `audience` it serves: a token for another tool is refused unspent.
 */
export async function redeemToken(x: ExecutionDeps, token: string, actor: string, audience?: string): Promise<Redemption> {
  const { app } = x;
  const claims = await x.signer.verify(token, app.clock.now(), audience === undefined ? {} : { audience });
  if (claims === null || !(await x.ledger.redeem(claims.jti))) return { active: false };
  // Read after the redemption: a token is active only while its execution may still run. An
  // execution that ended (failed, timed out, cancelled) before this read refuses it, even in
  // the moment before its final transition closed the token in the ledger.
  const p = await app.store.get(claims.proposal_id);
  if (p === null || (p.status !== 'approved' && p.status !== 'executing') || claims.aud !== p.action.tool) return { active: false };
  // The token may have left before the policy changed: it is spent and revoked, not honoured.
  if ((await withdrawUnlessAuthorised(x, p, true)) !== null) return { active: false };
  await app.audit.append([
    auditEvent('token_redeemed', { at: iso(app.clock.now()), proposal_id: claims.proposal_id, agent: claims.sub, actor: actor }, { jti: claims.jti, audience: claims.aud }),
  ]);
  // Normally already started at hand-over; a redemption is proof that it has.
  if (p !== null && p.status === 'approved' && p.execution !== undefined && !runByCountersign(p.execution.mode)) {
    await startAgentExecution(x, p.id, `agent:${p.agent}`);
  }
  return { active: true, ...claims };
}

export async function startAgentExecution(x: ExecutionDeps, id: string, actor: string) {
  const authority = authorityFrom(x.app.policy);
  await x.ledger.trackExecuting(id, x.app.clock.now() + x.tuning.agentReportWindowMs);
  const claim = await mutate(x.app, id, (cur, now) => claimExecution(cur, actor, now, authority));
  if (claim.outcome.withdrawn) await revokeWithdrawn(x, claim.proposal);
  else if (!claim.outcome.claimed && claim.proposal.status !== 'executing') await x.ledger.untrackExecuting(id);
  return claim;
}

export interface OutcomeReport {
  token: string;
  status: 'succeeded' | 'failed';
  status_code?: number | undefined;
  detail?: string | undefined;
}

/** `POST /v1/proposals/:id/outcome`: an agent that executed itself reports, presenting its token. */
export async function reportOutcome(x: ExecutionDeps, agent: string, id: string, report: OutcomeReport): Promise<Proposal> {
  const { app } = x;
  const p = await app.store.get(id);
  if (p === null) throw new NotFoundError(`no proposal ${id}`);
  if (p.agent !== agent) throw new ForbiddenError('this proposal belongs to another agent');
  if (p.execution === undefined) throw new ConflictError(`proposal ${id} has no execution token (it is ${p.status})`);
  // The action may finish after the token expired: the signature and the binding to this
  // proposal, agent and action still prove what was approved.
  const claims = await x.signer.verify(report.token, app.clock.now(), { ignoreExpiry: true });
  if (
    claims === null ||
    claims.jti !== p.execution.token_id ||
    claims.proposal_id !== p.id ||
    claims.sub !== agent ||
    claims.action_digest !== actionDigest(p.action)
  ) {
    throw new ForbiddenError('the execution token does not belong to this proposal');
  }
  // A revoked token starts nothing; but an execution already under way when the agent was
  // revoked did happen, and its real outcome is recorded (marked token_revoked), not lost.
  const revoked = (await x.ledger.state(claims.jti)) === 'revoked';
  if (revoked && p.status !== 'executing') throw new ForbiddenError('the execution token was revoked');
  if (runByCountersign(p.execution.mode)) {
    const who = p.execution.mode === 'gateway' ? "countersign's MCP gateway" : `the ${p.action.tool} executor`;
    throw new ConflictError(`${who} runs this action; agents do not report its outcome`);
  }

  const actor = `agent:${agent}`;
  if (p.status === 'approved') {
    if (isTokenExpired(p, app.clock.now())) throw new ConflictError('the execution token expired before the action started');
    await startAgentExecution(x, id, actor);
  }
  const finished = await mutate(app, id, (cur, now) =>
    finishExecution(
      cur,
      { kind: 'reported', succeeded: report.status === 'succeeded', status_code: report.status_code ?? null, detail: report.detail ?? null, ...(revoked ? { token_revoked: true } : {}) },
      actor,
      now,
    ),
  );
  if (!finished.outcome.finished) throw new ConflictError(`proposal ${id} is already ${finished.proposal.status}`);
  await x.ledger.untrackExecuting(id);
  await x.ledger.close(claims.jti);
  return finished.proposal;
}
