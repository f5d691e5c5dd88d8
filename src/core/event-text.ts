import { asKnown, type AuditEventData, type AuditEventInput, type AuditEventOf, type KnownAuditEvent } from './audit-events.ts';
import type { ThreadReply } from './card.ts';
import { formatDuration } from './duration.ts';
import { groupsText, timeLeft } from './escalation.ts';

import { STEP_UP_WINDOW_MS, type RefusalReason, type Unqualified } from './lifecycle.ts';
import type { Proposal } from './proposal.ts';
import type { Change } from './revision.ts';
import { changesText } from './revision-text.ts';

// What an audit event says to people, the same on every platform: the line posted in a
// card's thread (threadReply) and the line in a proposal's timeline (timelineEntry, which
// also shows the steps before the card and the refusals a thread leaves out). Text is raw;
// renderers escape it (it quotes reasons people and agents typed). Stored entries of older
// versions may lack a field: every reader here tolerates a missing one.

const EXCERPT_IN_THREAD = 200;

/**
 * An executor's or agent's answer, on one line and cut short, otherwise exactly as it came
 * ("re_INV-5665" stays itself): each renderer escapes and neutralises markup for its own
 * platform (Slack's and Teams' renderReply, the console's HTML escaping).
 */
function excerptOf(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, EXCERPT_IN_THREAD);
}

