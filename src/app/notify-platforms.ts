import type { AuditEventInput } from '../core/audit.ts';
import { NOBODY_AWAY, type Absences } from '../core/away.ts';
import { threadReply } from '../core/event-text.ts';
import type { NotifyJob } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal } from '../core/proposal.ts';
import { approverGroups, routesReached } from '../core/escalation.ts';
import type { CommitSubscriber } from './after-commit.ts';

import type { AppDeps } from './deps.ts';

// Cards and thread replies on every platform of the proposal's route, as notify jobs (one per
// platform, so a slow or failing platform never repeats work on another): every commit after
// the first updates the cards and replies in their threads. A new pending proposal's cards are
// posted by the card relay from the outbox its create step wrote (card-relay.ts).

/** The platforms `p` has cards on: its route's, and those of every escalation step's route reached. */
export function platformsFor(deps: Pick<AppDeps, 'policy'>, p: Proposal): PlatformId[] {
  if (p.decision.effect !== 'approve') return [];
  return [...new Set(routesReached(p).flatMap((route) => deps.policy.platformsOf(route)))];
}

/** The cards `p` should have: each platform of its route (step 0), then of each escalation step's route reached. */
export function cardsFor(deps: Pick<AppDeps, 'policy'>, p: Proposal): { platform: PlatformId; step: number }[] {
  if (p.decision.effect !== 'approve') return [];
  return routesReached(p).flatMap((route, step) => deps.policy.platformsOf(route).map((platform) => ({ platform, step })));
}

function replyJobs(deps: Pick<AppDeps, 'policy'>, p: Proposal, events: readonly AuditEventInput[], key: string, away: Absences = NOBODY_AWAY): NotifyJob[] {
  const jobs: NotifyJob[] = [];
  for (const platform of platformsFor(deps, p)) {
    events.forEach((e, i) => {
      const reply = threadReply(p, e);
      if (reply === null) return;
      // A reminder calls on the people who may still decide, where the platform can say so.
      const mentions = e.type === 'reminded' ? mentionable(deps, p, platform, away) : [];
      jobs.push({ kind: 'reply', proposal_id: p.id, platform, reply: mentions.length === 0 ? reply : { ...reply, mentions }, key: `${key}-${i}` });
    });
  }
  return jobs;
}

/**
 * The platform user ids of everyone who may still decide on `p` and has not: for a reminder's
 * mentions. An approver away (`away`, in force now) is stood in for by their delegate, who is
 * the one to call on; a human already counted (as themselves or as someone's delegate) is not.
 */
function mentionable(deps: Pick<AppDeps, 'policy'>, p: Proposal, platform: PlatformId, away: Absences): string[] {
  const { policy } = deps;
  const voted = new Set(p.approvals.flatMap((a) => (a.delegate === undefined ? [a.person] : [a.person, a.delegate])));
  const sponsors = new Set(policy.agentById(p.agent)?.sponsors ?? []);
  const approvers = new Set(approverGroups(p).flatMap((g) => policy.groups.get(g) ?? []));
  const seats = [...approvers].filter((id) => !voted.has(id) && !sponsors.has(id));
  const people = new Set(seats.map((id) => away.get(id)?.delegate ?? id));
  return [...people].filter((id) => !voted.has(id) && !sponsors.has(id)).flatMap((id) => {
    const user = policy.people.get(id)?.accounts.get(platform)?.userId;
    return typeof user === 'string' && user !== '' ? [user] : [];
  });
}

/** Post jobs for the cards of the escalation steps a commit took (their routes' platforms). */
function escalatedCardJobs(deps: Pick<AppDeps, 'policy'>, p: Proposal, events: readonly AuditEventInput[]): NotifyJob[] {
  return events.flatMap((e) => {
    if (e.type !== 'escalated') return [];
    const step = Number(e.data['step']);
    const route = p.decision.escalate?.[step - 1]?.route ?? null;
    return deps.policy.platformsOf(route).map((platform): NotifyJob => ({ kind: 'post', proposal_id: p.id, platform, step }));
  });
}

/** Who is away now, read only for a reminder (whose mentions call on delegates). */
async function absencesFor(deps: Pick<AppDeps, 'away' | 'clock'>, events: readonly AuditEventInput[]): Promise<Absences> {
  return events.some((e) => e.type === 'reminded') ? deps.away.list(deps.clock.now()) : NOBODY_AWAY;
}

export function notifyPlatforms(deps: Pick<AppDeps, 'policy' | 'jobs' | 'away' | 'clock'>): CommitSubscriber {
  return {
    name: 'notify-platforms',
    async onCommitted({ before, after, events }) {
      // A new proposal's cards come from the card outbox (card-relay.ts), written with it.
      if (before === null) return;
      // A reminder changes nothing a card shows: its reply is all (no card update every interval).
      const onlyReminded = events.length > 0 && events.every((e) => e.type === 'reminded');
      const jobs: NotifyJob[] = [
        ...escalatedCardJobs(deps, after, events),
        ...(onlyReminded ? [] : platformsFor(deps, after).map((platform): NotifyJob => ({ kind: 'update', proposal_id: after.id, platform, version: after.version }))),

        ...replyJobs(deps, after, events, String(after.version), await absencesFor(deps, events)),
      ];
      if (jobs.length > 0) await deps.jobs.notify(jobs);
    },
  };
}

/**
 * Thread replies for events that are not part of a commit (a callback that could not be
 * delivered): the same replies a commit would produce, keyed so a retried call posts once.
 */
export async function replyToEvents(deps: Pick<AppDeps, 'policy' | 'jobs'>, p: Proposal, events: readonly AuditEventInput[], key: string): Promise<void> {
  const jobs = replyJobs(deps, p, events, key);
  if (jobs.length > 0) await deps.jobs.notify(jobs);
}
