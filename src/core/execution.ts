import { createHash } from 'node:crypto';
import { canonicalJson } from './audit.ts';
import { iso } from './clock.ts';
import { approvalVoidEvents, canTransition, eventAbout, mayStillRun, type Authority, type RunCheck, type Step } from './lifecycle.ts';
import type { Action, Proposal, Status } from './proposal.ts';
import { responseExcerpt } from './redact.ts';

export { EXCERPT_LENGTH, redactSecrets, responseExcerpt } from './redact.ts';

// Execution, pure: the record kept on an approved proposal and the transitions that move
// it to executing / succeeded / failed. The store's compare-and-set commits each step, so
// "approved -> executing" is the one claim that lets an action run: whoever commits it
// runs the action, everyone else sees that it is taken.

/**
 * Who runs the action: the policy's executor for the tool, the agent itself (told by callback,
 * or by its next read), or the MCP gateway at once, in the agent's own call (`gateway`: a call
 * the policy allows; no token is minted, `token_id` names the grant in the audit).
 */
export type ExecutionMode = 'executor' | 'callback' | 'poll' | 'gateway';

/** Modes where countersign itself sends the request, so the agent never reports the outcome. */
export function runByCountersign(mode: ExecutionMode): boolean {
  return mode === 'executor' || mode === 'gateway';
}

/**
 * `unknown`: the request left countersign but no answer came back (timeout, lost connection,
 * a worker that died mid-call): the action may or may not have happened, so it is never
 * retried blindly. `not_run`: it certainly did not happen (token expired, executor unreachable).
 */
export type ExecutionOutcome = 'succeeded' | 'failed' | 'unknown' | 'not_run';

export interface Execution {
  mode: ExecutionMode;
  /** The token's `jti`; the token itself lives only in the Redis token ledger. */
  token_id: string;
  token_expires_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** HTTP status from the executor, when it answered. */
  status_code: number | null;
  outcome: ExecutionOutcome | null;
  /** Why it failed, in a word: token_expired, timeout, interrupted, executor_unreachable, … */
  reason: string | null;
  duration_ms: number | null;
  /** The start of the executor's (or agent's) answer, secrets redacted. */
  response_excerpt: string | null;
}

/** Claims of an execution token (DESIGN.md, Execution tokens). */
export interface ExecutionTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  jti: string;
  iat: number;
  exp: number;
  proposal_id: string;
  action_digest: string;
  approvers: string[];
  /** Approvals cast by a delegate for an approver away (`{alice: "erin"}`); absent when there were none. */
  delegates?: Record<string, string>;
}

/** base64url (unpadded) SHA-256 of the RFC 8785 canonical JSON of the action. */
export function actionDigest(action: Action): string {
  return createHash('sha256').update(canonicalJson(action)).digest('base64url');
}

export function approversOf(p: Proposal): string[] {
  return p.approvals.filter((a) => a.vote === 'approve').map((a) => a.person);
}

/**
 * Who clicked for whom: the approvers' seats say "alice" when erin approved for her while she
 * was away, and downstream systems that read the token must be able to tell. Absent (not `{}`)
 * without delegates, so tokens read exactly as before.
 */
export function delegatesOf(p: Proposal): { delegates: Record<string, string> } | Record<string, never> {
  const cast = p.approvals.filter((a) => a.vote === 'approve' && a.delegate !== undefined);
  return cast.length === 0 ? {} : { delegates: Object.fromEntries(cast.map((a) => [a.person, a.delegate as string])) };
}

const event = eventAbout;

function moved(p: Proposal, status: Status, execution: Execution): Proposal {
  return { ...p, status, execution, version: p.version + 1 };
}

const nothing = <O>(outcome: O): Step<O> => ({ outcome, next: null, events: [] });

export interface IssuedToken {
  mode: ExecutionMode;
  jti: string;
  expires_at: number;
  audience: string;
}

/** An execution with nothing finished yet. */
function newExecution(mode: ExecutionMode, tokenId: string, tokenExpiresAt: number, startedAt: number | null): Execution {
  return {
    mode,
    token_id: tokenId,
    token_expires_at: tokenExpiresAt,
    started_at: startedAt,
    finished_at: null,
    status_code: null,
    outcome: null,
    reason: null,
    duration_ms: null,
    response_excerpt: null,
  };
}

