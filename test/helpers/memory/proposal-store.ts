import type { AuditEventInput } from '../../../src/core/audit.ts';
import { canTransition } from '../../../src/core/lifecycle.ts';
import { nextNudgeAt } from '../../../src/core/escalation.ts';

import type { Absence } from '../../../src/core/away.ts';
import type { AggregateRead, Clock, CommitOptions, CreateOptions, CreateResult, ImplicitKey, ProposalStore } from '../../../src/core/ports.ts';
import { countsInAggregate, type LimitName } from '../../../src/core/policy/fatigue.ts';
import { STATUSES } from '../../../src/core/proposal.ts';
import type { Proposal, Status } from '../../../src/core/proposal.ts';
import type { MemoryAuditLog } from './audit-log.ts';
import type { MemoryCardOutbox } from './card-outbox.ts';
import type { MemoryRevocations } from './token-ledger.ts';

// The proposal store in memory, held to the Redis adapter's behaviour by
// test/contracts/proposal-store.contract.ts (adapters/redis/proposal-store.ts and its create / commit
// Lua scripts): idempotency per agent (an agent's own key for 30 days, the implicit key in
// its own namespace for its TTL, both on the injected clock), a duplicate id refused,
// compare-and-set on `version`, a move the lifecycle forbids an error (not a conflict), and
// the events appended to the audit fake in the same step as the proposal changes. Every
// check runs before the first write, and nothing awaits in between, so each call is atomic
// as a Lua script is. Proposals are stored as JSON, as in Redis: what a caller holds is a copy.
// A revoked agent is refused at create when the store is given the ledger's `revocations` (in
// Redis both read the same keys); without them no agent is ever revoked here. A delegate's vote
// is checked against `absences` (the away store's, as commit-proposal.lua reads its hash);
// without them every delegate's vote is refused as a conflict.

/** How long an agent's own idempotency key is kept (adapters/redis/keys.ts). */
export const IDEMPOTENCY_TTL_SECONDS = 30 * 24 * 60 * 60;

export interface MemoryProposalStore extends ProposalStore {
  /** Every stored proposal, oldest first (copies). */
  all(): Proposal[];
  /** The next create or commit rejects with `error` and changes nothing (Redis unreachable). */
  failNext(error?: Error): void;
}

function statusFrom(to: Status): Set<Status> {
  return new Set(STATUSES.filter((from) => from === to || canTransition(from, to)));
}

/** The statuses each status may follow: the rule the commit script enforces. */
const ALLOWED_FROM = Object.fromEntries(STATUSES.map((to) => [to, statusFrom(to)])) as Record<Status, Set<Status>>;

