import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

// The package is CommonJS (`module.exports = fn`) but its types declare an ES default
// export; under NodeNext the default import is the function itself at run time.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

// The audit log is one hash chain. Each entry's `digest` covers its content (RFC 8785
// canonical JSON); its `hash` chains that digest to the previous entry:
//
//   digest = hex SHA-256(canonical_json({type, at, proposal_id, agent, actor, data}))
//   hash   = hex SHA-256(bytes(prev_hash) || bytes(digest) || seq in decimal ASCII)
//
// The chain step hashes 64 bytes and a short number (two SHA-256 blocks, the fewest that
// hold two hashes), so Redis can compute it inside the same
// Lua script that records the state change (atomic, no global lock) without paying for
// the size of a 64 KiB proposal; the writer computes `digest`, and `verifyChain`
// recomputes both, so a wrong digest is caught like any other edit.

export { AUDIT_EVENT_TYPES, asKnown, auditEvent, type AuditEventData, type AuditEventInput, type AuditEventOf, type AuditEventType, type AuditSubject, type KnownAuditEvent } from './audit-events.ts';
import type { AuditEventInput } from './audit-events.ts';

export const GENESIS_HASH = '0'.repeat(64);

export type SealedAuditEventInput = AuditEventInput & { digest: string };

export type AuditEvent = SealedAuditEventInput & {
  seq: number;
  prev_hash: string;
  hash: string;
  /** The chain step that made `hash`: 2 is chainHash; 1 is legacyChainHash (entries of older logs). */
  chain: 1 | 2;
};

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value cannot be canonicalized');
  return text;
}

export function eventDigest(event: AuditEventInput): string {
  const { type, at, proposal_id, agent, actor, data } = event;
  return sha256Hex(canonicalJson({ type, at, proposal_id, agent, actor, data }));
}

export function seal(event: AuditEventInput): SealedAuditEventInput {
  return { ...event, digest: eventDigest(event) };
}

export function chainHash(prevHash: string, seq: number, digest: string): string {
  return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(Buffer.from(digest, 'hex')).update(String(seq)).digest('hex');
}

/**
 * The chain step of entries written before the two-block format (they carry no `chain`
 * field): the same three values as text. They still verify, and a writer still running
 * older code during an upgrade can go on appending them.
 */
export function legacyChainHash(prevHash: string, seq: number, digest: string): string {
  return sha256Hex(`${prevHash}:${seq}:${digest}`);
}

export type ChainVerdict =
  | { ok: true; count: number; head: string }
  | { ok: false; count: number; seq: number; id: string; reason: string };

/**
 * Walks entries in order and names the first one that does not fit the chain.
 * `id` is the store's own id for the entry (the Redis stream id), so an operator can find it.
 */
export class ChainVerifier {
  private prev = GENESIS_HASH;
  private expectedSeq: number | null = null;
  count = 0;

  /** Returns null while the chain holds, else the reason the entry breaks it. */
  check(event: AuditEvent): string | null {
    if (this.expectedSeq !== null && event.seq !== this.expectedSeq) {
      return `seq ${event.seq} where ${this.expectedSeq} was expected (an entry is missing or out of order)`;
    }
    if (event.prev_hash !== this.prev) return 'prev_hash does not match the previous entry';
    if (eventDigest(event) !== event.digest) return 'content does not match its digest (the entry was edited)';
    // Each entry names its step; choosing one cannot help forge an entry (the chain has no
    // key, and making one step's output match the other's needs a SHA-256 second preimage).
    const step = event.chain === 2 ? chainHash : legacyChainHash;
    if (step(event.prev_hash, event.seq, event.digest) !== event.hash) return 'hash does not match';
    this.prev = event.hash;
    this.expectedSeq = event.seq + 1;
    this.count += 1;
    return null;
  }

  get head(): string {
    return this.prev;
  }
}
