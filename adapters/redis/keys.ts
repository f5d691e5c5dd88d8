import { createHash } from 'node:crypto';

// Every key carries the same hash tag `{<prefix>}`, so on Redis Cluster all of them live
// in one slot and a Lua script may touch several at once (proposal + pending + audit).
// The naming lives here only; the Lua scripts receive every key they touch, full names, in
// KEYS (Redis Cluster routes and checks by them), the audit index lists included.
//
// Names are part of the data format: installations upgrade in place and replicas of two
// versions share one Redis, so a name, once released, never changes.
//
// What a caller gives is checked where it could reach another key: a part in the middle of
// a name (a platform id, a proposal id before `:posting:`) must be one plain segment, and a
// platform id must not be a word another store uses as its first segment. A part at the end
// of a namespace that has only one shape (`token:<jti>`) can only name a key of that shape;
// a person's id is checked all the same (it has the policy's id shape), a remote address is
// hashed when it does not look like one, and secrets are hashed always.

export const DEFAULT_PREFIX = 'countersign';

/** Idempotency keys are kept this long; a retry after that creates a new proposal. */
export const IDEMPOTENCY_TTL_SECONDS = 30 * 24 * 60 * 60;

// Braces would break the hash tag; glob characters would make the SCAN MATCH pattern used by
// cleanup tools match other installations' keys; whitespace is just asking for trouble.
const PREFIX_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;

/** A platform id as it may appear in a key name (`teams`, `slack`, `google-chat`). */
const PLATFORM_ID_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

// First segments of other stores' keys: a platform named like one of them would put its
// `{prefix}:<platform>:…` keys into that store's space (`agent-tokens:channels` is the token
// set of an agent called "channels"). Only ever add to this list.
const RESERVED_FIRST_SEGMENTS: ReadonlySet<string> = new Set([
  'pending', 'status_counts', 'audit', 'proposal', 'idem', 'cards', 'token', 'ptoken', 'pickup',
  'agent-tokens', 'executing', 'revoked-agent', 'signing-key', 'changes', 'authfail', 'bull',
  'restored-agent', 'card-outbox', 'limit', 'agg', 'away', 'escalations',
]);

/** Policy ids (people, agents): what the policy schema allows, so no `:` and no glob characters. */
const ID_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A remote address as sockets report it: IPv4, IPv6 (with a zone), or `unknown`. */
const ADDRESS_SEGMENT = /^[A-Za-z0-9.:%_-]{1,64}$/;

export interface AuditIndexKeys {
  agent(agent: string): string;
  actor(actor: string): string;
  proposal(id: string): string;
  word(token: string): string;
  overflow: string;
}

export interface RedisKeys {
  readonly prefix: string;
  /** `{prefix}`: every key and channel starts with it. */
  readonly tag: string;
  /** SCAN MATCH pattern for every key of this installation. */
  readonly pattern: string;
  readonly pending: string;
  /** Stream: a new pending proposal's id, written by the create script, for the card relay (card-outbox.ts). */
  readonly cardOutbox: string;
  readonly statusCounts: string;
  readonly audit: string;
  readonly auditHead: string;
  /** The audit sealer's lease (string, PX): the leader's owner id. */
  readonly auditSealer: string;
  /** Hash: how far the sealer has chained the log (`seq`, `hash`, `id`, `at`, `legacy_hash`). */
  readonly auditSealed: string;
  /** Stream of signed checkpoints; entry ids are `<seq>-<n>` (n from 1), so they read in seq order from any seq. */
  readonly auditCheckpoints: string;
  /** Hash: the signed `cut` checkpoint of the last retention run (its fields as in a checkpoint). */
  readonly auditCut: string;
  proposal(id: string): string;
  /** The raw idempotency key is hashed: it is agent-supplied, up to 200 characters. */
  idempotency(agent: string, key: string): string;
  cards(proposalId: string): string;
  /** Hash: a task's credential (credential-ledger.ts); the live set by expiry; an agent's live ones. */
  credential(proposalId: string): string;
  readonly credentialsLive: string;
  agentCredentials(agent: string): string;
  /** String (EX): an MCP upstream's result for the agent to pick up (tool-results.ts). */
  toolResult(proposalId: string): string;
  /** Zset: pending proposals with an escalation step or reminder due (score: when; escalation.ts nextNudgeAt). */
  readonly escalations: string;
  /**
   * Held while one replica posts a proposal's card on `platform`, so a retry does not post twice;
   * `step`: an escalation step's card (its own claim), 0 (the name of before steps) for the rule's route.
   */
  postingClaim(proposalId: string, platform: string, step?: number): string;
  readonly auditIndex: AuditIndexKeys;

