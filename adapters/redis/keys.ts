import { createHash } from 'node:crypto';

// Every key carries the same hash tag `{<prefix>}`, so on Redis Cluster all of them live
// in one slot and a Lua script may touch several at once (proposal + pending + audit).
// The naming lives here only; the Lua scripts receive full key names in KEYS.

export const DEFAULT_PREFIX = 'countersign';

/** Idempotency keys are kept this long; a retry after that creates a new proposal. */
export const IDEMPOTENCY_TTL_SECONDS = 30 * 24 * 60 * 60;

// Braces would break the hash tag; glob characters would make the SCAN MATCH pattern used by
// cleanup tools match other installations' keys; whitespace is just asking for trouble.
const PREFIX_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;

export interface RedisKeys {
  readonly prefix: string;
  /** `{prefix}`: also the right BullMQ `prefix`, so queue keys share the slot. */
  readonly tag: string;
  /** SCAN MATCH pattern for every key of this installation. */
  readonly pattern: string;
  readonly pending: string;
  readonly statusCounts: string;
  readonly audit: string;
  readonly auditHead: string;
  proposal(id: string): string;
  /** The raw idempotency key is hashed: it is agent-supplied, up to 200 characters. */
  idempotency(agent: string, key: string): string;
  cards(proposalId: string): string;
}

export function assertValidPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new Error(`invalid Redis key prefix "${prefix}": use 1-100 of A-Z a-z 0-9 . _ : -`);
  }
}

export function redisKeys(prefix: string = DEFAULT_PREFIX): RedisKeys {
  assertValidPrefix(prefix);
  const tag = `{${prefix}}`;
  return {
    prefix,
    tag,
    pattern: `${tag}:*`,
    pending: `${tag}:pending`,
    statusCounts: `${tag}:status_counts`,
    audit: `${tag}:audit`,
    auditHead: `${tag}:audit:head`,
    proposal: (id) => `${tag}:proposal:${id}`,
    idempotency: (agent, key) => `${tag}:idem:${agent}:${createHash('sha256').update(key).digest('hex')}`,
    cards: (proposalId) => `${tag}:cards:${proposalId}`,
  };
}
