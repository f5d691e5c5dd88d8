import { executionReply } from '../../src/app/execution-replies.ts';
import type { StoredAuditEvent } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';

// One line per audit event of a proposal: what Slack says in the card's thread, plus the
// steps before the card (received, policy) and the refusals a thread does not show. The
// text is plain; the renderer escapes it (it quotes reasons that people and agents typed).

export interface TimelineEntry {
  at: string;
  type: string;
  tone: 'info' | 'good' | 'bad' | 'warn';
  text: string;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

function who(e: StoredAuditEvent): string {
  const person = e.data['person'];
  return typeof person === 'string' ? person : e.actor.replace(/^person:/, '');
}

const REFUSALS: Record<string, string> = {
  unknown_person: 'is not a person in the policy',
  not_an_approver: 'is not in the approvers group',
  sponsor: 'sponsors this agent, so cannot approve its actions',
  already_voted: 'had already decided',
  reason_required: 'gave no reason (required to deny at this risk)',
  expired: 'was too late: the proposal had expired',
  not_pending: 'was too late: the proposal was already decided',
};

export function timelineEntry(p: Proposal, e: StoredAuditEvent): TimelineEntry | null {
  const d = e.data;
  const line = (tone: TimelineEntry['tone'], text: string): TimelineEntry => ({ at: e.at, type: e.type, tone, text });
  switch (e.type) {
    case 'proposal_received':
      return line('info', `Proposed by agent ${e.agent ?? '?'}`);
    case 'policy_decided':
      return line('info', `Policy: rule "${str(d['rule'])}" says ${str(d['effect'])} (${str(d['risk'])} risk)`);
    case 'card_posted':
      return line('info', `Card posted to ${str(d['platform'])}${d['platform'] === 'console' ? '' : ` ${str(d['conversation'])}`}`);
    case 'card_failed':
      return line('warn', `Card could not be posted to ${str(d['platform'])}: ${str(d['error'])}`);
    case 'approval_recorded':
      return d['vote'] === 'approve'
        ? line('good', `${who(e)} approved (${str(d['approvals'])} of ${str(d['required'])}, via ${str(d['platform'])})${d['reason'] ? `: ${str(d['reason'])}` : ''}`)
        : line('bad', `${who(e)} denied (via ${str(d['platform'])})${d['reason'] ? `: ${str(d['reason'])}` : ''}`);
    case 'approval_refused':
      return line('warn', `${who(e)} tried to ${str(d['vote'])} via ${str(d['platform'])} and was refused: ${REFUSALS[str(d['why'])] ?? str(d['why'])}`);
    case 'decided': {
      const status = str(d['status']);
      if (e.actor === 'policy') return line(status === 'approved' ? 'good' : 'bad', `${status === 'approved' ? 'Allowed' : 'Rejected'} by the policy (rule "${str(d['rule'])}")`);
      if (status === 'approved') return line('good', `Approved by ${Array.isArray(d['approvers']) ? d['approvers'].map(str).join(', ') : who(e)}`);
      return line('bad', `Denied by ${who(e)}`);
    }
    case 'expired':
      return line('warn', `Expired: no decision before the deadline (${str(d['approvals'])} of ${str(d['required'])} approvals)`);
    case 'cancelled':
      return line('warn', `Cancelled by ${e.actor}${d['reason'] ? `: ${str(d['reason'])}` : ''}`);
    case 'token_issued':
      return line('info', 'Execution token issued');
    case 'token_redeemed':
      return line('info', 'Execution token redeemed by the downstream service');
    case 'callback_delivered':
      return line('info', `Agent told: ${str(d['status'])}`);
    case 'agent_revoked':
      return line('bad', `Agent ${e.agent ?? ''} revoked by ${e.actor}`);
    default: {
      const reply = executionReply(p, e);
      if (reply === null) return line('info', e.type.replace(/_/g, ' '));
      const tone = reply.kind === 'execution_finished' ? (reply.text.startsWith('Succeeded') ? 'good' : 'bad') : reply.kind === 'notice' ? 'warn' : 'info';
      return line(tone, reply.text);
    }
  }
}

export function timeline(p: Proposal, events: readonly StoredAuditEvent[]): TimelineEntry[] {
  return events.flatMap((e) => timelineEntry(p, e) ?? []);
}
