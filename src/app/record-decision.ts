import { auditEvent } from '../core/audit.ts';
import type { KnownAuditEvent } from '../core/audit-events.ts';
import { iso } from '../core/clock.ts';
import { refusalSentence } from '../core/card.ts';
import { applyVote, type Authority, type RevokedAgents, type VoteOutcome } from '../core/lifecycle.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal, Vote } from '../core/proposal.ts';
import type { Policy } from '../core/policy/model.ts';
import type { AppDeps } from './deps.ts';
import { mutate } from './mutate.ts';

// The one door through which people decide, whatever platform they click on: Slack, Teams
// and the console all call this with the policy person they matched the clicker to.

export interface DecisionRequest {
  proposalId: string;
  /** A person id from the policy (`people`), already matched from the platform's user id. */
  person: string;
  platform: PlatformId;
  vote: Vote;
  reason?: string | null;
  /**
   * When the person signed in, from the platform's own session record (the console's); absent
   * or null where the platform cannot vouch for one. Only `step_up` rules ask for it.
   */
  authenticatedAt?: number | null;
  /** The batch this vote was cast in (batch-decisions.ts): carried by its approval_recorded or approval_refused event. */
  batch?: string;
  /**
   * Checked on the very version the vote is committed to: when false, nothing is recorded and
   * the result says `declined` (a batch's proposal whose rule changed after it was chosen).
   */
  onlyIf?: (p: Proposal) => boolean;
}

export interface DecisionResult {
  outcome: VoteOutcome;
  proposal: Proposal;
  /** True when `onlyIf` said no: no vote was cast, and `outcome` is not one. */
  declined?: true;
}

export function authorityFrom(policy: Policy): Authority {
  return {
    personExists: (person) => policy.people.has(person),
    isApprover: (person, group) => policy.isMember(group, person),
    isSponsor: (person, agent) => policy.agentById(agent)?.sponsors.includes(person) ?? false,
    agentExists: (agent) => policy.agentById(agent) !== undefined,
  };
}

/**
 * The kill switch as the store says now, for every agent of the policy in one read (a vote on
 * the proposal of an agent the policy no longer names is refused before this matters).
 */
function revokedAgents(deps: Pick<AppDeps, 'store' | 'policy'>): Promise<RevokedAgents> {
  return deps.store.revokedAgents([...deps.policy.agents.keys()]);
}

export async function recordDecision(deps: AppDeps, req: DecisionRequest): Promise<DecisionResult> {
  const authority = authorityFrom(deps.policy);
  const [revoked, firstAway] = await Promise.all([revokedAgents(deps), deps.away.list(deps.clock.now())]);
  const vote = { person: req.person, platform: req.platform, vote: req.vote, reason: req.reason ?? null, authenticatedAt: req.authenticatedAt ?? null };
  const { batch, onlyIf } = req;
  let declined = false;
  let away = firstAway;
  let delegated = false;
  const result = await mutate(deps, req.proposalId, async (p, now) => {
    // A delegate's vote that lost its round may have lost it to its absence ending (the commit
    // checks it): read the absences again rather than cast it on the old ones.
    if (delegated) away = await deps.away.list(now);
    declined = onlyIf !== undefined && !onlyIf(p);
    if (declined) return { outcome: { kind: 'refused', why: 'not_pending', message: 'this proposal changed', status: p.status } as const, next: null, events: [] };
    const step = applyVote(p, vote, authority, now, revoked, away);
    delegated = step.delegation !== undefined;
    return batch === undefined ? step : { ...step, events: step.events.map((e) => inBatch(e, batch)) };
  });
  return { outcome: result.outcome, proposal: result.proposal, ...(declined ? { declined: true as const } : {}) };
}

/** The vote's own event marked with its batch, so the log shows which votes were cast together. */
function inBatch(e: KnownAuditEvent, batch: string): KnownAuditEvent {
  if (e.type === 'approval_recorded') return { ...e, data: { ...e.data, batch } };
  if (e.type === 'approval_refused') return { ...e, data: { ...e.data, batch } };
  return e;
}

export type DecisionCheck =
  | { allowed: true; proposal: Proposal; reasonRequired: boolean }
  | { allowed: false; outcome: Extract<VoteOutcome, { kind: 'refused' }> };

/**
 * Whether `person` may vote on the proposal now, for platforms that ask for more input
 * (a deny reason) before the vote: a refusal is recorded exactly as recordDecision would
 * record it; an allowed vote is never counted here. A missing reason is reported, not refused.
 */
