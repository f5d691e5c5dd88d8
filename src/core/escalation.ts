import { formatDuration } from './duration.ts';
import { MAX_REMINDERS } from './policy/escalation-schema.ts';
import type { Proposal } from './proposal.ts';

// When nobody answers: the rule's `escalate` steps, `remind` and `on_timeout`, as the proposal's
// Decision copied them when it was made (a policy change never moves a proposal already on its
// way). Pure: what is reached, what is due next, and the words people read. The step that
// commits a nudge is nudge.ts; the sweep that finds due ones is src/app/escalate.ts.

/** How many of the decision's escalate steps the proposal has reached. */
export function stepsReached(p: Pick<Proposal, 'escalation'>): number {
  return p.escalation?.step ?? 0;
}

/**
 * The groups whose members may decide on `p` now: the rule's approvers, then those of every
 * escalation step reached so far (escalation adds people, it never takes any away).
 */
export function approverGroups(p: Pick<Proposal, 'decision' | 'escalation'>): string[] {
  return groupsAfter(p.decision, stepsReached(p));
}

function groupsAfter(decision: Proposal['decision'], reached: number): string[] {
  const groups = decision.approvers === null ? [] : [decision.approvers];
  for (const s of (decision.escalate ?? []).slice(0, reached)) if (!groups.includes(s.approvers)) groups.push(s.approvers);
  return groups;
}

/** The routes `p`'s cards went to: the rule's, then each escalation step's reached so far (index = step). */
export function routesReached(p: Pick<Proposal, 'decision' | 'escalation'>): string[] {
  const routes = p.decision.route === null ? [] : [p.decision.route];
  for (const s of (p.decision.escalate ?? []).slice(0, stepsReached(p))) routes.push(s.route);
  return routes;
}

/** The route step `step`'s cards go to: the rule's (0), or escalation step `step`'s (counting from 1); null when none. */
export function routeOfStep(p: Pick<Proposal, 'decision'>, step: number): string | null {
  return step === 0 ? p.decision.route : (p.decision.escalate?.[step - 1]?.route ?? null);
}

/** When the next escalation step is due (ms since the epoch), or null when none is left. */
export function nextStepAt(p: Pick<Proposal, 'decision' | 'escalation' | 'created_at'>): number | null {
  const step = p.decision.escalate?.[stepsReached(p)];
  return step === undefined ? null : p.created_at + step.after_ms;
}

/** When the next reminder is due, or null when the rule has none (or none left: at most MAX_REMINDERS). */
export function nextReminderAt(p: Pick<Proposal, 'decision' | 'reminders' | 'created_at'>): number | null {
  const every = p.decision.remind_ms;
  if (every === undefined || every <= 0) return null;
  // The load check keeps a policy within it; this keeps a decision copied before that check did.
  if ((p.reminders?.count ?? 0) >= MAX_REMINDERS) return null;
  return p.created_at + ((p.reminders?.count ?? 0) + 1) * every;
}

/**
 * When something is next due for a pending proposal (a step or a reminder), before its deadline;
 * null when nothing is (then it is not in the store's due set). The store scores its set by this.
 */
export function nextNudgeAt(p: Proposal): number | null {
  if (p.status !== 'pending') return null;
  const times = [nextStepAt(p), nextReminderAt(p)].filter((t): t is number => t !== null && (p.expires_at === null || t < p.expires_at));
  return times.length === 0 ? null : Math.min(...times);
}

/** "finance", "finance or oncall". */
export function groupsText(groups: readonly string[]): string {
  return groups.length <= 1 ? (groups[0] ?? '(none)') : `${groups.slice(0, -1).join(', ')} or ${groups.at(-1) ?? ''}`;
}

/** Why step `step` (counting from 1) was taken: "nobody in finance decided within 15m". */
export function escalationWhy(p: Pick<Proposal, 'decision'>, step: number): string {
  const s = p.decision.escalate?.[step - 1];
  return `nobody in ${groupsText(groupsAfter(p.decision, step - 1))} decided within ${formatDuration(s?.after_ms ?? 0)}`;

}

/** The line every card of an escalated proposal shows for step `step`. */
export function escalationLine(p: Pick<Proposal, 'decision'>, step: number): string {
  const s = p.decision.escalate?.[step - 1];
  const from = routeOfStep(p, step - 1);
  if (s === undefined) return '';
  return `⏫ Escalated from ${from ?? '?'} to ${s.route} after ${formatDuration(s.after_ms)}: ${escalationWhy(p, step)}. Members of ${s.approvers} may decide now too.`;
}

/** The escalation lines of `p`, one per step reached, oldest first. */
export function escalationLines(p: Pick<Proposal, 'decision' | 'escalation'>): string[] {
  return Array.from({ length: stepsReached(p) }, (_, i) => escalationLine(p, i + 1)).filter((l) => l !== '');
}

/** "40 min", "25 s": how long until `until`, rounded up, for people. */
export function timeLeft(ms: number): string {
  if (ms <= 0) return 'now';
  return ms >= 60_000 ? `${Math.ceil(ms / 60_000)} min` : `${Math.ceil(ms / 1000)} s`;
}

/** The resolution reason of a proposal denied at its deadline by `on_timeout: deny`. */
export function timeoutDenyReason(p: Pick<Proposal, 'decision'>): string {
  return `nobody decided within ${formatDuration(p.decision.ttl_ms)} (on_timeout: deny)`;
}
