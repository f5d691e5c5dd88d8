import type { Cluster, Redis } from 'ioredis';
import { seal } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import type { AggregateRead, CommitOptions, CreateOptions, CreateResult, ImplicitKey, ProposalStore } from '../../src/core/ports.ts';
import { countsInAggregate, type LimitName } from '../../src/core/policy/fatigue.ts';
import { canTransition } from '../../src/core/lifecycle.ts';
import { nextNudgeAt } from '../../src/core/escalation.ts';

import { STATUSES } from '../../src/core/proposal.ts';
import type { Proposal, Status } from '../../src/core/proposal.ts';
import { IDEMPOTENCY_TTL_SECONDS, redisKeys } from './keys.ts';
import { redisScripts, runWithKeys } from './scripts.ts';
import { runLua } from './lua-commands.ts';

// The proposal lives in one hash: `doc` is the whole Proposal as JSON (the source of truth),
// `version`/`status`/`agent` are copies the Lua scripts and the audit search read without
// parsing JSON. Every write goes through a script, so the copies never drift from `doc`.

export interface RedisStoreOptions {
  prefix: string;
}

// The state machine, enforced again where the write happens: whatever a use case computes,
// the store refuses a move the lifecycle forbids (a decided proposal never changes its decision).
const ALLOWED_FROM = Object.fromEntries(
  STATUSES.map((to) => [to, STATUSES.filter((from) => from === to || canTransition(from, to)).join(' ')]),
) as Record<Status, string>;

// A pending proposal always has a deadline; +inf keeps a malformed one listed rather than lost.
function pendingScore(p: Proposal): string {
  return p.expires_at === null ? '+inf' : String(p.expires_at);
}

/** How many members of a pending set one prune checks (a limit is rarely higher). */
const PRUNE_BATCH = 1_000;
const PRUNE_EVERY_MS = 10_000;

/** The escalations set's score: when the next escalation step or reminder is due, '' for none. */
function nudgeScore(p: Proposal): string {
  const at = nextNudgeAt(p);
  return at === null ? '' : String(at);
}

function parseDoc(doc: string | null): Proposal | null {
  return doc === null ? null : (JSON.parse(doc) as Proposal);
}

