import { auditEvent, type AuditEventData, type AuditEventType, type KnownAuditEvent } from './audit-events.ts';
import { awayFor, NOBODY_AWAY, type Absences, type DelegationHeld } from './away.ts';
import { iso } from './clock.ts';
import type { AggregateMove } from './ports.ts';
import { approverGroups, timeoutDenyReason } from './escalation.ts';
import type { PlatformId } from './platform.ts';
import type { Approval, Proposal, Risk, Status, Vote } from './proposal.ts';
import { refusalMessage, STEP_UP_WINDOW_MS, type RefusalReason } from './refusals.ts';

export { REFUSAL_REASONS, refusalMessage, STEP_UP_WINDOW_MS, type RefusalReason } from './refusals.ts';

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
  /** False for an agent the policy no longer names: nobody can tell who sponsors it, so nothing of it counts. */
  agentExists(agent: string): boolean;
}

export interface VoteRequest {
  person: string;
  platform: PlatformId;
  vote: Vote;
  reason: string | null;
  /**
   * When the person last signed in on the platform the vote comes from, as that platform's own
   * server-side record says (the console's session); null where the platform cannot vouch for
   * one (a chat account). Never taken from the request itself.
   */
  authenticatedAt: number | null;
}

/** Agents whose kill switch is pulled now, with when (ProposalStore.revokedAgents). */
export type RevokedAgents = ReadonlyMap<string, number>;

export type VoteOutcome =
  | { kind: 'refused'; why: RefusalReason; message: string; status: Status }
  | { kind: 'counted'; approvals: number; required: number; approvers: string[] }
  | { kind: 'decided'; status: 'approved' | 'denied'; approvals: number; required: number; approvers: string[] };

export interface Step<O> {
  outcome: O;
  /** The proposal to commit, or null when nothing changes. */
  next: Proposal | null;
  events: KnownAuditEvent[];
  /** A delegate's vote: `next` is committed only while the absence it was cast under still holds. */
  delegation?: DelegationHeld;
  /** A revision: its place in the aggregate groups, moved in the same commit (app/edit-proposal.ts). */
  aggregate?: AggregateMove;
}

/** An event about `p` at `now`. */
export function eventAbout<T extends AuditEventType>(p: Pick<Proposal, 'id' | 'agent'>, now: number, type: T, actor: string, data: AuditEventData[T]) {
  return auditEvent(type, { at: iso(now), proposal_id: p.id, agent: p.agent, actor }, data);
}
const event = eventAbout;

/** Denying a high or critical risk proposal needs a reason, on every platform. */
export function denyNeedsReason(risk: Risk): boolean {
  return risk === 'high' || risk === 'critical';
}

/** Refusals that depend on the vote itself (a deny's reason, an approval's fresh sign-in), not on who and when. */
type VoteRefusal = 'reason_required' | 'step_up_required';

/**
 * Whom a vote counts for: `person`, the seat (a qualified approver), cast by the clicker
 * themselves (`delegate` null) or by the delegate `person` named while away (src/core/away.ts).
 */
export interface Seat {
  person: string;
  delegate: string | null;
}

/** `seat`: whom the vote would count for (absent: the clicker themselves). */
export type Eligibility = { ok: true; seat?: Seat } | { ok: false; why: Exclude<RefusalReason, VoteRefusal>; message: string };

/** One human counts once: whether `human` is among `p`'s votes already, as the seat or as its delegate. */
function appears(p: Pick<Proposal, 'approvals'>, human: string): boolean {
  return p.approvals.some((a) => a.person === human || a.delegate === human);
}

/** Why the policy in force does not let a person approve this proposal (whoever they were when they clicked). */
export type Unqualified = Extract<RefusalReason, 'unknown_person' | 'not_an_approver' | 'sponsor'>;

/** The policy's part of canDecide, also applied to approvals already given: null when `person` qualifies. */
function unqualified(p: Pick<Proposal, 'agent' | 'decision' | 'escalation'>, person: string, authority: Authority): Unqualified | null {
  if (!authority.personExists(person)) return 'unknown_person';
  // The rule's group, and each escalation step's once it is reached (escalation.ts).
  if (!approverGroups(p).some((group) => authority.isApprover(person, group))) return 'not_an_approver';
  if (authority.isSponsor(person, p.agent)) return 'sponsor';
  return null;
}