  /** Token ledger (see token-ledger.ts for what each holds). */
  token(jti: string): string;
  proposalToken(proposalId: string): string;
  pickup(proposalId: string): string;
  agentTokens(agent: string): string;
  readonly executing: string;
  revokedAgent(agent: string): string;
  /** When the agent's last revocation was lifted (countersign restore). */
  restoredAgent(agent: string): string;
  /** The development token signing key, when TOKEN_SIGNING_KEY is unset. */
  readonly devSigningKey: string;

  /**
   * Approval fatigue (policy/fatigue.ts). Zsets of an agent's pending proposals (score: the
   * deadline), overall and per rule, and of its proposals needing people in the last minute
   * (score: created_at); `rule` null is the agent's own. The create script adds, the commit
   * script removes what leaves pending.
   */
  limitPending(agent: string, rule: string | null): string;
  limitRate(agent: string, rule: string | null): string;
  /** Set for a while (proposal-store.ts PRUNE_EVERY_MS) when a pending set was last checked for members no longer pending (ProposalStore.prunePending). */
  limitPrune(agent: string, rule: string | null): string;
  /**
   * The over-the-limit notice of an agent and route (hash: its window, running count, what was
   * last shown, the posted messages), and the zsets of notices by window end (the console's
   * banner) and of notices whose count moved, by when their next update may go (member `<agent>:<route>`).
   */
  limitNotice(agent: string, route: string): string;
  readonly limitNotices: string;
  readonly limitNoticesDue: string;
  /** Zset of an aggregate group's live proposals (`<id>|<amount>`, score: created_at) and its version counter; the group is hashed. */
  aggregate(group: string): string;
  aggregateVersion(group: string): string;

  /** Pub/sub channel of proposal status changes (the long-poll change feed). */
  readonly changes: string;
  /** Pub/sub channel of card changes for live pages (the console's). */
  readonly liveUpdates: string;
  /** Audited auth failures of one address in one minute (`minute` = ms / 60 000, floored). */
  authFailures(address: string, minute: number): string;
  /** BullMQ's `prefix` option: its keys share the hash tag, so queue scripts stay in one slot. */
  readonly bull: string;

  /** Hash: person -> JSON absence {delegate, until, set_at} (away-store.ts). */
  readonly away: string;

  /** Hash: route key -> JSON binding, on one platform. */
  channelBindings(platform: string): string;
  /** Hash: channel conversation id -> JSON binding, every channel ever bound on one platform. */
  boundChannels(platform: string): string;

  /** Sign-in sessions, one-time sign-in tokens: named by the secret's SHA-256, never the secret. */
  session(id: string): string;
  oneTimeSignIn(token: string): string;
  signInFailures(person: string): string;
}

export function assertValidPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new Error(`invalid Redis key prefix "${prefix}": use 1-100 of A-Z a-z 0-9 . _ : -`);
  }
}

/** Throws unless `platform` can name keys of its own (and no other store's). */
export function assertValidPlatformId(platform: string): void {
  if (!PLATFORM_ID_PATTERN.test(platform) || RESERVED_FIRST_SEGMENTS.has(platform)) {
    throw new Error(`invalid platform id "${platform}" for a Redis key: use 1-32 of a-z 0-9 -, starting with a letter, not a reserved word`);
  }
}

