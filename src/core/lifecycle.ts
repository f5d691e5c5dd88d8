import { iso } from './clock.ts';
import type { AuditEventInput } from './audit.ts';
import type { PlatformId } from './platform.ts';
import type { Proposal, Status, Vote } from './proposal.ts';

// The proposal state machine, pure: it takes a proposal and a request and returns the
// next proposal and the audit events that explain it. The store commits both together
// (compare-and-set on `version`), so racing requests cannot both win.

export const TRANSITIONS: Readonly<Record<Status, readonly Status[]>> = {
  pending: ['approved', 'denied', 'expired', 'cancelled'],
  // An approved proposal can still be cancelled (agent revoked) before it runs, or fail
  // without running (its token expired in the queue).
  approved: ['executing', 'failed', 'cancelled'],
  executing: ['succeeded', 'failed'],
  denied: [],
  expired: [],
  cancelled: [],
  rejected: [],
  succeeded: [],
  failed: [],
};

export function canTransition(from: Status, to: Status): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isFinal(status: Status): boolean {
  return TRANSITIONS[status].length === 0;
}

/** Who may decide on a proposal, as the policy says now. */
export interface Authority {
  personExists(person: string): boolean;
  isApprover(person: string, group: string): boolean;
  isSponsor(person: string, agent: string): boolean;
}

export interface VoteRequest {
  person: string;
  platform: PlatformId;
  vote: Vote;
  reason: string | null;
}

export type RefusalReason =
  | 'unknown_person'
  | 'not_an_approver'
  | 'sponsor'
  | 'already_voted'
  | 'reason_required'
  | 'expired'
  | 'not_pending';

export type VoteOutcome =
  | { kind: 'refused'; why: RefusalReason; message: string; status: Status }
  | { kind: 'counted'; approvals: number; required: number; approvers: string[] }
  | { kind: 'decided'; status: 'approved' | 'denied'; approvals: number; required: number; approvers: string[] };

export interface Step<O> {
  outcome: O;
  /** The proposal to commit, or null when nothing changes. */
  next: Proposal | null;
  events: AuditEventInput[];
}

const REASON_REQUIRED_RISKS = new Set(['high', 'critical']);

function event(p: Proposal, now: number, type: AuditEventInput['type'], actor: string, data: Record<string, unknown>): AuditEventInput {
  return { type, at: iso(now), proposal_id: p.id, agent: p.agent, actor, data };
}

function bump(p: Proposal, changes: Partial<Proposal>): Proposal {
  return { ...p, ...changes, version: p.version + 1 };
}

/** A pending proposal whose time is up; every path that touches one expires it first. */
export function isOverdue(p: Proposal, now: number): boolean {
  return p.status === 'pending' && p.expires_at !== null && now >= p.expires_at;
}

export function expire(p: Proposal, now: number): Step<{ expired: boolean }> {
  if (!isOverdue(p, now)) return { outcome: { expired: false }, next: null, events: [] };
  const next = bump(p, { status: 'expired', resolution: { status: 'expired', by: null, reason: 'no decision before the deadline', at: now } });
  const approvals = p.approvals.filter((a) => a.vote === 'approve').length;
  return {
    outcome: { expired: true },
    next,
    events: [event(p, now, 'expired', 'system', { approvals, required: p.decision.approvals_required })],
  };
}

export function applyVote(p: Proposal, req: VoteRequest, authority: Authority, now: number): Step<VoteOutcome> {
  const actor = `person:${req.person}`;
  const refuse = (why: RefusalReason, message: string, extra: Step<unknown> | null = null): Step<VoteOutcome> => {
    const refusal = event(p, now, 'approval_refused', actor, { person: req.person, platform: req.platform, vote: req.vote, why });
    return {
      outcome: { kind: 'refused', why, message, status: extra?.next?.status ?? p.status },
      next: extra?.next ?? null,
      events: [...(extra?.events ?? []), refusal],
    };
  };

  if (!authority.personExists(req.person)) return refuse('unknown_person', 'you are not a person in the policy');
  // Authorisation before state: a stranger learns nothing about the proposal.
  const group = p.decision.approvers;
  if (group === null || !authority.isApprover(req.person, group)) {
    return refuse('not_an_approver', `only members of "${group ?? '(none)'}" may decide on this proposal`);
  }
  if (authority.isSponsor(req.person, p.agent)) {
    return refuse('sponsor', `you sponsor agent "${p.agent}", so you cannot approve its actions`);
  }
  const expiry = expire(p, now);
  if (expiry.next !== null) return refuse('expired', 'this proposal has expired', expiry);
  if (p.status === 'expired') return refuse('expired', 'this proposal has expired');
  if (p.status !== 'pending') return refuse('not_pending', `this proposal is already ${p.status}`);
  if (p.approvals.some((a) => a.person === req.person)) {
    return refuse('already_voted', 'your decision on this proposal is already counted');
  }
  const reason = req.reason?.trim() || null;
  if (req.vote === 'deny' && reason === null && REASON_REQUIRED_RISKS.has(p.decision.risk)) {
    return refuse('reason_required', `a reason is required to deny a ${p.decision.risk}-risk proposal`);
  }

  const approvals = [...p.approvals, { person: req.person, platform: req.platform, vote: req.vote, reason, at: now }];
  const approvers = approvals.filter((a) => a.vote === 'approve').map((a) => a.person);
  const required = p.decision.approvals_required;
  const recorded = event(p, now, 'approval_recorded', actor, {
    person: req.person,
    platform: req.platform,
    vote: req.vote,
    reason,
    approvals: approvers.length,
    required,
  });

  // Any allowed person's deny ends it; approvals end it once the quorum of distinct people is met.
  const status: Status | null = req.vote === 'deny' ? 'denied' : approvers.length >= required ? 'approved' : null;
  if (status === null) {
    return {
      outcome: { kind: 'counted', approvals: approvers.length, required, approvers },
      next: bump(p, { approvals }),
      events: [recorded],
    };
  }
  return {
    outcome: { kind: 'decided', status, approvals: approvers.length, required, approvers },
    next: bump(p, { approvals, status, resolution: { status, by: req.person, reason, at: now } }),
    events: [recorded, event(p, now, 'decided', actor, { status, approvers, reason })],
  };
}

export type CancelOutcome = { kind: 'cancelled' } | { kind: 'refused'; status: Status; message: string };

export function cancel(p: Proposal, actor: string, reason: string | null, now: number): Step<CancelOutcome> {
  const expiry = expire(p, now);
  if (expiry.next !== null) {
    return { outcome: { kind: 'refused', status: 'expired', message: 'this proposal has expired' }, next: expiry.next, events: expiry.events };
  }
  if (p.status !== 'pending') {
    return { outcome: { kind: 'refused', status: p.status, message: `this proposal is already ${p.status}` }, next: null, events: [] };
  }
  const next = bump(p, { status: 'cancelled', resolution: { status: 'cancelled', by: actor, reason, at: now } });
  return { outcome: { kind: 'cancelled' }, next, events: [event(p, now, 'cancelled', actor, { reason })] };
}
