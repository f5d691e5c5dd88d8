import type { ExecutionMode, ExecutionOutcome } from './execution.ts';
import type { PlatformId } from './platform.ts';
import type { Action, Decision, ProposalContext, Status, Vote } from './proposal.ts';
import type { RefusalReason, Unqualified } from './lifecycle.ts';

// Every audit event type and the data it carries: one type per event, one builder. Writers
// build events only through `auditEvent`, so what the log holds is what these types say and
// readers (thread replies, the console's timeline, recovery) narrow on `type` instead of
// guessing at keys. Entries written by older versions may lack a field added since: readers
// of stored entries treat every field as possibly missing when it matters.

export type AuditEventData = {
  proposal_received: { idempotency_key: string | null; intent: string; action: Action; context: ProposalContext };
  policy_decided: { [K in keyof Decision]: Decision[K] };
  /** `actor: policy` carries the rule; a person's decision carries the approvers and the reason. */
  /** `timed_out`: denied at the deadline by the rule's `on_timeout: deny` (actor policy). */
  decided: { status: Status; rule?: string; approvers?: string[]; reason?: string | null; timed_out?: true };
  /**
   * `signed_in_at`: on a step-up proposal's approval, the sign-in it counted by (null: the platform vouched for none).
   * `batch`: the id of the batch it was decided in with others (batch-decisions.ts); absent for a single decision.
   */
  approval_recorded: { person: string; platform: PlatformId; vote: Vote; reason: string | null; approvals: number; required: number; signed_in_at?: string | null; batch?: string; delegate?: string };
  /** A person's refused click; a stranger's carries `platform_user` instead of `person`; a step-up refusal, the sign-in it was judged by; `batch` as above. */
  approval_refused: { person?: string; platform_user?: string; platform: PlatformId; vote: Vote; why: RefusalReason; signed_in_at?: string | null; batch?: string; edit?: true };
  /**
   * An approver's edit (src/core/revision.ts): `changes` what this edit changed, `action` and
   * `action_digest` the revised action (what a token will name), `context` when it changed too,
   * `superseded` whose approvals of the version before no longer count, `decision` the stricter one now in force.
   */
  revised: {
    number: number;
    by: string;
    platform: PlatformId;
    changes: { key: string; from: unknown; to: unknown }[];
    action: Action;
    action_digest: string;
    context?: ProposalContext;
    superseded: string[];
    decision: { effect: Decision['effect']; risk: Decision['risk']; rule: string; approvals_required: number; step_up?: boolean };
  };
  /** An earlier approval the policy in force no longer lets count (`approvals`: how many still do). */
  approval_void: { person: string; platform: PlatformId; why: Unqualified; approvals: number; required: number; delegate?: string };
  expired: { approvals: number; required: number };
  /**
   * Escalation step `step` (from 1) taken: cards to `route`, members of `approvers` may decide too; `waited_on`: the groups nobody of decided.
   * `not_in_policy`: what the step names that the policy in force no longer has (changed since the proposal was made): no card, or nobody more who may decide.
   */
  escalated: { step: number; route: string; approvers: string; after_ms: number; from_route: string | null; waited_on: string[]; not_in_policy?: ('route' | 'approvers')[] };
  /** A reminder under every card: `count` reminders so far; `waiting_on` the groups who may decide. */
  reminded: { count: number; approvals: number; required: number; expires_at: string | null; waiting_on: string[] };
  cancelled: { reason: string | null };
  /** `step`: the card of an escalation step's route (absent for the rule's own route). */
  card_posted: { platform: PlatformId; conversation: string; message: string; step?: number };

  /**
   * `permanent`: the platform refused for good (not retried); absent in entries from before it was recorded.
   * `step`, `route`: the escalation step whose card it was (absent for the rule's own card).
   */
  card_failed: { platform: PlatformId; error: string; permanent?: boolean; retry_later: boolean; step?: number; route?: string | null };
  /** Never a secret, signature or token: `details` are what the caller chose to keep (claimed agent, path). */
  auth_failed: { reason: string; via: string; [detail: string]: unknown };
  /** Written by no current code; kept so older logs still read. */
  request_rejected: { [key: string]: unknown };
  /** `action_digest`: of the action the token is for (the revision, when an approver edited it); absent in older entries. */
  token_issued: { jti: string; mode: ExecutionMode; audience: string; expires_at: string; approvers: string[]; delegates?: Record<string, string>; action_digest?: string };
  token_redeemed: { jti: string; audience: string };
  /** A token already handed out, revoked because the policy in force no longer names its agent (the kill switch's are in agent_revoked). */
  token_revoked: { jti: string; reason: 'agent_removed' };
  execution_started: { mode: ExecutionMode; jti: string; action_digest?: string };
  execution_finished:
    | {
        status: 'succeeded' | 'failed';
        outcome: ExecutionOutcome;
        reason: string | null;
        http_status?: number | null;
        duration_ms?: number | null;
        response_excerpt?: string | null;
        token_revoked?: true;
        /** reason `approval_withdrawn`: the approvers who no longer qualify. */
        void_approvers?: string[];
      }
    /** The executor answered after its execution was declared abandoned: the late truth, kept. */
    | { late: true; kind: string; http_status: number | null; recorded_status: Status };
  callback_delivered: { status: Status; http_status: number; with_token: boolean };
  callback_failed: { status: Status; attempts: number; http_status: number | null; error: string };
  /** `in_policy: false`: the policy in force did not name the agent (absent in entries from before it was recorded). */
  agent_revoked: { tokens_revoked: number; cancelled: string[]; cancelled_count: number; still_executing: string[]; in_policy?: boolean };
  /** The kill switch lifted: `revoked_at` is the revocation it ends (proposals made before it stay without a token). */
  agent_restored: { revoked_at: string; restored_at: string; cancelled: string[]; cancelled_count: number; in_policy?: boolean };
  /** A proposal refused before anything was stored (the agent is revoked, or over a limit): who tried what. */
  proposal_refused:
    | { reason: 'agent_revoked'; revoked_at: string; idempotency_key: string | null; action: { tool: string; operation: string; target: string } }
    /** Over one of the agent's limits (policy `limits:`, policy/fatigue.ts): `limit` names it, `rule` the rule that would have decided. */
    | { reason: 'rate_limited'; limit: string; max: number; rule: string; route: string | null; idempotency_key: string | null; action: { tool: string; operation: string; target: string } };
  /** `details`: what the platform needs to reach the channel (Teams: tenant, service URL). */
  /** A login made for the task (never its secret): `handle` names it on the downstream. */
  credential_issued: { issuer: string; handle: string; expires_at: string };
  /** `reason`: task_finished, expired, cancelled, not_run, agent_revoked, failed_to_issue. */
  credential_revoked: { issuer: string; handle: string; reason: string };
  channel_bound: { platform: PlatformId; route: string; key: string; conversation: string; [detail: string]: unknown };
  channel_bind_refused: { platform: PlatformId; route: string; conversation: string | null; why: 'not_an_admin' | 'unknown_person' };
  /** A person marked themselves away (src/core/away.ts): `delegate` decides for them until `until` (ISO). */
  away_set: { delegate: string; until: string };
  /** A person came back (or their absence was replaced): `delegate` and `until` of the absence that ended. */
  away_cleared: { delegate: string; until: string };
};