/** Records the minted token (never the token itself) on an approved proposal, once. */
export function recordTokenIssued(p: Proposal, token: IssuedToken, now: number): Step<{ recorded: boolean }> {
  if (p.status !== 'approved' || p.execution !== undefined) return nothing({ recorded: false });
  const execution = newExecution(token.mode, token.jti, token.expires_at, null);
  return {
    outcome: { recorded: true },
    next: { ...p, execution, version: p.version + 1 },
    events: [
      event(p, now, 'token_issued', 'system', {
        jti: token.jti,
        mode: token.mode,
        audience: token.audience,
        expires_at: iso(token.expires_at),
        approvers: approversOf(p),
        ...delegatesOf(p),
        action_digest: actionDigest(p.action),
      }),
    ],
  };
}

/**
 * A call the policy allows, run by the MCP gateway in the agent's own request: approved ->
 * executing in one step, before the proposal is first stored, so nothing else (no token, no
 * execute job) ever runs it. `grant` names it in the audit; `deadline` bounds the call.
 */
export function startInGateway(p: Proposal, grant: string, deadline: number, now: number): Step<{ started: boolean }> {
  if (p.status !== 'approved' || p.execution !== undefined || p.decision.effect !== 'allow') return nothing({ started: false });
  const execution = newExecution('gateway', grant, deadline, now);
  return {
    outcome: { started: true },
    next: { ...p, status: 'executing', execution },
    events: [event(p, now, 'execution_started', 'system', { mode: 'gateway', jti: grant, action_digest: actionDigest(p.action) })],
  };
}

export function isTokenExpired(p: Proposal, now: number): boolean {
  return p.execution !== undefined && now >= p.execution.token_expires_at;
}

/**
 * An approved proposal that will not run: its token expired in the queue, the executor was
 * unreachable on every attempt, or the policy no longer names an executor. Nothing was sent.
 */
export function failBeforeStart(p: Proposal, reason: string, now: number): Step<{ failed: boolean }> {
  if (p.status !== 'approved' || p.execution === undefined) return nothing({ failed: false });
  const execution: Execution = { ...p.execution, finished_at: now, outcome: 'not_run', reason };
  return {
    outcome: { failed: true },
    next: moved(p, 'failed', execution),
    events: [event(p, now, 'execution_finished', 'system', { status: 'failed', outcome: 'not_run', reason })],
  };
}

type Withdrawn = Extract<RunCheck, { ok: false }>;

/**
 * Not run because the policy in force no longer lets it: its agent was removed from the policy
 * (`agent_removed`), or the people who approved it no longer make its quorum
 * (`approval_withdrawn`, naming who no longer qualifies). The resolution stays as it was made (a
 * decided proposal never changes its decision): the execution is what ends, failed / not_run.
 */
function failWithdrawn(p: Proposal, execution: Execution, w: Withdrawn, now: number): Pick<Step<unknown>, 'next' | 'events'> {
  const reason = w.why;
  const next = moved(p, 'failed', { ...execution, finished_at: now, outcome: 'not_run', reason });
  if (w.why === 'agent_removed') {
    return { next, events: [event(p, now, 'execution_finished', 'policy', { status: 'failed', outcome: 'not_run', reason })] };
  }
  return {
    next,
    events: [
      ...approvalVoidEvents(p, w.void, w.approvals, now),
      event(p, now, 'execution_finished', 'policy', { status: 'failed', outcome: 'not_run', reason, void_approvers: w.void.map((v) => v.person) }),
    ],
  };
}

/** Why the policy in force withholds an execution whose token may already be out: recorded, nothing committed. */
function withheldEvents(p: Proposal, execution: Execution, w: Withdrawn, now: number) {
  if (w.why === 'agent_removed') return [event(p, now, 'token_revoked', 'policy', { jti: execution.token_id, reason: w.why })];
  return approvalVoidEvents(p, w.void, w.approvals, now);
}

export interface Claim {
  claimed: boolean;
  why: string | null;
  /** Refused because the policy in force no longer lets it run (agent_removed, approval_withdrawn): it ended failed / not_run. */
  withdrawn: boolean;
}

