import { ChainVerifier } from '../../src/core/audit.ts';
import type { AuditEventInput, ChainVerdict } from '../../src/core/audit.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import type { AuditLog, AuditQuery, StoredAuditEvent } from '../../src/core/ports.ts';
import type { Proposal, Status } from '../../src/core/proposal.ts';

// What the contract suites (and the Redis-only tests beside them) build their cases from: a
// proposal (one with awkward text: quotes, a slash, non-ASCII), an event about it, the next
// version of it, plain audit events at a fixed time, and readers of a log.

export const T0 = Date.parse('2030-01-01T00:00:00.000Z');

export function proposal(overrides: Partial<Proposal> = {}): Proposal {
  const now = Date.now();
  return {
    id: newId('p', now),
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'Refund invoice 4711 / "charged twice" — ünïcode €',
    action: {
      tool: 'payments',
      operation: 'refund',
      target: 'stripe:cus_123',
      parameters: { amount: 420.5, currency: 'EUR', lines: [{ sku: 'a/b', qty: 2 }], note: null, ok: true },
    },
    context: {
      data_sensitivity: 'confidential',
      destination: 'external',
      environment: 'production',
      reversible: false,
      value: { amount: 420.5, currency: 'EUR' },
    },
    decision: {
      effect: 'approve',
      risk: 'high',
      rule: 'payments',
      reasons: ['matched rule payments'],
      route: 'finance',
      approvers: 'finance',
      approvals_required: 1,
      ttl_ms: 900_000,
    },
    status: 'pending',
    created_at: now,
    expires_at: now + 900_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...overrides,
  };
}

export function event(p: Proposal, type: AuditEventInput['type'], data: Record<string, unknown> = {}): AuditEventInput {
  return { type, at: iso(Date.now()), proposal_id: p.id, agent: p.agent, actor: `agent:${p.agent}`, data };
}

/** The next version of `p`, with `changes`. */
export function bump(p: Proposal, changes: Partial<Proposal>): Proposal {
  return { ...p, ...changes, version: p.version + 1 };
}

/** Every count at 0 but those given. */
export function counts(over: Partial<Record<Status, number>>): Record<Status, number> {
  return { pending: 0, approved: 0, denied: 0, expired: 0, cancelled: 0, rejected: 0, executing: 0, succeeded: 0, failed: 0, ...over };
}

/** The whole log, oldest first. */
export async function scanAll(log: AuditLog, batchSize?: number): Promise<StoredAuditEvent[]> {
  const out: StoredAuditEvent[] = [];
  for await (const e of log.scan(batchSize)) out.push(e);
  return out;
}

/** How many entries the log holds. */
export async function entryCount(log: AuditLog): Promise<number> {
  return (await scanAll(log)).length;
}

/** An audit event at T0 by `system` about nothing, with `over` changed. */
export function ev(over: Partial<AuditEventInput> & { type: AuditEventInput['type'] }): AuditEventInput {
  return { at: new Date(T0).toISOString(), proposal_id: null, agent: null, actor: 'system', data: {}, ...over };
}

/** A small proposal with a chosen id, created at T0 (pending ones expire a second later). */
export function proposalAt(id: string, agent: string, status: Proposal['status']): Proposal {
  return {
    id, agent, idempotency_key: null, intent: 'test', status,
    action: { tool: 'payments', operation: 'refund', target: 't', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision: { effect: 'approve', risk: 'low', rule: 'default', reasons: [], route: 'r', approvers: 'g', approvals_required: 1, ttl_ms: 1000 },
    created_at: T0, expires_at: status === 'pending' ? T0 + 1000 : null, approvals: [], resolution: null, version: 1,
  };
}

/** Walks the log in batches of `batch` and names the first entry that breaks the chain. */
export async function verify(log: AuditLog, batch = 50): Promise<ChainVerdict> {
  const verifier = new ChainVerifier();
  for await (const e of log.scan(batch)) {
    const reason = verifier.check(e);
    if (reason !== null) return { ok: false, count: verifier.count, seq: e.seq, id: e.id, reason };
  }
  return { ok: true, count: verifier.count, head: verifier.head };
}

const query = (q: Partial<AuditQuery>): AuditQuery => ({ words: [], limit: 500, ...q });

/** Every page of a search, followed by cursor. */
export async function searchAll(log: AuditLog, q: Partial<AuditQuery>): Promise<StoredAuditEvent[]> {
  const out: StoredAuditEvent[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await log.search(query({ ...q, ...(cursor === undefined ? {} : { cursor }) }));
    out.push(...page.events);
    if (page.next === null) return out;
    cursor = page.next;
  }
  throw new Error('too many pages');
}