function seconds(ms: number | null | undefined): string {
  return typeof ms === 'number' ? `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 0)} s` : '?';
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

/** The person an event names ("bob for alice" when bob acted for alice, away), else its actor. */
function who(e: KnownAuditEvent): string {
  const { person, delegate } = e.data as { person?: unknown; delegate?: unknown };
  if (typeof person !== 'string') return e.actor.replace(/^person:/, '');
  return typeof delegate === 'string' ? `${delegate} for ${person}` : person;
}

const EXECUTION_REASONS: Record<string, string> = {
  token_expired: 'its execution token expired before it could run',
  executor_unreachable: 'the executor could not be reached',
  error_before_send: 'it failed before anything was sent',
  token_revoked: 'its execution token was revoked',
  no_executor: 'the policy names no executor for this tool any more',
  cancelled: 'it was cancelled',
  timeout: 'the executor did not answer in time',
  connection_lost: 'the connection to the executor broke after the request was sent',
  interrupted: 'the worker running it stopped mid-execution',
  no_outcome_reported: 'the agent never reported an outcome',
  reported_failed: 'the agent reported a failure',
  approval_withdrawn: 'its approvals no longer make the quorum under the current policy',
  agent_removed: 'its agent is no longer in the policy',
};

/** A refused click, said of the person (the timeline's third person). */
const REFUSED_BECAUSE: Record<RefusalReason, string> = {
  unknown_person: 'is not a person in the policy',
  not_an_approver: 'is not in the approvers group',
  sponsor: 'sponsors this agent, so cannot approve its actions',
  already_voted: 'had already decided',
  reason_required: 'gave no reason (required to deny at this risk)',
  step_up_required: `had not signed in to the console within the last ${STEP_UP_WINDOW_MS / 60_000} minutes (this rule needs a fresh sign-in to approve)`,
  agent_unknown: 'cannot decide for an agent the policy no longer names',
  agent_revoked: 'was too late: the agent is revoked',
  expired: 'was too late: the proposal had expired',
  not_pending: 'was too late: the proposal was already decided',
};

/** Why an earlier approval no longer counts, said of the person. */
const NO_LONGER: Record<Unqualified, string> = {
  unknown_person: 'is no longer a person in the policy',
  not_an_approver: 'is no longer in the approvers group',
  sponsor: 'now sponsors this agent',
};

function approvalVoid(e: AuditEventOf<'approval_void'>): string {
  const d = e.data;
  return `${who(e)}'s approval no longer counts: ${who(e)} ${NO_LONGER[d.why] ?? str(d.why)} (${d.approvals} of ${d.required} approvals count)`;
}

function executionFinished(e: AuditEventOf<'execution_finished'>): string | null {
  const d = e.data;
  if ('late' in d) return null;
  const reason = d.reason === null || d.reason === undefined ? null : (EXECUTION_REASONS[d.reason] ?? d.reason);
  const http = typeof d.http_status === 'number' ? `, HTTP ${d.http_status}` : '';
  const excerpt = typeof d.response_excerpt === 'string' && d.response_excerpt !== '' ? `: "${excerptOf(d.response_excerpt)}"` : '';
  if (d.status === 'succeeded') return `Succeeded in ${seconds(d.duration_ms)}${http}${excerpt}`;
  if (d.outcome === 'not_run') {
    const names = Array.isArray(d.void_approvers) && d.void_approvers.length > 0 ? ` (no longer qualified: ${d.void_approvers.map(str).join(', ')})` : '';
    return `Not run: ${reason ?? 'unknown reason'}${names}`;
  }
  if (d.outcome === 'unknown') {
    return `Outcome unknown: ${reason ?? 'no answer'} after ${seconds(d.duration_ms)}. It is not retried; check the target system before trying again`;
  }
  return `Failed in ${seconds(d.duration_ms)}${http}${excerpt}`;
}

const CREDENTIAL_REVOKED: Record<string, string> = {
  task_finished: 'task finished',
  expired: 'its time ran out',
  cancelled: 'cancelled',
  not_run: 'the task did not run',
  agent_revoked: 'the agent was revoked',
  failed_to_issue: 'it could not be issued completely',
};

/** "Escalated to oncall after 15m: nobody in finance decided within 15m; members of oncall may decide now too". */
function escalatedText(e: AuditEventOf<'escalated'>): string {
  const d = e.data;
  const waited = Array.isArray(d.waited_on) ? groupsText(d.waited_on.map(str)) : '?';
  const after = typeof d.after_ms === 'number' ? formatDuration(d.after_ms) : '?';
  const gone = Array.isArray(d.not_in_policy) ? d.not_in_policy : [];
  const said = `Escalated${d.from_route ? ` from ${d.from_route}` : ''} to ${d.route} after ${after}: nobody in ${waited} decided within ${after}`;
  if (gone.length === 0) return `${said}; members of ${d.approvers} may decide now too`;
  const what = gone.map((k) => (k === 'route' ? `route ${d.route}` : `group ${d.approvers}`)).join(' and ');
  return `${said}; but ${what} ${gone.length === 1 ? 'is' : 'are'} no longer in the policy: nobody new was called on`;
}

/** "Still waiting: 0 of 1 approvals, expires in 40 min". */
function remindedText(e: AuditEventOf<'reminded'>): string {
  const d = e.data;
  const left = typeof d.expires_at === 'string' ? `, expires in ${timeLeft(Date.parse(d.expires_at) - Date.parse(e.at))}` : '';
  const who = Array.isArray(d.waiting_on) && d.waiting_on.length > 0 ? ` (${groupsText(d.waiting_on.map(str))} may decide)` : '';
  return `Still waiting: ${d.approvals} of ${d.required} approval${d.required === 1 ? '' : 's'}${left}${who}`;
}

/** "alice edited the action: amount 24,800 → 2,000 (revision 1; earlier approvals no longer count)". */
function revisedText(d: AuditEventData['revised']): string {
  const superseded = d.superseded.length > 0 ? `; approvals of the earlier version (${d.superseded.join(', ')}) no longer count` : '';
  const denied = d.decision.effect === 'deny' ? '; the policy denies the edited action' : '';
  return `${d.by} edited the action: ${changesText(d.changes as Change[])} (revision ${d.number}, ${d.decision.risk} risk${superseded}${denied})`;
}

/** The reply an event posts in the card's thread, or null for events a thread does not show. */
export function threadReply(p: Proposal, event: AuditEventInput): ThreadReply | null {
  const e = asKnown(event);
  const reply = (kind: ThreadReply['kind'], text: string): ThreadReply => ({ proposalId: p.id, kind, text });
  switch (e.type) {
    case 'approval_recorded': {
      const d = e.data;
      return d.vote === 'approve'
        ? reply('approval', `${who(e)} approved (${d.approvals} of ${d.required}, via ${d.platform})`)
        : reply('denial', `${who(e)} denied${d.reason ? `: ${d.reason}` : ''}`);
    }
    case 'approval_void':
      return reply('notice', approvalVoid(e));
    case 'revised':
      return reply('notice', revisedText(e.data));
    case 'decided':
      // on_timeout: deny, at the deadline: the one policy decision made under a card.
      if (e.data.timed_out === true) return reply('denial', `Denied by the policy: ${e.data.reason ?? 'nobody decided in time'}`);
      // A denial already has its own reply; a policy's decision is made before there is a card.
      return e.data.status === 'approved' && e.actor !== 'policy' ? reply('decided', `Approved by ${e.data.approvers?.join(', ') ?? who(e)}`) : null;
    case 'escalated':
      return reply('notice', escalatedText(e));
    case 'reminded':
      return { ...reply('notice', remindedText(e)), whilePending: true };
    case 'expired':
      return reply('expired', `Expired: no decision before the deadline (${e.data.approvals} of ${e.data.required} approvals)`);
    case 'cancelled':
      return reply('cancelled', `Cancelled by ${e.actor}${e.data.reason ? `: ${e.data.reason}` : ''}`);
    case 'execution_started':
      return reply('execution_started', e.data.mode === 'executor' ? `Execution started: sent to the ${p.action.tool} executor` : e.data.mode === 'gateway' ? `Execution started: called on ${p.action.tool} by the MCP gateway` : `Execution started by agent ${p.agent}`);
    case 'execution_finished': {
      const text = executionFinished(e);
      return text === null ? null : reply('execution_finished', text);
    }
    case 'credential_issued':
      return reply('notice', `Login for ${e.data.issuer} issued (${e.data.handle}), expires ${e.data.expires_at}`);
    case 'credential_revoked':
      return reply('notice', `Login for ${e.data.issuer} revoked (${e.data.handle}): ${CREDENTIAL_REVOKED[e.data.reason] ?? e.data.reason}`);
    case 'token_revoked':
      return reply('notice', `Execution token revoked: agent ${p.agent} is no longer in the policy (the agent may still report what happened)`);
    case 'callback_failed': {
      const d = e.data;
      const http = typeof d.http_status === 'number' ? `, last HTTP ${d.http_status}` : '';
      return reply('notice', `Could not tell agent ${p.agent} that the proposal is ${d.status} (${d.attempts} attempts${http})`);
    }
    default:
      return null;
  }
}

/** What a rule's effect means for the proposal: "approve" read as if the policy had approved it. */
const POLICY_EFFECT: Record<string, string> = { allow: 'allowed', deny: 'denied', approve: 'needs approval' };

export interface TimelineEntry {
  at: string;
  type: string;
  tone: 'info' | 'good' | 'bad' | 'warn';
  text: string;
}

/** One line of a proposal's history, for every event the log holds about it. */
export function timelineEntry(p: Proposal, event: AuditEventInput): TimelineEntry {
  const e = asKnown(event);
  const line = (tone: TimelineEntry['tone'], text: string): TimelineEntry => ({ at: e.at, type: e.type, tone, text });
  switch (e.type) {
    case 'proposal_received':
      return line('info', `Proposed by agent ${e.agent ?? '?'}`);
    case 'policy_decided':
      return line('info', `Policy: rule "${str(e.data.rule)}": ${POLICY_EFFECT[str(e.data.effect)] ?? str(e.data.effect)} (${str(e.data.risk)} risk)`);
    case 'card_posted':
      // The console shows the card itself; other platforms name the channel.
      return line('info', `Card posted to ${e.data.platform}${e.data.conversation === p.decision.route ? '' : ` ${str(e.data.conversation)}`}`);
    case 'card_failed':
      return line('warn', `Card${e.data.step === undefined ? '' : ` of escalation step ${e.data.step} (${str(e.data.route ?? '?')})`} could not be posted to ${str(e.data.platform)}: ${str(e.data.error)}`);
    case 'approval_recorded': {
      const d = e.data;
      return d.vote === 'approve'
        ? line('good', `${who(e)} approved (${d.approvals} of ${d.required}, via ${d.platform})${d.reason ? `: ${d.reason}` : ''}`)
        : line('bad', `${who(e)} denied (via ${d.platform})${d.reason ? `: ${d.reason}` : ''}`);
    }
    case 'approval_void':
      return line('warn', approvalVoid(e));
    case 'approval_refused': {
      const d = e.data;
      return line('warn', `${who(e)} tried to ${d.vote} via ${d.platform} and was refused: ${REFUSED_BECAUSE[d.why] ?? str(d.why)}`);
    }
    case 'decided': {
      const d = e.data;
      if (d.timed_out === true) return line('bad', `Denied by the policy: ${d.reason ?? 'nobody decided in time'}`);
      if (e.actor === 'policy') return line(d.status === 'approved' ? 'good' : 'bad', `${d.status === 'approved' ? 'Allowed' : 'Rejected'} by the policy (rule "${str(d.rule)}")`);
      if (d.status === 'approved') return line('good', `Approved by ${Array.isArray(d.approvers) ? d.approvers.map(str).join(', ') : who(e)}`);
      return line('bad', `Denied by ${who(e)}`);
    }
    case 'token_issued':
      return line('info', 'Execution token issued');
    case 'token_redeemed':
      return line('info', 'Execution token redeemed by the downstream service');
    case 'callback_delivered':
      return line('info', `Agent told: ${str(e.data.status)}`);
    case 'agent_revoked':
      return line('bad', `Agent ${e.agent ?? ''} revoked by ${e.actor}`);
    default: {
      const reply = threadReply(p, e);
      if (reply === null) return line('info', e.type.replace(/_/g, ' '));
      const tone = reply.kind === 'execution_finished' ? (reply.text.startsWith('Succeeded') ? 'good' : 'bad') : reply.kind === 'notice' || reply.kind === 'expired' || reply.kind === 'cancelled' ? 'warn' : 'info';
      return line(tone, reply.text);
    }
  }
}
