import { iso } from '../../src/core/clock.ts';
import { describeExecution } from '../../src/core/execution.ts';
import type { StoredAuditEvent } from '../../src/core/ports.ts';
import type { Decision, Proposal } from '../../src/core/proposal.ts';

// The API's JSON shapes: times as ISO-8601, durations in seconds.

const time = (ms: number | null) => (ms === null ? null : iso(ms));

/** The decision as the API shows it: every field of Decision, ttl in seconds, step_up always said. */
export type DecisionView = Omit<Decision, 'ttl_ms' | 'step_up'> & { ttl_seconds: number; step_up: boolean };

/** Derived from the Decision itself, so a field added to it is shown without touching this. */
export function decisionView(p: Proposal): DecisionView {
  const { ttl_ms, step_up, ...same } = p.decision;
  return { ...same, ttl_seconds: ttl_ms / 1000, step_up: step_up === true };
}

export function submitView(p: Proposal) {
  return { id: p.id, status: p.status, decision: decisionView(p), expires_at: time(p.expires_at) };
}

export function proposalView(p: Proposal) {
  return {
    id: p.id,
    agent: p.agent,
    status: p.status,
    idempotency_key: p.idempotency_key,
    intent: p.intent,
    action: p.action,
    proposed_action: p.revision?.proposed.action ?? p.action,
    revision: revisionView(p),
    context: p.context,
    decision: decisionView(p),
    approvals: p.approvals.map((a) => ({ ...a, at: iso(a.at) })),
    resolution: p.resolution === null ? null : { ...p.resolution, at: iso(p.resolution.at) },
    created_at: iso(p.created_at),
    expires_at: time(p.expires_at),
    execution: describeExecution(p.execution),
  };
}

/** An approver's edit, for the agent: what changed from its proposal, and by whom. */
export function revisionView(p: Proposal) {
  const r = p.revision;
  if (r === undefined) return null;
  return {
    number: r.number,
    by: r.by,
    platform: r.platform,
    at: iso(r.at),
    changes: r.changes,
    proposed_context: r.proposed.context,
    superseded: [...new Set(r.superseded.map((a) => a.person))],
  };
}

/** An entry as stored: one of chain step 3 has null prev_hash and hash (export and verify compute them). */
export function auditView(e: StoredAuditEvent) {
  return e;
}
