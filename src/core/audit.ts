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
// The writer computes `digest`; the script that records the change appends it with a seq and
// nothing else (chain step 3): hashing in Redis cost more than all the rest of a commit and
// blocked Redis for everyone. The chain is computed in Node, from the stream, by whoever reads
// it in order (the sealer, export, verify). Entries of older logs carry the hashes their
// scripts computed (steps 1 and 2) and are checked against them.

export { AUDIT_EVENT_TYPES, asKnown, auditEvent, type AuditEventData, type AuditEventInput, type AuditEventOf, type AuditEventType, type AuditSubject, type KnownAuditEvent } from './audit-events.ts';
import type { AuditEventInput } from './audit-events.ts';

export const GENESIS_HASH = '0'.repeat(64);

export type SealedAuditEventInput = AuditEventInput & { digest: string };

export type AuditEvent = SealedAuditEventInput & {
  seq: number;
  /**
   * Stored by the writer for chain steps 1 and 2. Null for step 3 as stored: the chain there is
   * computed by whoever reads the log in order (export and verify fill them in).
   */
  prev_hash: string | null;
  hash: string | null;
  /**
   * The chain step: 3, chainHash computed in Node (what this release writes); 2, chainHash
   * computed by the writer's script; 1, legacyChainHash (logs begun before step 2).
   */
  chain: 1 | 2 | 3;
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
 *
 * Step 3 entries are chained from the previous entry's hash. A step 1 or 2 entry must carry the
 * hashes it was written with: its prev_hash is the previous entry's hash, or, when step 3
 * entries came in between, the last hash a step 1/2 writer stored (the head record's `hash`,
 * which step 3 writers leave alone): that is what a replica of an older release, still running
 * during an upgrade, chains from. The chain goes on from the hash it stored. Either way seq
 * must follow on, so no entry can go missing in between.
 */
export class ChainVerifier {
  private prev: string;
  private legacy: string;
  private expectedSeq: number | null;
  private lastStep: 1 | 2 | 3 | null = null;
  count = 0;

  /**
   * `from`: where a log that does not start at seq 1 starts (a retention cut, an export's first
   * checkpoint): the seq before its first entry and the chain's hash there, both signed.
   */
  constructor(from?: { seq: number; hash: string }) {
    this.prev = from?.hash ?? GENESIS_HASH;
    this.legacy = this.prev;
    this.expectedSeq = from === undefined ? null : from.seq + 1;
  }

  /** Returns null while the chain holds, else the reason the entry breaks it. */
  check(event: AuditEvent): string | null {
    if (this.expectedSeq !== null && event.seq !== this.expectedSeq) {
      return `seq ${event.seq} where ${this.expectedSeq} was expected (an entry is missing or out of order)`;
    }
    if (eventDigest(event) !== event.digest) return 'content does not match its digest (the entry was edited)';
    if (event.chain === 3) {
      // A reader that computed them (an export) hands them in: they must be the chain's.
      if (event.prev_hash !== null && event.prev_hash !== this.prev) return 'prev_hash does not match the previous entry';
      const hash = chainHash(this.prev, event.seq, event.digest);
      if (event.hash !== null && event.hash !== hash) return 'hash does not match';
      this.prev = hash;
    } else {
      if (event.prev_hash === null || (event.prev_hash !== this.prev && event.prev_hash !== this.legacy)) return 'prev_hash does not match the previous entry';
      // Each entry names its step; choosing one cannot help forge an entry (the chain has no
      // key, and making one step's output match the other's needs a SHA-256 second preimage).
      const step = event.chain === 2 ? chainHash : legacyChainHash;
      if (event.hash === null || step(event.prev_hash, event.seq, event.digest) !== event.hash) return 'hash does not match';
      this.prev = event.hash;
      this.legacy = event.hash;
    }
    this.expectedSeq = event.seq + 1;
    this.lastStep = event.chain;
    this.count += 1;
    return null;
  }

  /** The chain's hash after the last entry checked. */
  get head(): string {
    return this.prev;
  }

  /**
   * What the head record's `hash` must hold while the last entry is of step 1 or 2 (its writer
   * set it); null when the last entry is of step 3, whose writers leave that field alone.
   */
  get legacyHead(): string | null {
    return this.lastStep === 1 || this.lastStep === 2 ? this.legacy : null;
  }
}