export function createRedisProposalStore(redis: Redis | Cluster, opts: RedisStoreOptions): ProposalStore {
  const keys = redisKeys(opts.prefix);
  const scripts = redisScripts(redis);

  async function getMany(ids: string[]): Promise<Proposal[]> {
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hget(keys.proposal(id), 'doc');
    const replies = (await pipeline.exec()) ?? [];
    const out: Proposal[] = [];
    for (const [err, doc] of replies) {
      if (err) throw err;
      const p = parseDoc(typeof doc === 'string' ? doc : null);
      if (p !== null) out.push(p);
    }
    return out;
  }

  async function get(id: string): Promise<Proposal | null> {
    return parseDoc(await redis.hget(keys.proposal(id), 'doc'));
  }

  return {
    async create(proposal: Proposal, events: AuditEventInput[], implicitKey?: ImplicitKey, proposedAt = proposal.created_at, options: CreateOptions = {}): Promise<CreateResult> {
      if (proposal.version !== 1) throw new Error(`a new proposal has version 1, not ${proposal.version}`);
      const { limits: lim, aggregate: agg } = options;
      // An implicit key lives in its own namespace ("agent#request"), so no agent-chosen key can collide with it.
      const dedupe =
        proposal.idempotency_key !== null
          ? { key: keys.idempotency(proposal.agent, proposal.idempotency_key), ttl: IDEMPOTENCY_TTL_SECONDS }
          : implicitKey !== undefined
            ? { key: keys.idempotency(`${proposal.agent}#request`, implicitKey.key), ttl: implicitKey.ttlSeconds }
            : null;
      const result = await scripts.createProposal(
        {
          proposal: keys.proposal(proposal.id),
          // Unused by the script when there is no idempotency key; still a key of our slot.
          idempotency: dedupe?.key ?? keys.idempotency(proposal.agent, ''),
          pending: keys.pending,
          statusCounts: keys.statusCounts,
          audit: keys.audit,
          auditHead: keys.auditHead,
          revokedAgent: keys.revokedAgent(proposal.agent),
          restoredAgent: keys.restoredAgent(proposal.agent),
          cardOutbox: keys.cardOutbox,
          agentPending: keys.limitPending(proposal.agent, null),
          agentRulePending: keys.limitPending(proposal.agent, proposal.decision.rule),
          agentRate: keys.limitRate(proposal.agent, null),
          agentRuleRate: keys.limitRate(proposal.agent, proposal.decision.rule),
          // Unused without aggregation; still keys of our slot.
          aggregate: keys.aggregate(agg?.group ?? ''),
          aggregateVersion: keys.aggregateVersion(agg?.group ?? ''),
          escalations: keys.escalations,
        },
        {
          id: proposal.id,
          doc: JSON.stringify(proposal),
          version: proposal.version,
          status: proposal.status,
          agent: proposal.agent,
          pendingScore: pendingScore(proposal),
          idempotencyTtlSeconds: dedupe?.ttl ?? 0,
          proposedAt,
          now: proposal.created_at,
          limits: { perMinute: lim?.per_minute ?? 0, pending: lim?.pending ?? 0, rulePerMinute: lim?.rule_per_minute ?? 0, rulePending: lim?.rule_pending ?? 0 },
          aggregate: agg === undefined ? null : { version: agg.version, member: `${proposal.id}|${agg.amount}`, windowMs: agg.window_ms },
          nudgeScore: nudgeScore(proposal),
          events: events.map(seal),
        },
      );
      if (result.kind === 'created') return { created: true };
      if (result.kind === 'revoked') return { created: false, refused: 'agent_revoked', revoked_at: result.revokedAt };
      if (result.kind === 'stale') return { created: false, refused: 'stale_aggregate' };
      if (result.kind === 'limited') return { created: false, refused: 'rate_limited', limit: result.limit as LimitName, max: result.max, retry_after_ms: result.retryAfterMs };
      const existing = await get(result.id);
      // Proposals are never deleted while their idempotency key lives, so this is corruption.
      if (existing === null) throw new Error(`idempotency key points to missing proposal ${result.id}`);
      return { created: false, existing };
    },

    get,

    async readAggregate(group: string, now: number, windowMs: number): Promise<AggregateRead> {
      // One round trip: the commit takes a proposal out of its group when it stops counting
      // (CommitOptions.counted), so what is in the window is what counts; no status is read.
      const replies = (await redis.pipeline().get(keys.aggregateVersion(group)).zrevrangebyscore(keys.aggregate(group), '+inf', String(now - windowMs)).exec()) ?? [];
      const [e1, version] = replies[0] ?? [new Error('no reply'), null];
      const [e2, members] = replies[1] ?? [new Error('no reply'), null];
      if (e1) throw e1;
      if (e2) throw e2;
      const entries = (members as string[]).map((m) => {
        const cut = m.lastIndexOf('|');
        return { id: m.slice(0, cut), amount: Number(m.slice(cut + 1)) };
      });
      return { version: typeof version === 'string' ? version : '0', entries };
    },

    async commit(next: Proposal, expectedVersion: number, events: AuditEventInput[], options: CommitOptions = {}): Promise<'ok' | 'conflict'> {
      if (next.version !== expectedVersion + 1) {
        throw new Error(`commit of version ${next.version} against expected version ${expectedVersion}`);
      }
      // A revision's move takes it out of its group itself.
      const leaves = options.aggregate === undefined && options.counted !== undefined && !countsInAggregate(next) ? options.counted : undefined;
      const ok = await scripts.commitProposal(
        {
          proposal: keys.proposal(next.id),
          pending: keys.pending,
          statusCounts: keys.statusCounts,
          audit: keys.audit,
          auditHead: keys.auditHead,
          agentPending: keys.limitPending(next.agent, null),
          agentRulePending: keys.limitPending(next.agent, next.decision.rule),
          escalations: keys.escalations,
          away: keys.away,
          // Unused without a revision's move; still keys of our slot.
          aggregateFrom: keys.aggregate(options.aggregate?.from?.group ?? leaves?.group ?? ''),
          aggregateFromVersion: keys.aggregateVersion(options.aggregate?.from?.group ?? ''),
          aggregateTo: keys.aggregate(options.aggregate?.to?.group ?? ''),
          aggregateToVersion: keys.aggregateVersion(options.aggregate?.to?.group ?? ''),
        },
        {
          id: next.id,
          expectedVersion,
          doc: JSON.stringify(next),
          version: next.version,
          status: next.status,
          pendingScore: pendingScore(next),
          allowedFrom: ALLOWED_FROM[next.status],
          nudgeScore: nudgeScore(next),
          delegation: options.delegation ?? null,
          aggregate: options.aggregate === undefined ? null : { from: options.aggregate.from?.member ?? null, to: options.aggregate.to, windowMs: options.aggregate.window_ms },
          leaves: leaves?.member ?? null,
          events: events.map(seal),
        },
        options.evenWhenFull === true,
      );
      return ok ? 'ok' : 'conflict';
    },

    async nudgesDueBy(at: number, limit: number): Promise<string[]> {
      if (limit <= 0) return [];
      return redis.zrangebyscore(keys.escalations, '-inf', String(at), 'LIMIT', 0, limit);
    },

    async rescheduleNudge(id: string, version: number, at: number | null): Promise<void> {
      await runWithKeys(redis, 'countersignNudgeReschedule', [keys.proposal(id), keys.escalations], [id, String(version), at === null ? '' : String(at)]);
    },

    async listPending(limit: number): Promise<Proposal[]> {
      if (limit <= 0) return [];
      const ids = await redis.zrange(keys.pending, 0, String(limit - 1));
      return getMany(ids);
    },

    async pendingDueBy(at: number, limit: number): Promise<string[]> {
      if (limit <= 0) return [];
      return redis.zrangebyscore(keys.pending, '-inf', String(at), 'LIMIT', 0, limit);
    },

    async forgetImplicitKey(agent: string, key: string, proposalId: string): Promise<void> {
      await runLua(redis, 'countersignIdempotencyForget', [keys.idempotency(`${agent}#request`, key), proposalId]);
    },

    async prunePending(agent: string, rule: string | null, now: number): Promise<number> {
      // Once in PRUNE_EVERY_MS per set: a flood of refused proposals must not read the whole set each time.
      if ((await redis.set(keys.limitPrune(agent, rule), '1', 'PX', PRUNE_EVERY_MS, 'NX')) === null) return 0;
      const set = keys.limitPending(agent, rule);
      const ids = await redis.zrangebyscore(set, `(${now}`, '+inf', 'LIMIT', 0, PRUNE_BATCH);
      if (ids.length === 0) return 0;
      return Number(await runLua(redis, 'countersignLimitPendingPrune', [ids.length + 1, set, ...ids.map((id) => keys.proposal(id)), ...ids]));
    },

    async revokedAgents(agents: readonly string[]): Promise<Map<string, number>> {
      const out = new Map<string, number>();
      if (agents.length === 0) return out;
      // One MGET: every key shares the installation's hash tag, so it is one slot on a Cluster too.
      const values = await redis.mget(...agents.flatMap((a) => [keys.revokedAgent(a), keys.restoredAgent(a)]));
      agents.forEach((agent, i) => {
        const revoked = values[2 * i];
        const restored = values[2 * i + 1];
        if (revoked === null || revoked === undefined) return;
        // As create-proposal.lua reads them.
        if (restored === null || restored === undefined || Number(restored) < Number(revoked)) out.set(agent, Number(revoked));
      });
      return out;
    },

    async countByStatus(): Promise<Record<Status, number>> {
      const raw = await redis.hgetall(keys.statusCounts);
      const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
      for (const s of STATUSES) {
        const n = Number(raw[s] ?? 0);
        counts[s] = Number.isFinite(n) ? n : 0;
      }
      return counts;
    },
  };
}
