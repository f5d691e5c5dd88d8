import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { buildApprovalCard, type CardModel, type CardRef } from '../core/card.ts';
import { PermanentDeliveryError } from '../core/delivery-errors.ts';
import { routeOfStep } from '../core/escalation.ts';
import type { Proposal } from '../core/proposal.ts';
import type { CardRefStore, ChatChannel, NotifyJob } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { AppDeps } from './deps.ts';

// Runs one notify job (at least once: from the notify queue with retries, or from the card
// relay for a new card). Every job renders the proposal as it is now, so a job that runs late
// or twice shows the same truth; posts are skipped when a card for that platform already exists.

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
  if (job.kind === 'post') {
    await postCard(deps, channel, job.proposal_id, job.platform, job.step ?? 0);
    return;
  }
  const proposal = await deps.store.get(job.proposal_id);
  if (proposal === null) return;
  const refs = (await deps.cards.list(proposal.id)).filter((r) => r.platform === job.platform);

  switch (job.kind) {
    case 'update': {
      const card = cardFor(deps, proposal);
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
      // A retried (or slow) reminder must not call on people under a card already decided.
      if (job.reply.whilePending === true && proposal.status !== 'pending') return;
      if (refs.length === 0) throw new CardNotPostedError(`the ${job.platform} card for ${proposal.id} is not posted yet`);
      for (const ref of refs) await channel.replyInThread(ref, job.reply);
      return;
  }
}

/**
 * A new card's post, as deliverNotification runs a post job, telling what became of it: `busy`
 * when another poster holds the claim (alive, or dead until its claim lapses: a caller with no
 * retry of its own behind it, the card relay, must try again later), `done` otherwise.
 */
export async function postNewCard(deps: NotifyDeps, proposalId: string, platform: PlatformId, step = 0): Promise<'done' | 'busy'> {
  const channel = deps.channels.get(platform);
  if (channel === undefined) throw new Error(`no ${platform} adapter is configured`);
  return postCard(deps, channel, proposalId, platform, step);
}

/**
 * A new card, in two steps of the card store around the post (one Redis round trip each): the
 * claim, which also says whether a card exists and hands back the proposal to render, and the
 * finish, which saves where the card is, audits card_posted and ends the claim together.
 *
 * The process dying between the post and the finish leaves a card nobody knows of: the claim
 * lapses after POST_CLAIM_SECONDS, the retry (the queue's, the outbox's reclaim, or the repair
 * sweep) posts the card again, and that one is saved, updated and audited. The first stays in
 * the channel as it was posted (its buttons still decide, through the proposal id they carry).
 * Nothing is lost; a rare crash costs a stale duplicate.
 */
async function postCard(deps: NotifyDeps, channel: ChatChannel, proposalId: string, platform: PlatformId, step = 0): Promise<'done' | 'busy'> {
  // Not claimed: a card exists, someone else is posting it (if they fail, their job retries),
  // or the proposal is gone or decided (the update flow shows whatever card exists).
  const claim = await deps.cards.claimPost(proposalId, platform, POST_CLAIM_SECONDS, step);
  if (claim.kind === 'busy') return 'busy';
  if (claim.kind !== 'claimed') return 'done';
  const { proposal } = claim;
  let ref: CardRef;
  try {
    const route = routeOfStep(proposal, step);
    const target = targetFor(deps, route, platform);
    if (target === null) throw new Error(`route "${route ?? ''}" has no ${platform} channel`);
    const posted = await channel.postCard(target, cardFor(deps, proposal));
    ref = step === 0 ? posted : { ...posted, step };

  } catch (e) {
    await deps.cards.releasePost(claim).catch(() => undefined);
    throw e;
  }
  const posted = auditEvent(
    'card_posted',
    { at: iso(deps.clock.now()), proposal_id: proposal.id, agent: proposal.agent, actor: 'system' },
    { platform: ref.platform, conversation: ref.conversation, message: ref.message, ...(step === 0 ? {} : { step }) },
  );

  let version: number | null;
  try {
    version = await deps.cards.finishPost(claim, ref, [posted]);
  } catch (e) {
    // Not saved (or not known to be): the retry posts again unless the finish did land, which
    // its claim step then sees. Released so that the retry need not wait for the claim to lapse.
    await deps.cards.releasePost(claim).catch(() => undefined);
    throw e;
  }
  // The proposal may have moved on while the card was on its way: show where it is now.
  if (version === null || version === proposal.version) return 'done';
  const latest = await deps.store.get(proposal.id);
  if (latest !== null) await channel.updateCard(ref, cardFor(deps, latest));
  return 'done';
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
  // Which card: an escalation step's is not the rule's (the channel people were waiting on).
  const step = job.step ?? 0;
  const ofStep = step === 0 ? {} : { step, route: proposal === null ? null : routeOfStep(proposal, step) };
  await deps.audit.append([
    auditEvent('card_failed', { at: iso(deps.clock.now()), proposal_id: job.proposal_id, agent: proposal?.agent ?? null, actor: 'system' }, {
      platform: job.platform,
      error: message.slice(0, 300),
      permanent: error instanceof PermanentDeliveryError,
      retry_later: proposal?.status === 'pending',
      ...ofStep,
    }),
  ]);
  return proposal?.status === 'pending';
}
