// The ports execution needs (re-exported from ports.ts): token signing, the token ledger,
// the execute / callback queues, the executor and the callback transport.
import type { ExecutionResult, ExecutionTokenClaims } from './execution.ts';
import type { ExecutorSpec } from './policy/model.ts';
import type { Action, Status } from './proposal.ts';
import type { WriteOptions } from './ports.ts';

export interface PublicJwks {
  keys: Record<string, unknown>[];
}

/** Signs and checks execution tokens; the keys never leave the adapter. */
export interface TokenSigner {
  sign(claims: Omit<ExecutionTokenClaims, 'iss'>): Promise<string>;
  /**
   * The claims when the signature, the token type (an execution token, not another JWT made
   * with the same key), the issuer, `audience` (when given) and (unless `ignoreExpiry`) the
   * expiry hold, else null. `ignoreExpiry` is for outcome reports: an action may finish after
   * its token expired.
   */
  verify(token: string, nowMs: number, options?: { ignoreExpiry?: boolean; audience?: string }): Promise<ExecutionTokenClaims | null>;
  jwks(): PublicJwks;
}

/** `closed`: the execution ended (failed, timed out, finished) before the token was redeemed. */
export type TokenState = 'issued' | 'redeemed' | 'revoked' | 'closed';

export interface TokenRecord {
  jti: string;
  proposal_id: string;
  agent: string;
  expires_at: number;
  token: string;
  /** Poll mode: the first read of the proposal by its agent may take the token (once). */
  pickup: boolean;
  /** Recovery: replace a token a crashed issuer stored but never recorded on the proposal. */
  replace?: boolean;
}

/**
 * Where tokens wait until a worker, a callback or the polling agent needs them (never in job
 * data), with their single-use state. Every operation that must happen once is atomic.
 */
export interface TokenLedger {
  /** Stores the token; false when the proposal already has one (a second issuer loses). */
  save(record: TokenRecord): Promise<boolean>;
  /**
   * The proposal's token while it is valid and neither revoked nor closed; with `jti`, only
   * when the stored token is that one (a recovery may have replaced another issuer's).
   */
  tokenFor(proposalId: string, jti?: string): Promise<string | null>;
  /** Takes the poll-mode token: only the first caller gets it (null when it is not `jti`'s). */
  takePickup(proposalId: string, jti?: string): Promise<string | null>;
  /** Puts back a pick-up nobody received (only while the token is issued and unexpired). */
  restorePickup(proposalId: string, jti: string, token: string): Promise<boolean>;
  /** Spends the token: true for the first call only; false when revoked, spent or unknown. */
  redeem(jti: string): Promise<boolean>;
  state(jti: string): Promise<TokenState | null>;
  /**
   * The execution is over: an `issued` token becomes `closed` (a `redeemed` one stays) and its
   * stored copies are forgotten, atomically. True when the state changed.
   */
  close(jti: string): Promise<boolean>;
  /**
   * Revokes one token (issued or redeemed) and forgets its stored copies; true when it was
   * outstanding. `evenWhenFull`: the kill switch's, done even when the store is full.
   */
  revoke(jti: string, options?: WriteOptions): Promise<boolean>;
  /** The agent's tokens that are still issued or redeemed, with their proposals. */
  outstandingTokens(agent: string): Promise<{ jti: string; proposal_id: string }[]>;
  /**
   * Pulls the agent's kill switch at `at`: proposals it made before then never get a token, and
   * the proposal store refuses its new ones until markAgentRestored (a restore before is undone).
   * Done even when the store is full (see WriteOptions): it is the kill switch.
   */
  markAgentRevoked(agent: string, at: number): Promise<void>;
  /** When the agent was last revoked, restored since or not: what issuing a token compares with. */
  agentRevokedAt(agent: string): Promise<number | null>;
  /**
   * Lifts the kill switch, atomically: the store accepts the agent's proposals made after the
   * revocation again; the revocation time stays (agentRevokedAt), so nothing made before it gets
   * a token. Null when the agent is not revoked (nothing changes). `restored_at` is never before
   * `revoked_at`, whatever the clocks of the replicas that did each say.
   */
  markAgentRestored(agent: string, at: number): Promise<AgentRevocation | null>;
  /** Claimed executions and when whoever claimed them must have finished. */
  trackExecuting(proposalId: string, deadline: number): Promise<void>;
  untrackExecuting(proposalId: string): Promise<void>;
  /** The deadline of a claimed execution, or null when none is tracked. */
  executingDeadline(proposalId: string): Promise<number | null>;
  overdueExecutions(now: number, limit: number): Promise<string[]>;
}

/** One pull and lift of an agent's kill switch. */
export interface AgentRevocation {
  revoked_at: number;
  restored_at: number;
}

export interface ExecutionQueue {
  /** One execute job per proposal: the proposal id is the job id, so a second enqueue is a no-op. */
  enqueueExecution(proposalId: string): Promise<void>;
  /** Fails the proposal if its token is still unused at `at`. */
  scheduleTokenExpiry(proposalId: string, at: number): Promise<void>;
  enqueueCallback(proposalId: string, status: Status): Promise<void>;
  /** Removes a queued execution; false when none was waiting (absent, or already running). */
  removeExecution(proposalId: string): Promise<boolean>;
}

/** What an executor is asked to run: the approved action, exactly, and who approved it. */
export interface ExecutionRequest {
  proposal_id: string;
  agent: string;
  action: Action;
  approvals: { person: string; platform: string; at: string }[];
}

/** What an executor's send comes to; `kept`: an MCP upstream's whole result, for the agent to pick up. */
export type SentResult =
  | (ExecutionResult & { kind: 'response' | 'timeout' | 'lost' | 'tool_error' | 'not_sent' })
  | (ExecutionResult & { kind: 'tool_result'; kept: Record<string, unknown> });

/** The request leaves countersign only through `send`; anything before it may be retried. */
export interface ExecutorConnection {
  send(token: string, request: ExecutionRequest): Promise<SentResult>;
  close(): void;
}

/**
 * One kind of executor (`webhook`), picked by the `kind` of the policy's `executors` entry for
 * the tool. It receives the execution token with every request, in a header of its own
 * (EXECUTION_TOKEN_HEADER), so a kind that injects a downstream credential keeps Authorization for it.
 */
export interface Executor {
  readonly kind: string;
  /** Opens the connection the policy's entry names; throws ExecutorUnreachableError when it cannot. */
  connect(spec: ExecutorSpec): Promise<ExecutorConnection>;
}

/** Executors by kind: the registry the execute worker picks from. */
export type Executors = ReadonlyMap<string, Executor>;

/** The header that carries the execution token to an executor. */
export const EXECUTION_TOKEN_HEADER = 'x-countersign-execution-token';

export class ExecutorUnreachableError extends Error {}

export interface CallbackSender {
  /** POSTs the signed body to the agent's callback URL; resolves with the HTTP status. */
  post(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<number>;
}
