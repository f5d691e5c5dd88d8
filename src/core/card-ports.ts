// The ports that put cards in front of people: the chat platforms, where their cards are, the
// queue and outbox that post them, and the live notices of the pages that show them. Part of
// ports.ts (which re-exports them), kept apart for size.
import type { AuditEventInput } from './audit.ts';
import type { CardModel, CardRef, ThreadReply } from './card.ts';
import type { PlatformId } from './platform.ts';
import type { Proposal } from './proposal.ts';

/** A chat platform that can show cards; one implementation per platform. */
export interface ChatChannel {
  readonly platform: PlatformId;
  /** `target` is the route's address on this platform (a Slack channel id, a Teams route key). */
  postCard(target: string, card: CardModel): Promise<CardRef>;
  updateCard(ref: CardRef, card: CardModel): Promise<void>;
  replyInThread(ref: CardRef, reply: ThreadReply): Promise<void>;
  /** A plain message to the route (no buttons, nobody decides): the over-the-limit alert. */
  postNotice?(target: string, text: string): Promise<CardRef>;
  /** The notice's running count: its message's text replaced (still plain). */
  updateNotice?(ref: CardRef, text: string): Promise<void>;
}

/** Where each proposal's cards were posted. */
export interface CardRefStore {
  list(proposalId: string): Promise<CardRef[]>;
  save(proposalId: string, ref: CardRef): Promise<void>;
  /**
   * A poster's first step, in one: whether the card of `proposalId` may be posted on `platform`
   * now, and the proposal to render when it may. One poster at a time per proposal and platform
   * (a stalled job run again, two relays, two replicas), and none once a card for the platform
   * exists. The claim lapses after `ttlSeconds`, so a crashed poster does not block the card for
   * ever (a retry or the sweep posts it again).
   */
  claimPost(proposalId: string, platform: PlatformId, ttlSeconds: number, step?: number): Promise<PostClaim>;
  /**
   * The card is posted: its reference saved, `events` (card_posted) audited and the claim ended,
   * in one step. Resolves to the proposal's version now (null when it is gone), which tells
   * whether it moved on while the card was on its way.
   */
  finishPost(claim: ClaimedPost, ref: CardRef, events: AuditEventInput[]): Promise<number | null>;
  /** The post failed: the claim is given up at once, if it is still this poster's. */
  releasePost(claim: ClaimedPost): Promise<void>;
}

/** What CardRefStore.claimPost found: the claim, or why the card is not this poster's to post. */
export type PostClaim =
  | ClaimedPost
  /** A card for the platform exists. */
  | { kind: 'posted' }
  /** Another poster holds the claim; if it fails, its retry posts. */
  | { kind: 'busy' }
  /** The proposal is no longer pending: no new card. */
  | { kind: 'settled' }
  | { kind: 'missing' };

export interface ClaimedPost {
  kind: 'claimed';
  /** The proposal as it was when claimed. */
  proposal: Proposal;
  platform: PlatformId;
  /**
   * The escalation step whose card this is (the step's route; escalation.ts), 0 for the rule's
   * own route: one card per platform and step, so a second route on the same platform gets its own.
   */
  step: number;
  /** The claim's own id: only its holder ends it. */
  token: string;
}

/** One job per platform, so a slow or failing platform never repeats work on another. */
export type NotifyJob =
  | { kind: 'post'; proposal_id: string; platform: PlatformId; step?: number }
  | { kind: 'update'; proposal_id: string; platform: PlatformId; version: number }
  | { kind: 'reply'; proposal_id: string; platform: PlatformId; reply: ThreadReply; key: string };

/** Background work, run at least once by a queue with retries; each job is idempotent. */
export interface JobScheduler {
  notify(jobs: NotifyJob[]): Promise<void>;
}

/** A new pending proposal waiting for its cards, as the card outbox holds it. */
export interface OutboxEntry {
  /** The outbox's own id for the entry (what `done` takes). */
  id: string;
  proposal_id: string;
}

/**
 * New cards to post. ProposalStore.create puts each new pending proposal here in the same step
 * as the proposal itself (nothing to lose between the commit and a queue), and the card relay
 * (src/app/card-relay.ts) takes them. An entry taken stays claimed by its consumer until
 * `done`; one whose consumer died is handed to another by `reclaim`.
 */
export interface CardOutbox {
  /** Up to `max` entries nobody has taken, waiting up to `blockMs` for the first; [] when none came. */
  take(consumer: string, max: number, blockMs: number): Promise<OutboxEntry[]>;
  /** Entries another consumer took more than `minIdleMs` ago and never finished: now `consumer`'s. */
  reclaim(consumer: string, minIdleMs: number, max: number): Promise<OutboxEntry[]>;
  /** The entries' cards are posted, or handed to the notify queue: forgotten. */
  done(entries: readonly OutboxEntry[]): Promise<void>;
}

/** What changed about a proposal's card, for pages that show it live. */
export interface LiveNotice {
  /** The proposal; for `notice` (an over-the-limit notice posted or updated), the route. */
  id: string;
  change: 'posted' | 'updated' | 'reply' | 'notice';
}

/** Tells every replica's open pages (the console's) which card to fetch again. */
export interface LiveUpdates {
  publish(notice: LiveNotice): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(listener: (notice: LiveNotice) => void): () => void;
  close(): Promise<void>;
}
