import { canonicalJson } from './audit.ts';

// Signed checkpoints of the audit chain (the shape of Certificate Transparency's signed tree
// heads and CloudTrail's digest files). The commit scripts append each event with its digest
// only; a sealer (one leader among the replicas) computes the chain in Node and, every N
// entries or T ms, and at least every heartbeat while idle, signs `{seq, hash, at}` with an
// Ed25519 key that is not in Redis. Someone who can write to Redis can still rewrite entries
// and recompute every hash, but cannot sign: the next checkpoint (and every copy of it kept
// outside Redis: the log line, the witness) no longer matches.

export const CHECKPOINT_VERSION = 1;

/**
 * Why a checkpoint was written: `seal` after new entries (every N entries or T ms), `heartbeat`
 * while nothing happened (so a missing tail shows as a missing heartbeat), `cut` where
 * retention trimmed the log (the chain below it is gone; verification starts from it).
 */
export type CheckpointKind = 'seal' | 'heartbeat' | 'cut';

/** What is signed. `log` names the installation (its key prefix), so a checkpoint cannot be replayed into another log. */
export interface CheckpointBody {
  v: typeof CHECKPOINT_VERSION;
  log: string;
  kind: CheckpointKind;
  /** The last entry the checkpoint covers; 0 before the first entry. */
  seq: number;
  /** The chain's hash after entry `seq` (GENESIS_HASH at seq 0). */
  hash: string;
  /** When it was signed, ISO-8601 (the sealer's clock). */
  at: string;
  /** Which key signed it (its JWK thumbprint / kid, published at /.well-known/audit-keys.json). */
  kid: string;
}

export interface Checkpoint extends CheckpointBody {
  /** base64url Ed25519 signature over checkpointBytes(body). */
  sig: string;
}

/** The exact bytes signed: RFC 8785 canonical JSON of the body, UTF-8. */
export function checkpointBytes(body: CheckpointBody): Uint8Array {
  const { v, log, kind, seq, hash, at, kid } = body;
  return new TextEncoder().encode(canonicalJson({ v, log, kind, seq, hash, at, kid }));
}

/** Signs and checks checkpoints; the private key never leaves the adapter and is never stored in Redis. */
export interface AuditSigner {
  /** The kid new checkpoints are signed with. */
  readonly kid: string;
  sign(body: Omit<CheckpointBody, 'kid'>): Promise<Checkpoint>;
  /** True when `c` is signed by one of the known keys (current or rotated out) and untouched. */
  verify(c: Checkpoint): Promise<boolean>;
  /** Public keys, as a JWK set (for /.well-known/audit-keys.json and offline verification). */
  publicJwks(): { keys: Record<string, unknown>[] };
}