/**
 * The claim: approved -> executing. Refused unless the token is still valid; a proposal the
 * policy in force no longer lets run (`authority`: its agent removed, its quorum gone) ends
 * failed / not_run instead.
 */
export function claimExecution(p: Proposal, actor: string, now: number, authority: Authority): Step<Claim> {
  if (p.status !== 'approved' || p.execution === undefined) return nothing({ claimed: false, why: `already ${p.status}`, withdrawn: false });
  if (isTokenExpired(p, now)) return nothing({ claimed: false, why: 'token_expired', withdrawn: false });
  const check = mayStillRun(p, authority);
  if (!check.ok) return { outcome: { claimed: false, why: check.why, withdrawn: true }, ...failWithdrawn(p, p.execution, check, now) };
  const execution: Execution = { ...p.execution, started_at: now };
  return {
    outcome: { claimed: true, why: null, withdrawn: false },
    next: moved(p, 'executing', execution),
    events: [event(p, now, 'execution_started', actor, { mode: p.execution.mode, jti: p.execution.token_id, action_digest: actionDigest(p.action) })],
  };
}

/**
 * Before a token leaves countersign or is redeemed, for a proposal already claimed (or where
 * the claim is not the caller's to make): whether the policy in force still lets it run (its
 * agent still named, its approvals still a quorum). When it does not, an approved proposal, or
 * an executing one whose token never left (`tokenOut: false`), ends failed / not_run with the
 * reason. An execution whose token is already out may be under way: only why is recorded
 * (the approvals that no longer count, or the token revoked for a removed agent), and the agent
 * may still report what happened (the caller revokes the token, so it redeems no more).
 */
export function withdrawUnlessStillAuthorised(p: Proposal, authority: Authority, now: number, tokenOut: boolean): Step<{ withdrawn: boolean }> {
  if ((p.status !== 'approved' && p.status !== 'executing') || p.execution === undefined) return nothing({ withdrawn: false });
  const check = mayStillRun(p, authority);
  if (check.ok) return nothing({ withdrawn: false });
  if (p.status === 'executing' && tokenOut) return { outcome: { withdrawn: true }, next: null, events: withheldEvents(p, p.execution, check, now) };
  return { outcome: { withdrawn: true }, ...failWithdrawn(p, p.execution, check, now) };
}

/** What came back from whoever ran the action. */
export type ExecutionResult =
  | { kind: 'response'; status_code: number; body: string; duration_ms: number }
  | { kind: 'timeout'; duration_ms: number }
  /** The connection broke after the request was sent. */
  | { kind: 'lost'; error: string; duration_ms: number }
  /** An agent that executed itself reports (`token_revoked`: the agent was revoked while it ran). */
  | { kind: 'reported'; succeeded: boolean; status_code: number | null; detail: string | null; token_revoked?: boolean }
  /** An MCP upstream's CallToolResult (`is_error`: the tool said it failed); `text` is what it said, for the excerpt. */
  | { kind: 'tool_result'; is_error: boolean; text: string; duration_ms: number }
  /** An MCP upstream answered with a JSON-RPC error (invalid arguments, unknown tool). */
  | { kind: 'tool_error'; code: number; message: string; duration_ms: number }
  /** Claimed, then stopped before anything left (the token was revoked in between): it did not run. */
  | { kind: 'not_sent'; why: string }
  /** Found executing with nobody running it (the worker died): never re-run. */
  | { kind: 'interrupted'; why: string };

