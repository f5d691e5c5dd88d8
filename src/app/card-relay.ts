import type { CardOutbox, JobScheduler, Logger, NotifyJob, OutboxEntry } from '../core/ports.ts';
import { postNewCard, type NotifyDeps } from './deliver-notification.ts';
import { platformsFor } from './notify-platforms.ts';

// Posts the cards of new pending proposals from the card outbox (ports.ts CardOutbox), which the
// create step itself writes. Each entry's cards are posted right here, one attempt per
// platform; a card that fails goes to the notify queue, which retries it with backoff (and
// audits card_failed when it gives up). An entry is forgotten only once every card is posted or
// queued; one that is not (the process died, Redis went away) is reclaimed by a relay after
// RECLAIM_IDLE_MS, and posting is idempotent (deliverNotification skips a card that exists
// and claims the post), so a card is posted once however often its entry is read. A card whose
// post another poster holds is not done either: that poster may be a relay that died with the
// claim (it lapses after a while), and then nothing else would ever post the card.
// Before the outbox, each new proposal cost two BullMQ adds and a job's round of scripts.

export interface CardRelayDeps extends NotifyDeps {
  jobs: Pick<JobScheduler, 'notify'>;
}

export interface CardRelayOptions {
  /** This relay's name in the outbox (one per process). */
  consumer: string;
  /** Entries taken at once; their cards are posted side by side. */
  batch?: number;
  /** How long one read waits for an entry, ms: also how long stop() may wait for it. */
  blockMs?: number;
  /** An entry taken by a relay that has not finished it in this long is taken over, ms. */
  reclaimIdleMs?: number;
  /** After a failed read (Redis away), the pause before the next, ms. */
  retryMs?: number;
}

export const RECLAIM_IDLE_MS = 60_000;

export interface CardRelay {
  /** Takes no more entries; resolves when the batch in hand is done (the caller bounds the wait). */
  stop(): Promise<void>;
}

/** Posts the cards of `entries`; resolves with the entries that are done (the others are left for a reclaim). */
export async function relayCards(deps: CardRelayDeps, entries: readonly OutboxEntry[]): Promise<OutboxEntry[]> {
  const settled = await Promise.all(entries.map(async (entry) => ((await postCards(deps, entry)) ? entry : null)));
  return settled.filter((e): e is OutboxEntry => e !== null);
}

async function postCards(deps: CardRelayDeps, entry: OutboxEntry): Promise<boolean> {
  try {
    const p = entry.proposal_id === '' ? null : await deps.store.get(entry.proposal_id);
    // Gone, or decided before its card went out: the update flow shows whatever card exists.
    if (p === null || p.status !== 'pending') return true;
    // A platform of the route with no adapter here is the repair sweep's to report (repair-cards.ts).
    const jobs = platformsFor(deps, p)
      .filter((platform) => deps.channels.has(platform))
      .map((platform): NotifyJob => ({ kind: 'post', proposal_id: p.id, platform }));
    const failed: NotifyJob[] = [];
    let busy = false;
    await Promise.all(
      jobs.map((job) =>
        postNewCard(deps, job.proposal_id, job.platform).then(
          (outcome) => void (busy ||= outcome === 'busy'),
          (e: unknown) => {
            deps.logger.warn({ proposal_id: p.id, platform: job.platform, error: (e as Error).message }, 'card not posted at once: queued for retries');
            failed.push(job);
          },
        ),
      ),
    );
    if (failed.length > 0) await deps.jobs.notify(failed);
    if (busy) deps.logger.debug({ proposal_id: p.id }, 'card outbox entry kept: another poster holds a card of it');
    return !busy;
  } catch (e) {
    deps.logger.warn({ proposal_id: entry.proposal_id, error: (e as Error).message }, 'card outbox entry left for a later reclaim');
    return false;
  }
}

/** Reads the outbox until stopped: new entries as they come, and now and then the ones a dead relay left. */
export function startCardRelay(deps: CardRelayDeps, outbox: CardOutbox, opts: CardRelayOptions): CardRelay {
  const batch = opts.batch ?? 16;
  const blockMs = opts.blockMs ?? 1000;
  const reclaimIdleMs = opts.reclaimIdleMs ?? RECLAIM_IDLE_MS;
  const retryMs = opts.retryMs ?? 1000;
  let running = true;
  let wake: (() => void) | null = null;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => ((wake = null), resolve()), ms);
      wake = () => (clearTimeout(timer), (wake = null), resolve());
    });

  const loop = (async () => {
    let nextReclaim = Date.now() + reclaimIdleMs;
    while (running) {
      try {
        const entries = await outbox.take(opts.consumer, batch, blockMs);
        if (Date.now() >= nextReclaim) {
          nextReclaim = Date.now() + reclaimIdleMs;
          entries.push(...(await outbox.reclaim(opts.consumer, reclaimIdleMs, batch)));
        }
        if (entries.length > 0) await outbox.done(await relayCards(deps, entries));
      } catch (e) {
        if (!running) break;
        deps.logger.debug({ error: (e as Error).message }, 'card outbox read failed');
        await pause(retryMs);
      }
    }
  })();

  return {
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}