function assertIdSegment(what: string, value: string): void {
  if (!ID_SEGMENT.test(value)) throw new Error(`invalid ${what} "${value.slice(0, 100)}" for a Redis key`);
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The audit search index lists beside the stream `auditKey` (audit-index.ts). */
export function auditIndexKeys(auditKey: string): AuditIndexKeys {
  const base = `${auditKey}:ix:`;
  return {
    agent: (a) => `${base}agent:${a}`,
    actor: (a) => `${base}actor:${a}`,
    proposal: (id) => `${base}proposal:${id}`,
    word: (t) => `${base}w:${t}`,
    overflow: `${base}w*`,
  };
}

export function redisKeys(prefix: string = DEFAULT_PREFIX): RedisKeys {
  assertValidPrefix(prefix);
  const tag = `{${prefix}}`;
  const cards = (proposalId: string) => `${tag}:cards:${proposalId}`;
  const audit = `${tag}:audit`;
  return {
    prefix,
    tag,
    pattern: `${tag}:*`,
    pending: `${tag}:pending`,
    cardOutbox: `${tag}:card-outbox`,
    escalations: `${tag}:escalations`,

    statusCounts: `${tag}:status_counts`,
    audit,
    auditHead: `${tag}:audit:head`,
    auditSealer: `${tag}:audit:sealer`,
    auditSealed: `${tag}:audit:sealed`,
    auditCheckpoints: `${tag}:audit:checkpoints`,
    auditCut: `${tag}:audit:cut`,
    proposal: (id) => `${tag}:proposal:${id}`,
    idempotency: (agent, key) => `${tag}:idem:${agent}:${sha256(key)}`,
    cards,
    toolResult: (proposalId) => `${tag}:tool-result:${proposalId}`,
    credential: (proposalId) => `${tag}:credential:${proposalId}`,
    credentialsLive: `${tag}:credentials:live`,
    agentCredentials: (agent) => `${tag}:credentials:agent:${agent}`,
    postingClaim(proposalId, platform, step = 0) {
      // `cards:<id>` and `cards:<id>:posting:<platform>` share a namespace: an id with a `:`
      // could name another proposal's claim.
      assertIdSegment('proposal id', proposalId);
      assertValidPlatformId(platform);
      if (!Number.isSafeInteger(step) || step < 0) throw new Error(`invalid escalation step "${step}" for a Redis key`);
      // A platform id has no `:`, so `<platform>:<step>` names no other platform's claim.
      return `${cards(proposalId)}:posting:${platform}${step === 0 ? '' : `:${step}`}`;
    },
    auditIndex: auditIndexKeys(audit),

    token: (jti) => `${tag}:token:${jti}`,
    proposalToken: (proposalId) => `${tag}:ptoken:${proposalId}`,
    pickup: (proposalId) => `${tag}:pickup:${proposalId}`,
    agentTokens: (agent) => `${tag}:agent-tokens:${agent}`,
    executing: `${tag}:executing`,
    revokedAgent: (agent) => `${tag}:revoked-agent:${agent}`,
    restoredAgent: (agent) => `${tag}:restored-agent:${agent}`,
    devSigningKey: `${tag}:signing-key`,

    // Agent ids and rule names have the policy's id shape (no `:`), so `<agent>:<rule>` is unambiguous.
    limitPending(agent, rule) {
      assertIdSegment('agent id', agent);
      if (rule !== null) assertIdSegment('rule name', rule);
      return `${tag}:limit:pending:${agent}${rule === null ? '' : `:${rule}`}`;
    },
    limitRate(agent, rule) {
      assertIdSegment('agent id', agent);
      if (rule !== null) assertIdSegment('rule name', rule);
      return `${tag}:limit:rate:${agent}${rule === null ? '' : `:${rule}`}`;
    },
    limitPrune(agent, rule) {
      assertIdSegment('agent id', agent);
      if (rule !== null) assertIdSegment('rule name', rule);
      return `${tag}:limit:prune:${agent}${rule === null ? '' : `:${rule}`}`;
    },
    limitNotice(agent, route) {
      assertIdSegment('agent id', agent);
      assertIdSegment('route', route);
      return `${tag}:limit:notice:${agent}:${route}`;
    },
    limitNotices: `${tag}:limit:notices`,
    limitNoticesDue: `${tag}:limit:notices:due`,
    aggregate: (group) => `${tag}:agg:${sha256(group)}`,
    aggregateVersion: (group) => `${tag}:agg:${sha256(group)}:v`,

    changes: `${tag}:changes`,
    // Named for the console, the first page to listen; kept so that replicas of two versions still hear each other.
    liveUpdates: `${tag}:console:changes`,
    authFailures(address, minute) {
      // Addresses come from the socket, but a name this store cannot vouch for is hashed: the
      // limit still holds per address, and nothing odd (or long) reaches a key name.
      const part = ADDRESS_SEGMENT.test(address) ? address : `#${sha256(address)}`;
      return `${tag}:authfail:${part}:${Math.floor(minute)}`;
    },
    bull: `${tag}:bull`,

    away: `${tag}:away`,

    channelBindings(platform) {
      assertValidPlatformId(platform);
      return `${tag}:${platform}:bindings`;
    },
    boundChannels(platform) {
      assertValidPlatformId(platform);
      return `${tag}:${platform}:channels`;
    },

    // The console was the first (and is the only) page with sign-in: the names keep its word.
    session: (id) => `${tag}:console:session:${sha256(id)}`,
    oneTimeSignIn: (token) => `${tag}:console:once:${sha256(token)}`,
    signInFailures(person) {
      assertIdSegment('person id', person);
      return `${tag}:console:fail:${person}`;
    },
  };
}
