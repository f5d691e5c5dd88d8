import type { AuditEventInput } from '../core/audit.ts';
import type { ThreadReply } from '../core/card.ts';
import type { NotifyJob } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { threadReply } from '../core/event-text.ts';

// What has to happen after a committed change, derived from the change itself so every
// use case (intake, clicks, expiry, cancel, execution) gets the same cards, thread
// replies, wake-ups and hand-offs. Failures here are logged, never thrown back at the
// caller: the state change is already durable, and a lost card update is repaired by the
// next one (update jobs always render the latest state).

export function platformsFor(deps: Pick<AppDeps, 'policy'>, p: Proposal): PlatformId[] {
  return deps.policy.platformsOf(p.decision.route);
}

export async function followUp(deps: AppDeps, before: Proposal | null, after: Proposal, events: AuditEventInput[]): Promise<void> {
  const statusChanged = before === null || before.status !== after.status;
  const tasks: Promise<unknown>[] = [];
  if (statusChanged) tasks.push(deps.changes.publish(after.id, after.status));
  if (statusChanged && after.resolution !== null && after.status !== 'pending' && before?.status === 'pending') {
    deps.metrics.decisionRecorded(after.status, (after.resolution.at - after.created_at) / 1000);
  }

  const jobs: NotifyJob[] = [];
  const platforms = after.decision.effect === 'approve' ? platformsFor(deps, after) : [];
  if (before === null) {
    if (after.status === 'pending') {
      for (const platform of platforms) jobs.push({ kind: 'post', proposal_id: after.id, platform });
      if (after.expires_at !== null) tasks.push(deps.jobs.scheduleExpiry(after.id, after.expires_at));
    }
  } else {
    for (const platform of platforms) {
      jobs.push({ kind: 'update', proposal_id: after.id, platform, version: after.version });
      events.forEach((e, i) => {
        const reply = threadReply(after, e);
        if (reply !== null) jobs.push({ kind: 'reply', proposal_id: after.id, platform, reply, key: `${after.version}-${i}` });
      });
    }
  }
  if (jobs.length > 0) tasks.push(deps.jobs.notify(jobs));
  if (after.status === 'approved' && before?.status !== 'approved') tasks.push(deps.onApproved(after));
  if (statusChanged && before !== null && deps.onStatusChanged !== undefined) tasks.push(deps.onStatusChanged(after));

  const results = await Promise.allSettled(tasks);
  for (const r of results) {
    if (r.status === 'rejected') deps.logger.error({ err: r.reason, proposal_id: after.id }, 'follow-up after a committed change failed');
  }
}

/**
 * Thread replies for events that are not part of a commit (a callback that could not be
 * delivered): the same replies a commit would produce, keyed so a retried call posts once.
 */
export async function replyToEvents(deps: AppDeps, p: Proposal, events: AuditEventInput[], key: string): Promise<void> {
  const jobs: NotifyJob[] = [];
  const platforms = p.decision.effect === 'approve' ? platformsFor(deps, p) : [];
  for (const platform of platforms) {
    events.forEach((e, i) => {
      const reply = threadReply(p, e);
      if (reply !== null) jobs.push({ kind: 'reply', proposal_id: p.id, platform, reply, key: `${key}-${i}` });
    });
  }
  if (jobs.length > 0) await deps.jobs.notify(jobs);
}
