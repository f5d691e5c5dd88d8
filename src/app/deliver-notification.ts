import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { buildApprovalCard, type CardModel } from '../core/card.ts';
import { PermanentDeliveryError } from '../core/delivery-errors.ts';
import type { Proposal } from '../core/proposal.ts';
import type { CardRefStore, ChatChannel, NotifyJob } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { AppDeps } from './deps.ts';

// Runs one notify job (at least once, with retries, from the notify queue). Every job
// renders the proposal as it is now, so a job that runs late or twice shows the same
// truth; posts are skipped when a card for that platform already exists.

export interface NotifyDeps extends Pick<AppDeps, 'store' | 'audit' | 'policy' | 'clock' | 'proposalUrl' | 'logger'> {
  cards: CardRefStore;
  channels: ReadonlyMap<PlatformId, ChatChannel>;
}

/** The card people see for `p`, wherever they are. */
export function cardFor(deps: Pick<AppDeps, 'proposalUrl'>, p: Proposal): CardModel {
  return buildApprovalCard(p, deps.proposalUrl(p.id));
}

/** Longer than any one post can take (the chat clients time out sooner). */
const POST_CLAIM_SECONDS = 120;

/** The card cannot be posted yet (thread replies wait for their card); the queue retries. */
export class CardNotPostedError extends Error {}

function targetFor(deps: NotifyDeps, route: string | null, platform: PlatformId): string | null {
  return deps.policy.targetOf(route, platform)?.target ?? null;
}

export async function deliverNotification(deps: NotifyDeps, job: NotifyJob): Promise<void> {
  const channel = deps.channels.get(job.platform);
  if (channel === undefined) throw new Error(`no ${job.platform} adapter is configured`);
  const proposal = await deps.store.get(job.proposal_id);
  if (proposal === null) return;
  const refs = (await deps.cards.list(proposal.id)).filter((r) => r.platform === job.platform);
  const card = cardFor(deps, proposal);

  switch (job.kind) {
    case 'post': {
      if (refs.length > 0 || proposal.status !== 'pending') return;
      const target = targetFor(deps, proposal.decision.route, job.platform);
      if (target === null) throw new Error(`route "${proposal.decision.route ?? ''}" has no ${job.platform} channel`);
      // Someone else is posting this card right now; if they fail, their job retries.
      if (!(await deps.cards.claimPost(proposal.id, job.platform, POST_CLAIM_SECONDS))) return;
      let ref;
      try {
        ref = await channel.postCard(target, card);
        await deps.cards.save(proposal.id, ref);
      } catch (e) {
        await deps.cards.releasePost(proposal.id, job.platform).catch(() => undefined);
        throw e;
      }
      await deps.audit.append([
        auditEvent('card_posted', { at: iso(deps.clock.now()), proposal_id: proposal.id, agent: proposal.agent, actor: 'system' }, { platform: ref.platform, conversation: ref.conversation, message: ref.message }),
      ]);
      // The proposal may have moved on while the card was on its way: show where it is now.
      const latest = await deps.store.get(proposal.id);
      if (latest !== null && latest.version !== proposal.version) await channel.updateCard(ref, cardFor(deps, latest));
      return;
    }
    case 'update': {
      for (const ref of refs) await channel.updateCard(ref, card);
      // Update jobs run concurrently: one that rendered an older version may land last, so
      // whoever sees the proposal moved on renders it again (the final state always wins).
      const latest = await deps.store.get(proposal.id);
      if (latest !== null && latest.version !== proposal.version) {
        for (const ref of refs) await channel.updateCard(ref, cardFor(deps, latest));
      }
      return;
    }
    case 'reply':
      if (refs.length === 0) throw new CardNotPostedError(`the ${job.platform} card for ${proposal.id} is not posted yet`);
      for (const ref of refs) await channel.replyInThread(ref, job.reply);
      return;
  }
}

/**
 * After the last retry, or at once when the platform refused for good (PermanentDeliveryError:
 * no attempts burnt on an answer that will not change): the card is missing for now, which
 * people must hear about. Resolves to true when the post should get another round later: the
 * proposal stays pending (a card that cannot be posted never decides anything) and a card that
 * appears late can still be clicked. A permanent refusal gets its round too (slower, the queue
 * decides how much): an admin may invite the bot or fix the channel while the proposal waits.
 */
export async function recordCardFailure(deps: NotifyDeps, job: NotifyJob, error: unknown): Promise<boolean> {
  const proposal = await deps.store.get(job.proposal_id);
  const message = error instanceof Error ? error.message : String(error);
  deps.logger.error({ proposal_id: job.proposal_id, platform: job.platform, kind: job.kind, error: message }, 'chat notification failed');
  if (job.kind !== 'post') return false;
  await deps.audit.append([
    auditEvent('card_failed', { at: iso(deps.clock.now()), proposal_id: job.proposal_id, agent: proposal?.agent ?? null, actor: 'system' }, {
      platform: job.platform,
      error: message.slice(0, 300),
      permanent: error instanceof PermanentDeliveryError,
      retry_later: proposal?.status === 'pending',
    }),
  ]);
  return proposal?.status === 'pending';
}