/**
 * Whether `person` may decide on the proposal now, and if not why: the checks of applyVote
 * before the vote itself, shared with every renderer that says so before a click (the
 * console greys out its buttons). Authorisation comes first: a stranger learns nothing.
 * `revoked`: the kill switch, as the store says now; a revoked agent's proposal left pending
 * (a revocation that stopped midway) would never run, so nobody decides on it.
 */
export function canDecide(p: Proposal, person: string, authority: Authority, now: number, revoked: RevokedAgents, away: Absences = NOBODY_AWAY): Eligibility {
  const no = (why: Exclude<RefusalReason, VoteRefusal>): Eligibility => ({ ok: false, why, message: refusalMessage(why, p) });
  const policySays = unqualified(p, person, authority);
  if (policySays === 'unknown_person') return no(policySays);
  // The people away who named `person` and would qualify themselves: their seats are open to
  // `person` only when `person` cannot decide for themselves (one hop: `away` is read as given).
  const standsFor = policySays === null ? [] : awayFor(away, person, now).filter((x) => unqualified(p, x, authority) === null);
  if (policySays === 'not_an_approver' && standsFor.length === 0) return no(policySays);
  // After the person's own checks (a stranger learns nothing), before the sponsor rule it defeats.
  if (!authority.agentExists(p.agent)) return no('agent_unknown');
  // A sponsor never counts, for themselves or for anyone away.
  if (policySays !== null && (policySays === 'sponsor' || authority.isSponsor(person, p.agent))) return no('sponsor');
  if (p.status === 'expired' || isOverdue(p, now)) return no('expired');
  if (p.status !== 'pending') return no('not_pending');
  const revokedAt = revoked.get(p.agent);
  if (revokedAt !== undefined && p.created_at <= revokedAt) return no('agent_revoked');
  if (appears(p, person)) return no('already_voted');
  if (policySays === null) return { ok: true };
  const open = standsFor.find((x) => !appears(p, x));
  if (open === undefined) return { ok: false, why: 'already_voted', message: `the decision of ${standsFor.join(', ')} (away, who named you) is already counted` };
  return { ok: true, seat: { person: open, delegate: person } };
}

/**
 * Whether an approval of `p` from someone who signed in at `authenticatedAt` may count at
 * `now`: always, unless the rule says step_up, which needs a sign-in the platform vouches for
 * within the last STEP_UP_WINDOW_MS. Denials never need it: refusing is always safe.
 */
export function signInFreshEnough(p: Pick<Proposal, 'decision'>, authenticatedAt: number | null, now: number): boolean {
  if (p.decision.step_up !== true) return true;
  return authenticatedAt !== null && now - authenticatedAt <= STEP_UP_WINDOW_MS;
}

/** An approval given earlier that the policy in force no longer lets count. */
export interface VoidApproval {
  person: string;
  platform: PlatformId;
  why: Unqualified;
  /** Who cast it for `person` (away then), when someone did. */
  delegate?: string;
}

/** Why an approval cast by `delegate` for an absent person no longer counts: its delegate left the policy or sponsors the agent. */
function delegateUnqualified(p: Pick<Proposal, 'agent'>, delegate: string | undefined, authority: Authority): Unqualified | null {
  if (delegate === undefined) return null;
  if (!authority.personExists(delegate)) return 'unknown_person';
  return authority.isSponsor(delegate, p.agent) ? 'sponsor' : null;
}

/**
 * The approvals of `p` that no longer qualify: the policy was changed (and countersign
 * restarted) since they were given, and the person is gone, left the approvers group, or now
 * sponsors the agent. An approval counts under the policy in force when it takes effect, not
 * the one it was given under: otherwise removing someone would not undo what they approved.
 */
export function voidApprovals(p: Proposal, authority: Authority): VoidApproval[] {
  return p.approvals.flatMap((a) => {
    const why = a.vote === 'approve' ? (unqualified(p, a.person, authority) ?? delegateUnqualified(p, a.delegate, authority)) : null;
    return why === null ? [] : [{ person: a.person, platform: a.platform, why, ...(a.delegate === undefined ? {} : { delegate: a.delegate }) }];
  });
}