function interpret(r: ExecutionResult, startedAt: number, now: number) {
  switch (r.kind) {
    case 'response': {
      const ok = r.status_code >= 200 && r.status_code < 300;
      return {
        status: ok ? ('succeeded' as const) : ('failed' as const),
        outcome: ok ? ('succeeded' as const) : ('failed' as const),
        reason: ok ? null : `http_${r.status_code}`,
        status_code: r.status_code,
        duration_ms: r.duration_ms,
        excerpt: responseExcerpt(r.body),
      };
    }
    case 'tool_result':
      return {
        status: r.is_error ? ('failed' as const) : ('succeeded' as const),
        outcome: r.is_error ? ('failed' as const) : ('succeeded' as const),
        reason: r.is_error ? 'tool_error' : null,
        status_code: null,
        duration_ms: r.duration_ms,
        excerpt: responseExcerpt(r.text),
      };
    case 'tool_error':
      return { status: 'failed' as const, outcome: 'failed' as const, reason: `mcp_error_${r.code}`, status_code: null, duration_ms: r.duration_ms, excerpt: responseExcerpt(r.message) };
    case 'timeout':
      return { status: 'failed' as const, outcome: 'unknown' as const, reason: 'timeout', status_code: null, duration_ms: r.duration_ms, excerpt: null };
    case 'lost':
      return { status: 'failed' as const, outcome: 'unknown' as const, reason: 'connection_lost', status_code: null, duration_ms: r.duration_ms, excerpt: responseExcerpt(r.error) };
    case 'reported':
      return {
        status: r.succeeded ? ('succeeded' as const) : ('failed' as const),
        outcome: r.succeeded ? ('succeeded' as const) : ('failed' as const),
        reason: r.succeeded ? null : 'reported_failed',
        status_code: r.status_code,
        duration_ms: Math.max(0, now - startedAt),
        excerpt: r.detail === null ? null : responseExcerpt(r.detail),
      };
    case 'interrupted':
      return { status: 'failed' as const, outcome: 'unknown' as const, reason: r.why, status_code: null, duration_ms: Math.max(0, now - startedAt), excerpt: null };
    case 'not_sent':
      return { status: 'failed' as const, outcome: 'not_run' as const, reason: r.why, status_code: null, duration_ms: null, excerpt: null };
  }
}

/** executing -> succeeded / failed. A second finish of the same execution changes nothing. */
export function finishExecution(p: Proposal, result: ExecutionResult, actor: string, now: number): Step<{ finished: boolean; status: Status }> {
  if (p.status !== 'executing' || p.execution === undefined) return nothing({ finished: false, status: p.status });
  const r = interpret(result, p.execution.started_at ?? now, now);
  if (!canTransition(p.status, r.status)) return nothing({ finished: false, status: p.status });
  const execution: Execution = {
    ...p.execution,
    finished_at: now,
    status_code: r.status_code,
    outcome: r.outcome,
    reason: r.reason,
    duration_ms: r.duration_ms,
    response_excerpt: r.excerpt,
  };
  return {
    outcome: { finished: true, status: r.status },
    next: moved(p, r.status, execution),
    events: [
      event(p, now, 'execution_finished', actor, {
        status: r.status,
        outcome: r.outcome,
        reason: r.reason,
        http_status: r.status_code,
        duration_ms: r.duration_ms,
        response_excerpt: r.excerpt,
        ...(result.kind === 'reported' && result.token_revoked === true ? { token_revoked: true } : {}),
      }),
    ],
  };
}

/** The kill switch: an approved proposal that has not started is cancelled. */
export function cancelApproved(p: Proposal, actor: string, reason: string, now: number): Step<{ cancelled: boolean }> {
  if (p.status !== 'approved') return nothing({ cancelled: false });
  // The resolution stays as people decided it (a decided proposal never changes its decision);
  // the cancellation is the execution's fate, recorded there and in the audit event.
  const next: Proposal = { ...p, status: 'cancelled', version: p.version + 1 };
  if (p.execution !== undefined) next.execution = { ...p.execution, finished_at: now, outcome: 'not_run', reason: 'cancelled' };
  return { outcome: { cancelled: true }, next, events: [event(p, now, 'cancelled', actor, { reason })] };
}

/** The execution as the API and callbacks show it: times ISO-8601, durations in seconds. */
export function describeExecution(e: Execution | undefined) {
  if (e === undefined) return null;
  const time = (ms: number | null) => (ms === null ? null : iso(ms));
  return {
    mode: e.mode,
    token_id: e.token_id,
    token_expires_at: iso(e.token_expires_at),
    started_at: time(e.started_at),
    finished_at: time(e.finished_at),
    status_code: e.status_code,
    outcome: e.outcome,
    reason: e.reason,
    duration_seconds: e.duration_ms === null ? null : e.duration_ms / 1000,
    response_excerpt: e.response_excerpt,
  };
}
