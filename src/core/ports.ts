// The ports: what the use cases need from the outside world, named for the domain.
// Adapters implement them; `src/main.ts` wires one implementation of each.
import type { AuditEvent, AuditEventInput } from './audit.ts';
import type { Absence, DelegationHeld } from './away.ts';
import type { PlatformId } from './platform.ts';
import type { CreateLimits, LimitName } from './policy/fatigue.ts';
import type { Proposal, Status } from './proposal.ts';

export type { Clock } from './clock.ts';

/**
 * Dedupes a submission that has no idempotency key of its own: the same signed request
 * sent again (a retry, or a replay) returns the first proposal instead of a second one.
 */
export interface ImplicitKey {
  key: string;
  ttlSeconds: number;
}

export type CreateResult =
  | { created: true }
  | { created: false; existing: Proposal }
  /** The agent's kill switch is pulled (revoked at `revoked_at`): nothing was stored. */
  | { created: false; refused: 'agent_revoked'; revoked_at: number }
  /** Over one of the agent's limits (CreateOptions.limits): nothing was stored; room again in `retry_after_ms`. */
  | { created: false; refused: 'rate_limited'; limit: LimitName; max: number; retry_after_ms: number }
  /** A proposal joined the aggregate group since it was read (CreateOptions.aggregate): nothing was stored; read again. */
  | { created: false; refused: 'stale_aggregate' };

/** What ProposalStore.create checks and records besides the proposal (approval fatigue, policy/fatigue.ts). */
export interface CreateOptions {
  /** Checked only for a proposal stored `pending`. */
  limits?: CreateLimits;
  /**
   * The proposal joins this group's window when stored live (pending, approved, executing);
   * refused as stale when the group's version is no longer `version` (what readAggregate gave).
   */
  aggregate?: { group: string; version: string; amount: number; window_ms: number };
}

/** A group's proposals in the window, as ProposalStore.readAggregate finds them. */
export interface AggregateRead {
  /** Changes whenever a proposal joins the group: create refuses a decision made on an older one. */
  version: string;
  /**
   * Proposals of the group in the window, newest first: those still live (pending, approved,
   * executing, succeeded, or failed with an unknown outcome), and any a commit without `counted`
   * (a replica from before it) left there after they stopped counting (a stricter sum until the window passes).
   */
  entries: { id: string; amount: number }[];
}

/**
 * `evenWhenFull`: the kill switch's own writes (the revocation, its token revocations, the
 * cancellations of the agent's work and their audit events) go through even when the store is
 * full and refuses every other write, because the agent to stop may be the one filling it.
 * Nothing else asks for it: an ordinary write to a full store fails (StoreFullError).
 */
export interface WriteOptions {
  evenWhenFull?: boolean;
}

/**
 * A revision's place in the aggregate groups (policy/fatigue.ts), moved in its commit: `from` is
 * left (the amount it was counted with), `to` joined at `score` (its created_at); each group's
 * version moves, so a create decided on the old amounts is refused as stale. `to.version`: the
 * version the revision was decided on (the commit is a conflict when it moved), '' unchecked.
 */
export interface AggregateMove {
  from: { group: string; member: string } | null;
  to: { group: string; member: string; score: number; version: string } | null;
  window_ms: number;
}

/**
 * Where a proposal counts in the aggregate groups: `member` (`<id>|<amount>`, as the create or its
 * last revision put it) in `group`.
 */
export interface AggregatePlace {
  group: string;
  member: string;
}

/**
 * `delegation`: a delegate's vote, committed only while that absence still holds (AwayStore's, read in the same step).
 * `counted`: the proposal's place in its aggregate group, taken out in the same step when the new
 * status no longer counts (denied, expired, cancelled, failed unless its outcome is unknown), so
 * readAggregate reads no statuses; the group's version does not move (a decision made on a sum
 * that still held it is stricter, not looser). A revision's `aggregate` move, when given, does this instead.
 */
export interface CommitOptions extends WriteOptions {
  delegation?: DelegationHeld;
  aggregate?: AggregateMove;
  counted?: AggregatePlace;
}

