import type { NotifyJob } from '../core/ports.ts';
import type { AppDeps } from './deps.ts';
import type { NotifyDeps } from './deliver-notification.ts';
import { cardsFor } from './notify-platforms.ts';


// A committed proposal whose process died before it enqueued the card's post job would
// wait unseen until it expired. The periodic sweep looks for pending proposals older than
// `graceMs` without a card on a platform of their route and enqueues the post again (job
// ids dedupe it against a post that is merely slow).

export async function repairMissingCards(deps: NotifyDeps & Pick<AppDeps, 'jobs'>, graceMs = 60_000, limit = 500): Promise<number> {
  const now = deps.clock.now();
  const jobs: NotifyJob[] = [];
  for (const p of await deps.store.listPending(limit)) {
    if (now - p.created_at < graceMs) continue;
    // One card per platform of each route reached: the rule's (step 0) and each escalation step's.
    const posted = new Set((await deps.cards.list(p.id)).map((r) => `${r.platform}#${r.step ?? 0}`));
    for (const { platform, step } of cardsFor(deps, p)) {
      if (!posted.has(`${platform}#${step}`) && deps.channels.has(platform)) jobs.push({ kind: 'post', proposal_id: p.id, platform, ...(step === 0 ? {} : { step }) });
    }
  }
  if (jobs.length > 0) await deps.jobs.notify(jobs);
  return jobs.length;
}
