// Just-in-time credentials (issue 15): a login that exists only for one approved task. An
// issuer per kind (postgres, redis-acl) makes it on the downstream and removes it again; the
// policy's `credentials:` entry says which, with what rights; a rule says when, for how long.

/** One `credentials:` entry of the policy, as its kind's adapter reads it. */
export interface CredentialSpec {
  /** The entry's name (`orders-db`): what rules name as `issuer`. */
  readonly name: string;
  /** Which issuer makes it (`postgres`, `redis-acl`). */
  readonly kind: string;
  /**
   * The kind's own keys, validated by its schema. Secrets stay references: `admin_url` is
   * `{ env: NAME }`, read from the secret source when the issuer connects.
   */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** What one task asks for. */
export interface CredentialRequest {
  proposal_id: string;
  agent: string;
  /** When it must stop working (ms since the epoch). */
  expires_at: number;
}

/** A credential made for a task. */
export interface IssuedCredential {
  /**
   * Names it for revocation, the ledger and the audit (a role or user name): not secret, and
   * made by countersign alone (never from agent text).
   */
  handle: string;
  /**
   * What the agent receives (`username`, `password`, a connection `url`…): handed over once,
   * never logged, audited, or stored in plain text.
   */
  secret: Record<string, string>;
  expires_at: number;
}

/** Makes and removes credentials of one kind. */
export interface CredentialIssuer {
  readonly kind: string;
  /** The handle `issue` will use for this request, known before it runs (the ledger records it first). */
  handleFor(request: CredentialRequest): string;
  /** Creates the login with exactly the spec's rights, valid until `expires_at`. Throws CredentialIssueError. */
  issue(spec: CredentialSpec, request: CredentialRequest): Promise<IssuedCredential>;
  /**
   * Removes the login and ends its open sessions. Idempotent: revoking one that is already gone
   * succeeds. Throws CredentialIssueError when the downstream cannot be reached (the sweep retries).
   */
  revoke(spec: CredentialSpec, handle: string): Promise<void>;
  /** Closes admin connections. */
  close(): Promise<void>;
}

/** The downstream refused or could not be reached; the message names the entry, never a secret. */
export class CredentialIssueError extends Error {
  constructor(
    readonly issuer: string,
    message: string,
  ) {
    super(message);
    this.name = 'CredentialIssueError';
  }
}

/** What the ledger keeps of a credential: never its secret in plain text. */
export interface CredentialRecord {
  proposal_id: string;
  agent: string;
  issuer: string;
  handle: string;
  expires_at: number;
}

/**
 * Every credential countersign made, until it is revoked, so a sweep removes what a crash left
 * behind (after a restart too). The secret waits for the hand-over sealed (encrypted), once.
 */
export interface CredentialLedger {
  /**
   * Recorded BEFORE the issuer is called, with the handle it will use: a crash mid-issue leaves
   * a record the sweep revokes. False when the proposal already has one (a second issuer loses).
   */
  reserve(record: CredentialRecord): Promise<boolean>;
  /** The sealed secret, for the hand-over (kept until taken, revoked or expired). */
  savePickup(proposalId: string, sealed: string): Promise<void>;
  /** The sealed secret: taken (the poll read: once) or only read (a callback, dropped once delivered). */
  pickup(proposalId: string, take: boolean): Promise<string | null>;
  dropPickup(proposalId: string): Promise<void>;
  get(proposalId: string): Promise<(CredentialRecord & { state: 'live' | 'revoked' }) | null>;
  /** live -> revoked (and its pickup dropped): true for the first caller only. */
  markRevoked(proposalId: string): Promise<boolean>;
  /** Live credentials whose time is up at `now`. */
  due(now: number, limit: number): Promise<string[]>;
  /** The agent's live credentials (the kill switch). */
  liveOf(agent: string): Promise<string[]>;
}

/** Seals a credential's secret for the ledger (authenticated encryption); the key never leaves the adapter. */
export interface SecretSealer {
  seal(plain: string, context: string): string;
  /** Null when it was not sealed by this key for this context. */
  open(sealed: string, context: string): string | null;
}