export interface ProposalStore {
  /**
   * Stores a new proposal (version 1) with its first audit events, atomically. When the
   * agent already used the proposal's idempotency key, stores nothing and returns the first.
   * Refuses, storing nothing, while the agent is revoked (TokenLedger.markAgentRevoked until
   * markAgentRestored) or when the proposal was made at or before its last revocation: read in
   * the same step as the write, so no proposal slips in beside a revocation. `proposedAt`: when
   * the agent made it (its signed time, when earlier than `created_at`; default `created_at`).
   */
  create(proposal: Proposal, events: AuditEventInput[], implicitKey?: ImplicitKey, proposedAt?: number, options?: CreateOptions): Promise<CreateResult>;
  /** The aggregate group's proposals created after `now - windowMs` (AggregateRead), and its version: one read. */
  readAggregate(group: string, now: number, windowMs: number): Promise<AggregateRead>;
  /**
   * Forgets an implicit key (ImplicitKey) while it still names `proposalId`: the next request
   * with that key makes a new proposal. A key that names another proposal stays.
   */
  forgetImplicitKey(agent: string, key: string, proposalId: string): Promise<void>;
  /** Which of `agents` are revoked now (not restored since), with when: one read for all. */
  revokedAgents(agents: readonly string[]): Promise<Map<string, number>>;
  /**
   * Drops from the agent's pending set (for `rule`, or the agent's own with null) the proposals no
   * longer pending that a replica from before the limits left there; at most once every few
   * seconds per set (0 when checked just before). How many were dropped. Absent where nothing can drift.
   */
  prunePending?(agent: string, rule: string | null, now: number): Promise<number>;
  get(id: string): Promise<Proposal | null>;
  /**
   * Replaces the proposal with `next` (whose version is expectedVersion + 1) and appends
   * `events`, atomically, only if the stored version is still `expectedVersion` (and, for a
   * delegate's vote, the absence it was cast under still names that delegate: else 'conflict').
   */
  commit(next: Proposal, expectedVersion: number, events: AuditEventInput[], options?: CommitOptions): Promise<'ok' | 'conflict'>;
  /** Pending proposals, soonest expiry first. */
  listPending(limit: number): Promise<Proposal[]>;
  /** Ids of pending proposals whose expiry is at or before `at`. */
  pendingDueBy(at: number, limit: number): Promise<string[]>;
  /**
   * Ids of pending proposals with an escalation step or reminder due at or before `at`, soonest
   * first. create and commit keep this set in the same step as the proposal, scored by
   * escalation.ts nextNudgeAt (and drop a proposal that leaves pending or has nothing left due).
   */
  nudgesDueBy(at: number, limit: number): Promise<string[]>;
  /**
   * Puts the proposal at `at` in that set (out of it when null), only while its stored version is
   * still `version` (a no-op otherwise); a proposal that is gone leaves the set.
   */
  rescheduleNudge(id: string, version: number, at: number | null): Promise<void>;


  /** Counts by status, for metrics. */
  countByStatus(): Promise<Record<Status, number>>;
}