export type QuorumCheck = { holds: true } | { holds: false; approvals: number; required: number; void: VoidApproval[] };

/**
 * Whether the people who approved `p` still make its quorum under the policy in force. Checked
 * before an approved proposal's token leaves countersign. A proposal the policy allowed by
 * itself was approved by no person: there is nothing to withdraw.
 */
export function quorumHolds(p: Proposal, authority: Authority): QuorumCheck {
  if (p.decision.effect !== 'approve') return { holds: true };
  const voided = voidApprovals(p, authority);
  const approvals = p.approvals.filter((a) => a.vote === 'approve').length - voided.length;
  const required = p.decision.approvals_required;
  return approvals >= required ? { holds: true } : { holds: false, approvals, required, void: voided };
}

export type RunCheck =
  | { ok: true }
  /** The policy in force no longer names the proposal's agent. */
  | { ok: false; why: 'agent_removed' }
  /** Its approvals no longer make the quorum (`approvals`: how many still count; `void`: the others). */
  | { ok: false; why: 'approval_withdrawn'; approvals: number; required: number; void: VoidApproval[] };

/**
 * Whether an approved proposal may still run under the policy in force: its agent is still in
 * the policy (whatever approved it, people or the policy itself) and its approvals still make
 * the quorum. Checked wherever a token would leave countersign or be honoured.
 */
export function mayStillRun(p: Proposal, authority: Authority): RunCheck {
  if (!authority.agentExists(p.agent)) return { ok: false, why: 'agent_removed' };
  const q = quorumHolds(p, authority);
  return q.holds ? { ok: true } : { ok: false, why: 'approval_withdrawn', approvals: q.approvals, required: q.required, void: q.void };
}

/** One `approval_void` event per approval that no longer counts; `approvals`: how many still do. */
export function approvalVoidEvents(p: Proposal, voided: readonly VoidApproval[], approvals: number, now: number): KnownAuditEvent[] {
  const required = p.decision.approvals_required;
  return voided.map((v) => event(p, now, 'approval_void', 'policy', { person: v.person, platform: v.platform, why: v.why, approvals, required, ...(v.delegate === undefined ? {} : { delegate: v.delegate }) }));
}

function bump(p: Proposal, changes: Partial<Proposal>): Proposal {
  return { ...p, ...changes, version: p.version + 1 };
}

/** A pending proposal whose time is up; every path that touches one expires it first. */
export function isOverdue(p: Proposal, now: number): boolean {
  return p.status === 'pending' && p.expires_at !== null && now >= p.expires_at;
}

/**
 * A pending proposal at its deadline ends: expired, or denied by the policy when the rule says
 * `on_timeout: deny` (the agent then sees a denial, not a silence it might retry into).
 * `expired` in the outcome: it ended at its deadline, either way.
 */
export function expire(p: Proposal, now: number): Step<{ expired: boolean }> {
  if (!isOverdue(p, now)) return { outcome: { expired: false }, next: null, events: [] };
  const approvals = p.approvals.filter((a) => a.vote === 'approve').length;
  if (p.decision.on_timeout === 'deny') {
    const reason = timeoutDenyReason(p);
    return {
      outcome: { expired: true },
      next: bump(p, { status: 'denied', resolution: { status: 'denied', by: 'policy', reason, at: now } }),
      events: [event(p, now, 'decided', 'policy', { status: 'denied', rule: p.decision.rule, reason, timed_out: true })],
    };
  }
  const next = bump(p, { status: 'expired', resolution: { status: 'expired', by: null, reason: 'no decision before the deadline', at: now } });
  return {
    outcome: { expired: true },
    next,
    events: [event(p, now, 'expired', 'system', { approvals, required: p.decision.approvals_required })],
  };
}