export function createMemoryProposalStore(opts: { audit: MemoryAuditLog; clock: Clock; revocations?: MemoryRevocations; outbox?: MemoryCardOutbox; absences?: (person: string) => Absence | undefined }): MemoryProposalStore {
  const { audit, clock } = opts;
  /** As create-proposal.lua: revoked and not restored, or restored but made at or before the revocation. */
  const refusedSince = (agent: string, createdAt: number): number | null => {
    const r = opts.revocations?.revocation(agent) ?? null;
    if (r === null) return null;
    return r.restored_at === null || createdAt <= r.revoked_at ? r.revoked_at : null;
  };
  /** id -> the proposal as JSON (the source of truth, like the `doc` field in Redis). */
  const docs = new Map<string, string>();
  const statuses = new Map<string, Status>();
  const idempotency = new Map<string, { id: string; expiresAt: number }>();
  let failure: Error | null = null;
  /** As create-proposal.lua's fatigue keys: per agent (and agent + rule), the proposals created pending in the last minute. */
  const rate = new Map<string, { id: string; at: number }[]>();
  /** Aggregate groups: members by created_at, and a version bumped per member. */
  const groups = new Map<string, { entries: { id: string; amount: number; at: number }[]; version: number }>();

  /** A limit the new pending proposal would exceed, as create-proposal.lua finds it (same order). */
  function overLimit(p: Proposal, now: number, o: CreateOptions): CreateResult | null {
    const l = o.limits;
    if (l === undefined) return null;
    const recent = (key: string) => (rate.get(key) ?? []).filter((e) => e.at > now - 60_000);
    // Pending with a deadline still ahead; `rule` null: the agent's own count.
    const pendingOf = (rule: string | null) =>
      [...statuses]
        .filter(([, st]) => st === 'pending')
        .map(([id]) => parse(docs.get(id))!)
        .filter((x) => x.agent === p.agent && (rule === null || x.decision.rule === rule) && (x.expires_at ?? Infinity) > now)
        .sort((a, b) => (a.expires_at ?? Infinity) - (b.expires_at ?? Infinity));
    const refuse = (limit: LimitName, max: number, firstAt: number): CreateResult => ({ created: false, refused: 'rate_limited', limit, max, retry_after_ms: Math.max(1000, firstAt - now) });
    const r = recent(p.agent);
    if (l.per_minute > 0 && r.length >= l.per_minute) return refuse('proposals_per_minute', l.per_minute, r[0]!.at + 60_000);
    const pend = pendingOf(null);
    if (l.pending > 0 && pend.length >= l.pending) return refuse('pending', l.pending, pend[0]!.expires_at ?? now);
    const rr = recent(`${p.agent}\n${p.decision.rule}`);
    if (l.rule_per_minute > 0 && rr.length >= l.rule_per_minute) return refuse('rule.proposals_per_minute', l.rule_per_minute, rr[0]!.at + 60_000);
    const rp = l.rule_pending > 0 ? pendingOf(p.decision.rule) : [];
    if (l.rule_pending > 0 && rp.length >= l.rule_pending) return refuse('rule.pending', l.rule_pending, rp[0]!.expires_at ?? now);
    return null;
  }

  audit.readStatusFrom((id) => statuses.get(id) ?? null);

  const parse = (doc: string | undefined): Proposal | null => (doc === undefined ? null : (JSON.parse(doc) as Proposal));

  function takeFailure(): void {
    if (failure === null) return;
    const error = failure;
    failure = null;
    throw error;
  }

  /** Pending proposals in the order of Redis' sorted set: deadline, then id; no deadline last. */
  function pendingOrder(): { id: string; score: number }[] {
    const out: { id: string; score: number }[] = [];
    for (const [id, status] of statuses) {
      if (status !== 'pending') continue;
      out.push({ id, score: parse(docs.get(id))?.expires_at ?? Number.POSITIVE_INFINITY });
    }
    return out.sort((a, b) => (a.score !== b.score ? a.score - b.score : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The audit fake seals (and may refuse) the events first; then both change in one step. */
  function appendWith(events: AuditEventInput[], write: () => void): void {
    audit.appendNow(events);
    write();
  }

  return {
    async create(proposal: Proposal, events: AuditEventInput[], implicitKey?: ImplicitKey, proposedAt = proposal.created_at, options: CreateOptions = {}): Promise<CreateResult> {
      takeFailure();
      if (proposal.version !== 1) throw new Error(`a new proposal has version 1, not ${proposal.version}`);
      const dedupe =
        proposal.idempotency_key !== null
          ? { key: `${proposal.agent}\n${proposal.idempotency_key}`, ttl: IDEMPOTENCY_TTL_SECONDS }
          : implicitKey !== undefined
            ? { key: `${proposal.agent}#request\n${implicitKey.key}`, ttl: implicitKey.ttlSeconds }
            : null;
      const doc = JSON.stringify(proposal);
      // Everything that can refuse runs before anything is written.
      const now = clock.now();
      const revokedAt = refusedSince(proposal.agent, proposedAt);
      if (revokedAt !== null) return { created: false, refused: 'agent_revoked', revoked_at: revokedAt };
      if (dedupe !== null && dedupe.ttl > 0) {
        const seen = idempotency.get(dedupe.key);
        if (seen !== undefined && now < seen.expiresAt) {
          const existing = parse(docs.get(seen.id));
          if (existing === null) throw new Error(`idempotency key points to missing proposal ${seen.id}`);
          return { created: false, existing };
        }
      }
      if (docs.has(proposal.id)) throw new Error(`ERR countersign: proposal ${proposal.id} already exists`);
      const at = proposal.created_at;
      const agg = options.aggregate;
      if (agg !== undefined && String(groups.get(agg.group)?.version ?? 0) !== agg.version) return { created: false, refused: 'stale_aggregate' };
      if (proposal.status === 'pending') {
        const limited = overLimit(proposal, at, options);
        if (limited !== null) return limited;
      }
      const write = () => {
        if (proposal.status === 'pending' && options.limits !== undefined) {
          for (const key of [proposal.agent, ...(options.limits.rule_per_minute > 0 ? [`${proposal.agent}\n${proposal.decision.rule}`] : [])]) {
            rate.set(key, [...(rate.get(key) ?? []).filter((e) => e.at > at - 60_000), { id: proposal.id, at }]);
          }
        }
        if (agg !== undefined && (proposal.status === 'pending' || proposal.status === 'approved' || proposal.status === 'executing')) {
          const g = groups.get(agg.group) ?? { entries: [], version: 0 };
          groups.set(agg.group, { entries: [...g.entries.filter((e) => e.at >= at - agg.window_ms), { id: proposal.id, amount: agg.amount, at }], version: g.version + 1 });
        }
        docs.set(proposal.id, doc);
        statuses.set(proposal.id, proposal.status);
        if (dedupe !== null && dedupe.ttl > 0) idempotency.set(dedupe.key, { id: proposal.id, expiresAt: now + dedupe.ttl * 1000 });
        if (proposal.status === 'pending') opts.outbox?.add(proposal.id);
      };
      appendWith(events, write);
      return { created: true };
    },

    async get(id: string): Promise<Proposal | null> {
      return parse(docs.get(id));
    },

    async readAggregate(group: string, now: number, windowMs: number): Promise<AggregateRead> {
      const g = groups.get(group);
      if (g === undefined) return { version: '0', entries: [] };
      // As the Redis adapter: what the group holds (a commit with `counted` took out what stopped counting).
      const entries = g.entries
        .filter((e) => e.at >= now - windowMs)
        .sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1))
        .map(({ id, amount }) => ({ id, amount }));
      return { version: String(g.version), entries };
    },

    async commit(next: Proposal, expectedVersion: number, events: AuditEventInput[], options: CommitOptions = {}): Promise<'ok' | 'conflict'> {
      takeFailure();
      if (next.version !== expectedVersion + 1) {
        throw new Error(`commit of version ${next.version} against expected version ${expectedVersion}`);
      }
      const current = parse(docs.get(next.id));
      if (current === null || current.version !== expectedVersion) return 'conflict';
      const held = options.delegation;
      if (held !== undefined) {
        const a = opts.absences?.(held.person);
        if (a === undefined || a.delegate !== held.delegate || !(held.at < a.until)) return 'conflict';
      }
      const move = options.aggregate;
      if (move?.to != null && move.to.version !== '' && String(groups.get(move.to.group)?.version ?? 0) !== move.to.version) return 'conflict';
      if (!ALLOWED_FROM[next.status].has(current.status)) {
        throw new Error(`ERR countersign: proposal ${next.id} may not go from ${current.status} to ${next.status}`);
      }
      const doc = JSON.stringify(next);
      appendWith(events, () => {
        docs.set(next.id, doc);
        statuses.set(next.id, next.status);
        // As commit-proposal.lua: a revision's place in the aggregate groups moves with it.
        const parsed = (m: string) => ({ id: m.slice(0, m.lastIndexOf('|')), amount: Number(m.slice(m.lastIndexOf('|') + 1)) });
        if (move?.from != null) {
          const g = groups.get(move.from.group);
          const leaving = parsed(move.from.member);
          if (g !== undefined && g.entries.some((e) => e.id === leaving.id && e.amount === leaving.amount)) {
            groups.set(move.from.group, { entries: g.entries.filter((e) => !(e.id === leaving.id && e.amount === leaving.amount)), version: g.version + 1 });
          }
        }
        const leaving = move === undefined && options.counted !== undefined && !countsInAggregate(next) ? options.counted : undefined;
        if (leaving !== undefined) {
          // As commit-proposal.lua: out of its group when it stops counting, the version unmoved.
          const g = groups.get(leaving.group);
          const out = parsed(leaving.member);
          if (g !== undefined) groups.set(leaving.group, { ...g, entries: g.entries.filter((e) => !(e.id === out.id && e.amount === out.amount)) });
        }
        if (move?.to != null) {
          const g = groups.get(move.to.group) ?? { entries: [], version: 0 };
          const joining = parsed(move.to.member);
          groups.set(move.to.group, { entries: [...g.entries.filter((e) => !(e.id === joining.id && e.amount === joining.amount)), { ...joining, at: move.to.score }], version: g.version + 1 });
        }
      });
      return 'ok';
    },

    async listPending(limit: number): Promise<Proposal[]> {
      if (limit <= 0) return [];
      return pendingOrder()
        .slice(0, limit)
        .map(({ id }) => parse(docs.get(id))!);
    },

    async pendingDueBy(at: number, limit: number): Promise<string[]> {
      if (limit <= 0) return [];
      return pendingOrder()
        .filter((p) => p.score <= at)
        .slice(0, limit)
        .map((p) => p.id);
    },

    // Derived from the documents at each read: the Redis store's set, without one to keep.
    async nudgesDueBy(at: number, limit: number): Promise<string[]> {
      if (limit <= 0) return [];
      return [...docs.values()]
        .map((doc) => parse(doc)!)
        .flatMap((p) => {
          const due = nextNudgeAt(p);
          return due !== null && due <= at ? [{ id: p.id, due }] : [];
        })
        .sort((a, b) => a.due - b.due)
        .slice(0, limit)
        .map((p) => p.id);
    },

    async rescheduleNudge(): Promise<void> {
      // Nothing kept: nudgesDueBy reads the proposals themselves.
    },

    async forgetImplicitKey(agent: string, key: string, proposalId: string): Promise<void> {
      const k = `${agent}#request\n${key}`;
      if (idempotency.get(k)?.id === proposalId) idempotency.delete(k);
    },

    async revokedAgents(agents: readonly string[]): Promise<Map<string, number>> {
      const out = new Map<string, number>();
      for (const agent of agents) {
        const r = opts.revocations?.revocation(agent) ?? null;
        if (r !== null && r.restored_at === null) out.set(agent, r.revoked_at);
      }
      return out;
    },

    async countByStatus(): Promise<Record<Status, number>> {
      const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
      for (const status of statuses.values()) counts[status] += 1;
      return counts;
    },

    all: () => [...docs.values()].map((doc) => parse(doc)!),

    failNext(error = new Error('proposal store unavailable')) {
      failure = error;
    },
  };
}
