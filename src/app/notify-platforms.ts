import type { AuditEventInput } from '../core/audit.ts';
import { threadReply } from '../core/event-text.ts';
import type { NotifyJob } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal } from '../core/proposal.ts';
import type { CommitSubscriber } from './after-commit.ts';
import type { AppDeps } from './deps.ts';

// Cards and thread replies on every platform of the proposal's route, as notify jobs (one per
// platform, so a slow or failing platform never repeats work on another): every commit after
// the first updates the cards and replies in their threads. A new pending proposal's cards are
// posted by the card relay from the outbox its create step wrote (card-relay.ts).

export function platformsFor(deps: Pick<AppDeps, 'policy'>, p: Proposal): PlatformId[] {
  return p.decision.effect === 'approve' ? deps.policy.platformsOf(p.decision.route) : [];
}

function replyJobs(deps: Pick<AppDeps, 'policy'>, p: Proposal, events: readonly AuditEventInput[], key: string): NotifyJob[] {
  const jobs: NotifyJob[] = [];
  for (const platform of platformsFor(deps, p)) {
    events.forEach((e, i) => {
      const reply = threadReply(p, e);
      if (reply !== null) jobs.push({ kind: 'reply', proposal_id: p.id, platform, reply, key: `${key}-${i}` });
    });
  }
  return jobs;
}

export function notifyPlatforms(deps: Pick<AppDeps, 'policy' | 'jobs'>): CommitSubscriber {
  return {
    name: 'notify-platforms',
    async onCommitted({ before, after, events }) {
      // A new proposal's cards come from the card outbox (card-relay.ts), written with it.
      if (before === null) return;
      const jobs: NotifyJob[] = [
        ...platformsFor(deps, after).map((platform): NotifyJob => ({ kind: 'update', proposal_id: after.id, platform, version: after.version })),
        ...replyJobs(deps, after, events, String(after.version)),
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