/** `away`: the absences in force (AwayStore.list), read before the vote like `revoked`. */
export function applyVote(p: Proposal, req: VoteRequest, authority: Authority, now: number, revoked: RevokedAgents, away: Absences = NOBODY_AWAY): Step<VoteOutcome> {
  const actor = `person:${req.person}`;
  // Step-up proposals record the sign-in their approvals (and refusals) were judged by.
  const signedIn = p.decision.step_up === true ? { signed_in_at: req.authenticatedAt === null ? null : iso(req.authenticatedAt) } : {};
  const refuse = (why: RefusalReason, message: string, extra: Step<unknown> | null = null): Step<VoteOutcome> => {
    const refusal = event(p, now, 'approval_refused', actor, { person: req.person, platform: req.platform, vote: req.vote, why, ...(why === 'step_up_required' ? signedIn : {}) });
    return {
      outcome: { kind: 'refused', why, message, status: extra?.next?.status ?? p.status },
      next: extra?.next ?? null,
      events: [...(extra?.events ?? []), refusal],
    };
  };

  const eligible = canDecide(p, req.person, authority, now, revoked, away);
  if (!eligible.ok) {
    // A proposal past its deadline is expired now, by this very click.
    const expiry = eligible.why === 'expired' ? expire(p, now) : null;
    return refuse(eligible.why, eligible.message, expiry?.next ? expiry : null);
  }
  if (req.vote === 'approve' && !signInFreshEnough(p, req.authenticatedAt, now)) {
    return refuse('step_up_required', refusalMessage('step_up_required', p));
  }
  const reason = req.reason?.trim() || null;
  if (req.vote === 'deny' && reason === null && denyNeedsReason(p.decision.risk)) {
    return refuse('reason_required', refusalMessage('reason_required', p));
  }

  // The quorum is counted under the policy in force: earlier approvals that no longer qualify
  // are dropped in this same commit (and audited), so the card shows the count that is true.
  const voided = voidApprovals(p, authority);
  const kept: Approval[] = voided.length === 0 ? p.approvals : p.approvals.filter((a) => !voided.some((v) => v.person === a.person));
  const voidEvents = approvalVoidEvents(p, voided, kept.filter((a) => a.vote === 'approve').length, now);
  // The seat is the approver it counts for; a delegate's vote names who cast it.
  const seat = eligible.seat ?? { person: req.person, delegate: null };
  const castBy = seat.delegate === null ? {} : { delegate: seat.delegate };
  const held = seat.delegate === null ? {} : { delegation: { person: seat.person, delegate: seat.delegate, at: now } };
  const approvals: Approval[] = [...kept, { person: seat.person, ...castBy, platform: req.platform, vote: req.vote, reason, at: now }];
  const approvers = approvals.filter((a) => a.vote === 'approve').map((a) => a.person);
  const required = p.decision.approvals_required;
  const recorded = event(p, now, 'approval_recorded', actor, {
    person: seat.person,
    ...castBy,
    platform: req.platform,
    vote: req.vote,
    reason,
    approvals: approvers.length,
    required,
    ...(req.vote === 'approve' ? signedIn : {}),
  });

  // Any allowed person's deny ends it; approvals end it once the quorum of distinct people is met.
  const status: Status | null = req.vote === 'deny' ? 'denied' : approvers.length >= required ? 'approved' : null;
  if (status === null) {
    return {
      outcome: { kind: 'counted', approvals: approvers.length, required, approvers },
      next: bump(p, { approvals }),
      events: [...voidEvents, recorded],
      ...held,
    };
  }
  return {
    outcome: { kind: 'decided', status, approvals: approvers.length, required, approvers },
    next: bump(p, { approvals, status, resolution: { status, by: req.person, reason, at: now } }),
    events: [...voidEvents, recorded, event(p, now, 'decided', actor, { status, approvers, reason })],
    ...held,
  };
}

export type CancelOutcome = { kind: 'cancelled' } | { kind: 'refused'; status: Status; message: string };

export function cancel(p: Proposal, actor: string, reason: string | null, now: number): Step<CancelOutcome> {
  const expiry = expire(p, now);
  if (expiry.next !== null) {
    return { outcome: { kind: 'refused', status: expiry.next.status, message: 'this proposal has expired' }, next: expiry.next, events: expiry.events };
  }
  if (p.status !== 'pending') {
    return { outcome: { kind: 'refused', status: p.status, message: `this proposal is already ${p.status}` }, next: null, events: [] };
  }
  const next = bump(p, { status: 'cancelled', resolution: { status: 'cancelled', by: actor, reason, at: now } });
  return { outcome: { kind: 'cancelled' }, next, events: [event(p, now, 'cancelled', actor, { reason })] };
}
