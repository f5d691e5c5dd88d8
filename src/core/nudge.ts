import { iso } from './clock.ts';
import { approverGroups, nextReminderAt, nextStepAt, routeOfStep, stepsReached } from './escalation.ts';
import { eventAbout, isOverdue, type RevokedAgents, type Step } from './lifecycle.ts';
import type { Proposal } from './proposal.ts';

// The step that moves a pending proposal nobody answers: its next escalation step, or a
// reminder, whichever is due (a step first). Committed with compare-and-set on `version` like
// every other change (src/app/escalate.ts), so two sweeps on two replicas cannot both take a
// step: the loser reads the proposal again and finds nothing due.

export type NudgeOutcome = { kind: 'escalated'; step: number } | { kind: 'reminded'; count: number } | { kind: 'none' };

/**
 * Whether nobody can ever decide on `p` (canDecide refuses everyone): its agent's kill switch was
 * pulled after it was made (a revocation that stopped before cancelling it), or the policy no
 * longer names its agent. A step would page people, and a reminder call on them, for nothing.
 */
export function undecidable(p: Pick<Proposal, 'agent' | 'created_at'>, revoked: RevokedAgents, agentExists: boolean): boolean {
  const revokedAt = revoked.get(p.agent);
  return !agentExists || (revokedAt !== undefined && p.created_at <= revokedAt);
}

/** What the sweep knows now, from the store (the kill switch) and the policy in force. */
export interface NudgeWorld {
  revoked: RevokedAgents;
  agentExists(agent: string): boolean;
  /** Whether a route still posts somewhere, and a group is still in the policy: a step copied before a policy change may name one that is gone. */
  routePosts(route: string): boolean;
  groupExists(group: string): boolean;
}

/** The world as the decision copied it: everything there, nobody revoked. */
export const UNCHANGED_WORLD: NudgeWorld = { revoked: new Map(), agentExists: () => true, routePosts: () => true, groupExists: () => true };

export function nudge(p: Proposal, now: number, world: NudgeWorld = UNCHANGED_WORLD): Step<NudgeOutcome> {
  const none: Step<NudgeOutcome> = { outcome: { kind: 'none' }, next: null, events: [] };
  // A proposal past its deadline is the expiry's (or on_timeout's), not a step's.
  if (p.status !== 'pending' || isOverdue(p, now) || undecidable(p, world.revoked, world.agentExists(p.agent))) return none;
  const stepAt = nextStepAt(p);
  if (stepAt !== null && stepAt <= now) {
    const step = stepsReached(p) + 1;
    const s = p.decision.escalate?.[step - 1];
    if (s === undefined) return none;
    const next: Proposal = { ...p, escalation: { step, at: now }, version: p.version + 1 };
    const from = routeOfStep(p, step - 1);
    // Still taken (whoever is left may decide, the cards say it), but nobody is told in silence that nobody was paged.
    const gone = [...(world.routePosts(s.route) ? [] : ['route' as const]), ...(world.groupExists(s.approvers) ? [] : ['approvers' as const])];
    return {
      outcome: { kind: 'escalated', step },
      next,
      events: [
        eventAbout(p, now, 'escalated', 'system', {
          step,
          route: s.route,
          approvers: s.approvers,
          after_ms: s.after_ms,
          from_route: from,
          waited_on: approverGroups(p),
          ...(gone.length === 0 ? {} : { not_in_policy: gone }),
        }),
      ],
    };
  }
  const remindAt = nextReminderAt(p);
  const every = p.decision.remind_ms;
  if (remindAt === null || remindAt > now || every === undefined) return none;
  // After a pause (every replica down) one reminder, not one per missed interval.
  const count = Math.floor((now - p.created_at) / every);
  const approvals = p.approvals.filter((a) => a.vote === 'approve').length;
  return {
    outcome: { kind: 'reminded', count },
    next: { ...p, reminders: { count, at: now }, version: p.version + 1 },
    events: [
      eventAbout(p, now, 'reminded', 'system', {
        count,
        approvals,
        required: p.decision.approvals_required,
        expires_at: p.expires_at === null ? null : iso(p.expires_at),
        waiting_on: approverGroups(p),
      }),
    ],
  };
}
