// The agent API's JSON shapes as DESIGN.md and the README describe them (times are ISO-8601).
// Written out rather than imported from the server, so an agent's code reads them here.

export type ProposalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'rejected' | 'executing' | 'succeeded' | 'failed';
export type Risk = 'low' | 'medium' | 'high' | 'critical';
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ProposalRequest {
  /** The same key from the same agent returns the first proposal instead of a new one. */
  idempotency_key?: string;
  /** What the agent wants to achieve and why, for the people who decide. */
  intent: string;
  action: { tool: string; operation: string; target: string; parameters?: Record<string, JsonValue> };
  context?: {
    data_sensitivity?: 'public' | 'internal' | 'confidential' | 'restricted';
    destination?: 'internal' | 'external';
    environment?: string;
    reversible?: boolean;
    value?: { amount: number; currency?: string };
  };
}

export interface DecisionView {
  effect: 'allow' | 'deny' | 'approve';
  risk: Risk;
  rule: string;
  reasons: string[];
  route: string | null;
  approvers: string | null;
  approvals_required: number;
  ttl_seconds: number;
  /** The rule's step_up: approvals count only in the console, from someone who signed in there within the last 5 minutes. */
  step_up: boolean;
  /** The rule's `editable`: parameters an approver may change before approving (absent when none). */
  editable?: string[];
  /** The rule's `escalate` steps: after `after_ms` from the proposal, cards to `route` and `approvers` may decide too (absent when none). */
  escalate?: { after_ms: number; route: string; approvers: string }[];
  /** The rule's `remind`, ms (absent when none). */
  remind_ms?: number;
  /** `deny`: a proposal nobody decided on ends denied by the policy at its deadline, not expired (absent: expire). */
  on_timeout?: 'deny';
  /** Earlier proposals of the agent to the same target made this decision stricter: their sum with this one's amount (absent otherwise). */
  aggregate?: { total: number; count: number; proposals: string[]; window_ms: number; currency: string };
}


export interface SubmitResponse {
  id: string;
  status: ProposalStatus;
  decision: DecisionView;
  expires_at: string | null;
}

export interface ApprovalView {
  person: string;
  platform: string;
  vote: 'approve' | 'deny';
  reason: string | null;
  at: string;
}

export interface ProposalView {
  id: string;
  agent: string;
  status: ProposalStatus;
  idempotency_key: string | null;
  intent: string;
  action: { tool: string; operation: string; target: string; parameters: Record<string, JsonValue> };
  context: Required<NonNullable<ProposalRequest['context']>>;
  decision: DecisionView;
  approvals: ApprovalView[];
  resolution: { status: ProposalStatus; by: string | null; reason: string | null; at: string } | null;
  created_at: string;
  expires_at: string | null;
  /**
   * What the agent proposed. Differs from `action` when an approver edited it: `action` is then
   * the revision, which is what was approved, what the execution token's action_digest names and
   * what must run; `revision` says what changed and by whom.
   */
  proposed_action: ProposalView['action'];
  revision: RevisionView | null;
  /** Execution details once a token was issued (shape owned by the server). */
  execution?: Record<string, unknown> | null;
  /** Poll mode only: present on the first read of an approved proposal. */
  execution_token?: string;
  /**
   * Poll mode only, with `execution_token` (the same read, once): the task's own login on a
   * downstream, when the rule that decided has `credentials: {issuer, ttl}`.
   */
  credential?: TaskCredential;
}

/** An approver's edit ("approve with edits"): `changes` from what was proposed to the action now. */
export interface RevisionView {
  number: number;
  by: string;
  platform: string;
  at: string;
  changes: { key: string; from: JsonValue; to: JsonValue }[];
  /** The context the agent declared; `context` above is the revision's (its value follows an edited amount). */
  proposed_context: ProposalView['context'];
  /** People whose approvals of an earlier version no longer count. */
  superseded: string[];
}

/**
 * A login made for this one task (just-in-time credentials): exactly the rights the policy's
 * `credentials:` entry grants, revoked when the task ends (outcome reported, failed, cancelled),
 * at `expires_at`, or by the kill switch. Handed over once: keep it in memory, never log it.
 */
export interface TaskCredential {
  /** The policy's `credentials:` entry that made it (e.g. `orders-db`, `cache`). */
  issuer: string;
  /** `cs_<proposal id>`: a role (postgres) or an ACL user (redis-acl) of its own. */
  username: string;
  password: string;
  /** A connection URL with the username and password in it (`postgres://…`, `redis://…`): pass it to the driver. */
  url: string;
  /**
   * ISO-8601: when it stops being valid. PostgreSQL refuses new logins from then on (VALID
   * UNTIL); countersign's sweep removes the login and its sessions at the latest one sweep
   * interval (15 s by default) later.
   */
  expires_at: string;
}

export interface OutcomeResult {
  status: 'succeeded' | 'failed';
  /** The HTTP status (or similar) the target system answered. */
  status_code?: number;
  /** A short description; secrets are redacted by the server before anyone sees it. */
  detail?: string;
}

export interface AuditSearch {
  q?: string;
  status?: ProposalStatus;
  proposal_id?: string;
  /** ISO-8601 or unix seconds. */
  since?: string | number;
  until?: string | number;
  limit?: number;
  cursor?: string;
}

export interface AuditEntry {
  id: string;
  seq: number;
  at: string;
  type: string;
  proposal_id: string | null;
  agent: string | null;
  actor: string;
  data: Record<string, unknown>;
  digest: string;
  /**
   * The hash chain around this entry. Null for entries of chain step 3 (what countersign writes
   * now): the chain is computed outside the store, by the sealer, `countersign audit export`
   * and `countersign audit verify`; search answers with the entries as stored.
   */
  prev_hash: string | null;
  hash: string | null;
  /** How the chain is computed here: 3, in Node after the write; 2 and 1, by the writer (logs begun before step 3). */
  chain: 1 | 2 | 3;
}

export interface AuditPage {
  events: AuditEntry[];
  next: string | null;
}

/** What countersign POSTs to the agent's callback_url. */
export interface CallbackPayload {
  proposal_id: string;
  agent: string;
  /** The status this callback is about. */
  status: ProposalStatus;
  current_status: ProposalStatus;
  action: ProposalView['action'];
  decision: Pick<DecisionView, 'effect' | 'risk' | 'rule' | 'reasons'>;
  resolution: ProposalView['resolution'];
  approvers: string[];
  execution: Record<string, unknown> | null;
  /** Only in the `approved` callback to an agent that executes the action itself. */
  execution_token?: string;
  /** With `execution_token`, when the rule has `credentials`: the task's login (see TaskCredential). */
  credential?: TaskCredential;
}