export interface AuditQuery {
  /** Every word must occur whole in the event (type, actor, proposal id, agent, data), case-insensitive (core/audit-words.ts). */
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

export type StoredAuditEvent = AuditEvent & {
  /** The store's id for the entry (Redis stream id). */
  id: string;
};

export interface AuditScanFrom {
  seq?: number;
  time?: number;
}

export interface AuditLog {
  /** Appends events that record no state change (auth failures, refusals). */
  append(events: AuditEventInput[], options?: WriteOptions): Promise<void>;
  /** Newest first. */
  search(query: AuditQuery): Promise<{ events: StoredAuditEvent[]; next: string | null }>;
  /**
   * Every entry, oldest first, for verification, export and replay. `from.seq`: only entries
   * whose seq is at least this (found without reading the ones before); `from.time` (ms): from
   * entries the store received a minute before this on (its own clock; a little early is fine).
   */
  scan(batchSize?: number, from?: AuditScanFrom): AsyncIterable<StoredAuditEvent>;
  /**
   * The last entry the writers recorded, kept apart from the stream so a cut tail shows; null
   * before the first. `hash` is the last one a writer of chain step 1 or 2 stored (null if none).
   */
  head(): Promise<{ seq: number; hash: string | null } | null>;
}

/** Tells every replica that a proposal changed, so long-polls wake up wherever they wait. */
export interface ChangeFeed {
  publish(proposalId: string, status: Status): Promise<void>;
  /** Resolves with the new status, or null when `timeoutMs` passes or `signal` aborts. */
  waitForChange(proposalId: string, timeoutMs: number, signal?: AbortSignal): Promise<Status | null>;
}

/**
 * Where a platform's channels are when a chat command binds them at run time (Teams'
 * `@countersign connect <route>`): every replica posts to the bound channel. A binding is the
 * platform's own record (at least the channel's `conversation` id), stored and returned as
 * written; a channel once bound stays findable by its conversation id, so its old cards
 * still update after its route is bound elsewhere.
 */
export interface ChannelBinding {
  conversation: string;
  [detail: string]: unknown;
}

export interface ChannelBindingStore {
  /** `key` is the route's address on `platform` in the policy (the route's `teams:` value). */
  bind(platform: PlatformId, key: string, binding: ChannelBinding): Promise<void>;
  forKey(platform: PlatformId, key: string): Promise<ChannelBinding | null>;
  forConversation(platform: PlatformId, conversation: string): Promise<ChannelBinding | null>;
}

/** What setting an absence came to: refused (nothing written) when the delegate is away now themselves. */
export type AwaySetResult = { kind: 'set' } | { kind: 'delegate_away'; until: number };

/**
 * Who is away and who decides for them (src/core/away.ts), shared by every replica. An entry
 * whose `until` has passed reads as absent. Each change and its audit events are one step.
 */
export interface AwayStore {
  /**
   * Sets (or replaces) `person`'s absence and appends `events` with it. Refused, nothing written,
   * when the delegate has an absence in force at `now`: delegation is one hop, never a chain.
   */
  set(person: string, absence: Absence, now: number, events: AuditEventInput[]): Promise<AwaySetResult>;
  /**
   * Ends `absence`, as `get` returned it, appending `events` with it; false (nothing written)
   * when `person`'s stored absence is no longer that one (replaced or ended meanwhile).
   */
  clear(person: string, absence: Absence, events: AuditEventInput[]): Promise<boolean>;
  get(person: string, now: number): Promise<Absence | null>;
  /** Every absence in force at `now`, by the absent person's id. */
  list(now: number): Promise<Map<string, Absence>>;
}

/** A person signed in to a web page of countersign (the console). */
export interface Session {
  person: string;
  /** Synchronizer token: every state-changing request must carry it. */
  csrf: string;
  created_at: number;
}

/**
 * Sign-in sessions, one-time sign-in tokens and failed sign-ins, shared by every replica.
 * Only digests of session ids and tokens are stored: reading the store gives no way in.
 */
export interface SessionStore {
  create(person: string, now: number): Promise<{ id: string; session: Session }>;
  get(id: string): Promise<Session | null>;
  destroy(id: string): Promise<void>;
  /** A random single-use sign-in token for `person`, valid for ONE_TIME_TTL_SECONDS. */
  issueOneTime(person: string): Promise<string>;
  /** The person the token was issued for; the token is gone afterwards, whatever the answer. */
  consumeOneTime(token: string): Promise<string | null>;
  /** Counts a failed sign-in; true while the person is still under the limit. */
  recordFailure(person: string): Promise<boolean>;
  isLockedOut(person: string): Promise<boolean>;
  clearFailures(person: string): Promise<void>;
}

export const SESSION_TTL_SECONDS = 12 * 60 * 60;
export const ONE_TIME_TTL_SECONDS = 15 * 60;
/** Failed sign-ins per person before further tries are refused for the window. */
export const MAX_FAILED_SIGN_INS = 10;
export const FAILED_SIGN_IN_WINDOW_SECONDS = 15 * 60;

/**
 * Caps how many refusals one source adds to the audit log per window (all are still refused):
 * auth failures per address, a revoked agent's proposals per agent (`agent:<id>`).
 */
export interface AuthFailureLimiter {
  allow(source: string): Promise<boolean>;
}

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface Metrics {
  proposalSubmitted(effect: string): void;
  /** A proposal refused for one of its agent's limits (`limit`: a LimitName). */
  proposalLimited?(agent: string, limit: string): void;
  /** Seconds from submission to the human decision. */
  decisionRecorded(status: Status, seconds: number): void;
}

export type { AgentRevocation, CallbackSender, ExecutionQueue, Executor, ExecutorConnection, Executors, PublicJwks, TokenLedger, TokenRecord, TokenSigner, TokenState } from './execution-ports.ts';
export type { CardOutbox, CardRefStore, ChatChannel, ClaimedPost, JobScheduler, LiveNotice, LiveUpdates, NotifyJob, OutboxEntry, PostClaim } from './card-ports.ts';
export type { AuditSealMetrics, AuditSeals, CheckpointWitness, SealableEntry, SealedState, SealErrorReason, SealWriteResult } from './audit-seal-ports.ts';