async function checkDecision(deps: AppDeps, req: Omit<DecisionRequest, 'reason'>): Promise<DecisionCheck> {
  const authority = authorityFrom(deps.policy);
  const [revoked, away] = await Promise.all([revokedAgents(deps), deps.away.list(deps.clock.now())]);
  const vote = { person: req.person, platform: req.platform, vote: req.vote, reason: null, authenticatedAt: req.authenticatedAt ?? null };
  let reasonRequired = false;
  const result = await mutate(deps, req.proposalId, (p, now) => {
    const step = applyVote(p, vote, authority, now, revoked, away);
    // The reason is the last thing applyVote checks: refused for it means allowed otherwise.
    reasonRequired = step.outcome.kind === 'refused' && step.outcome.why === 'reason_required';
    return step.outcome.kind === 'refused' && !reasonRequired ? step : { outcome: step.outcome, next: null, events: [] };
  });
  const outcome = result.outcome;
  if (outcome.kind === 'refused' && !reasonRequired) return { allowed: false, outcome };
  return { allowed: true, proposal: result.proposal, reasonRequired };
}

/** A click from a platform user who is not a person in the policy: refused and audited. */
export async function refuseUnknownUser(
  deps: AppDeps,
  req: { proposalId: string; platform: PlatformId; platformUser: string; vote: Vote },
): Promise<Extract<VoteOutcome, { kind: 'refused' }>> {
  const proposal = await deps.store.get(req.proposalId);
  await deps.audit.append([
    auditEvent('approval_refused', { at: iso(deps.clock.now()), proposal_id: proposal === null ? null : proposal.id, agent: proposal?.agent ?? null, actor: `${req.platform}:${req.platformUser.slice(0, 64)}` }, { platform: req.platform, platform_user: req.platformUser.slice(0, 64), vote: req.vote, why: 'unknown_person' }),
  ]);
  return { kind: 'refused', why: 'unknown_person', message: 'you are not a person in the policy', status: proposal?.status ?? 'pending' };
}

/** A click (or a command) from a platform user, before countersign knows who they are. */
export interface PlatformClick {
  proposalId: string;
  platform: PlatformId;
  /** The platform's user id. */
  user: string;
  /** False when the platform cannot vouch for the user (a guest of another tenant): a stranger. */
  trusted: boolean;
  vote: Vote;
  reason?: string | null;
}

export interface ClickResult {
  outcome: VoteOutcome;
  /** The proposal as it is now; null when it does not exist. */
  proposal: Proposal | null;
  /** What to tell the clicker alone (a refusal), or null when the click counted. */
  notice: string | null;
}

/** The policy person behind a platform user, or null. */
export function personFor(deps: Pick<AppDeps, 'policy'>, click: Pick<PlatformClick, 'platform' | 'user' | 'trusted'>): string | null {
  return click.trusted ? (deps.policy.personByPlatformId(click.platform, click.user)?.id ?? null) : null;
}

/** Every platform's Approve and Deny: who clicked, then the vote, then what to tell them. */
export async function decideClick(deps: AppDeps, click: PlatformClick): Promise<ClickResult> {
  const person = personFor(deps, click);
  if (person === null) {
    const refusal = await refuseUnknownUser(deps, { proposalId: click.proposalId, platform: click.platform, platformUser: click.user, vote: click.vote });
    return { outcome: refusal, proposal: await deps.store.get(click.proposalId), notice: refusalSentence(refusal) };
  }
  const { outcome, proposal } = await recordDecision(deps, { proposalId: click.proposalId, person, platform: click.platform, vote: click.vote, reason: click.reason ?? null });
  return { outcome, proposal, notice: outcome.kind === 'refused' ? refusalSentence(outcome) : null };
}

/** For platforms that ask for a deny reason in a dialog first: checkDecision, strangers refused as in decideClick. */
export async function checkClick(deps: AppDeps, click: Omit<PlatformClick, 'reason'>): Promise<DecisionCheck & { notice: string | null }> {
  const person = personFor(deps, click);
  if (person === null) {
    const outcome = await refuseUnknownUser(deps, { proposalId: click.proposalId, platform: click.platform, platformUser: click.user, vote: click.vote });
    return { allowed: false, outcome, notice: refusalSentence(outcome) };
  }
  const check = await checkDecision(deps, { proposalId: click.proposalId, person, platform: click.platform, vote: click.vote });
  return { ...check, notice: check.allowed ? null : refusalSentence(check.outcome) };
}
