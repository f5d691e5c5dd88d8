// The ports: what the use cases need from the outside world, named for the domain.
// Adapters implement them; `src/main.ts` wires one implementation of each.
import type { AuditEvent, AuditEventInput } from './audit.ts';
import type { CardModel, CardRef, ThreadReply } from './card.ts';
import type { Platform, Proposal, Status } from './proposal.ts';

export type { Clock } from './clock.ts';

/**
 * Dedupes a submission that has no idempotency key of its own: the same signed request
 * sent again (a retry, or a replay) returns the first proposal instead of a second one.
 */
export interface ImplicitKey {
  key: string;
  ttlSeconds: number;
}

export type CreateResult = { created: true } | { created: false; existing: Proposal };

export interface ProposalStore {
  /**
   * Stores a new proposal (version 1) with its first audit events, atomically. When the
   * agent already used the proposal's idempotency key, stores nothing and returns the first.
   */
  create(proposal: Proposal, events: AuditEventInput[], implicitKey?: ImplicitKey): Promise<CreateResult>;
  get(id: string): Promise<Proposal | null>;
  /**
   * Replaces the proposal with `next` (whose version is expectedVersion + 1) and appends
   * `events`, atomically, only if the stored version is still `expectedVersion`.
   */
  commit(next: Proposal, expectedVersion: number, events: AuditEventInput[]): Promise<'ok' | 'conflict'>;
  /** Pending proposals, soonest expiry first. */
  listPending(limit: number): Promise<Proposal[]>;
  /** Ids of pending proposals whose expiry is at or before `at`. */
  pendingDueBy(at: number, limit: number): Promise<string[]>;
  /** Counts by status, for metrics. */
  countByStatus(): Promise<Record<Status, number>>;
}

export interface AuditQuery {
  /** Every word must occur in the event (type, actor, proposal id, agent, data), case-insensitive. */
  words: string[];
  agent?: string;
  actor?: string;
  /** The proposal's current status. */
  status?: Status;
  proposalId?: string;
  since?: number;
  until?: number;
  limit: number;
  /** Continue after this entry id (from a previous page's `next`). */
  cursor?: string;
}

export interface StoredAuditEvent extends AuditEvent {
  /** The store's id for the entry (Redis stream id). */
  id: string;
}

export interface AuditLog {
  /** Appends events that record no state change (auth failures, refusals). */
  append(events: AuditEventInput[]): Promise<void>;
  /** Newest first. */
  search(query: AuditQuery): Promise<{ events: StoredAuditEvent[]; next: string | null }>;
  /** Every entry, oldest first, for verification and replay. */
  scan(batchSize?: number): AsyncIterable<StoredAuditEvent>;
  /** The last entry the writers recorded, kept apart from the stream so a cut tail shows. */
  head(): Promise<{ seq: number; hash: string } | null>;
}

/** A chat platform that can show cards; one implementation per platform. */
export interface ChatChannel {
  readonly platform: Platform;
  /** `target` is the route's address on this platform (a Slack channel id, a Teams route key). */
  postCard(target: string, card: CardModel): Promise<CardRef>;
  updateCard(ref: CardRef, card: CardModel): Promise<void>;
  replyInThread(ref: CardRef, reply: ThreadReply): Promise<void>;
}

/** Where each proposal's cards were posted. */
export interface CardRefStore {
  list(proposalId: string): Promise<CardRef[]>;
  save(proposalId: string, ref: CardRef): Promise<void>;
  /**
   * One poster at a time per proposal and platform (a stalled job run again, two replicas):
   * true for the claimer. The claim lapses after `ttlSeconds`, so a crashed poster does not
   * block the card for ever (the sweep enqueues it again).
   */
  claimPost(proposalId: string, platform: Platform, ttlSeconds: number): Promise<boolean>;
  releasePost(proposalId: string, platform: Platform): Promise<void>;
}

/** One job per platform, so a slow or failing platform never repeats work on another. */
export type NotifyJob =
  | { kind: 'post'; proposal_id: string; platform: Platform }
  | { kind: 'update'; proposal_id: string; platform: Platform; version: number }
  | { kind: 'reply'; proposal_id: string; platform: Platform; reply: ThreadReply; key: string };

/** Background work, run at least once by a queue with retries; each job is idempotent. */
export interface JobScheduler {
  scheduleExpiry(proposalId: string, at: number): Promise<void>;
  notify(jobs: NotifyJob[]): Promise<void>;
}

/** Tells every replica that a proposal changed, so long-polls wake up wherever they wait. */
export interface ChangeFeed {
  publish(proposalId: string, status: Status): Promise<void>;
  /** Resolves with the new status, or null when `timeoutMs` passes or `signal` aborts. */
  waitForChange(proposalId: string, timeoutMs: number, signal?: AbortSignal): Promise<Status | null>;
}

/** Caps how many auth failures one address adds to the audit log per window (all are still refused). */
export interface AuthFailureLimiter {
  allow(address: string): Promise<boolean>;
}

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface Metrics {
  proposalSubmitted(effect: string): void;
  /** Seconds from submission to the human decision. */
  decisionRecorded(status: Status, seconds: number): void;
}

export type { CallbackSender, ExecutionQueue, Executor, ExecutorConnection, PublicJwks, TokenLedger, TokenRecord, TokenSigner, TokenState } from './execution-ports.ts';