export type AuditEventType = keyof AuditEventData;

export const AUDIT_EVENT_TYPES = [
  'proposal_received',
  'policy_decided',
  'auth_failed',
  'request_rejected',
  'card_posted',
  'card_failed',
  'approval_recorded',
  'approval_refused',
  'approval_void',
  'revised',
  'decided',
  'expired',
  'escalated',
  'reminded',

  'cancelled',
  'token_issued',
  'token_redeemed',
  'token_revoked',
  'execution_started',
  'execution_finished',
  'callback_delivered',
  'callback_failed',
  'agent_revoked',
  'agent_restored',
  'proposal_refused',
  'credential_issued',
  'credential_revoked',
  'channel_bound',
  'channel_bind_refused',
  'away_set',
  'away_cleared',
] as const satisfies readonly AuditEventType[];

/** Who and what an event is about; `actor` is `agent:<id>`, `person:<id>`, `<platform>:<user>`, `ip:<addr>`, `policy` or `system`. */
export interface AuditSubject {
  /** ISO-8601 time from the injected clock. */
  at: string;
  proposal_id: string | null;
  /** The agent the event concerns, so agents can search their own history. */
  agent: string | null;
  actor: string;
}

export type AuditEventOf<T extends AuditEventType> = AuditSubject & { type: T; data: AuditEventData[T] };

/** An event as built by `auditEvent`: readers narrow on `type` and get typed data. */
export type KnownAuditEvent = { [T in AuditEventType]: AuditEventOf<T> }[AuditEventType];

/** What the audit stores take and give back (the store adds seq, prev_hash and hash): data is any JSON object. */
export type AuditEventInput = AuditSubject & { type: AuditEventType; data: Record<string, unknown> };

export function auditEvent<T extends AuditEventType>(type: T, subject: AuditSubject, data: AuditEventData[T]): AuditEventOf<T> {
  return { type, at: subject.at, proposal_id: subject.proposal_id, agent: subject.agent, actor: subject.actor, data };
}

/** A stored entry read as the event its type names: every entry countersign writes is built by auditEvent. */
export function asKnown(e: AuditEventInput): KnownAuditEvent {
  return e as KnownAuditEvent;
}
