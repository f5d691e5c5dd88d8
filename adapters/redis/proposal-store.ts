import type { Cluster, Redis } from 'ioredis';
import { seal } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import type { CreateResult, ImplicitKey, ProposalStore, WriteOptions } from '../../src/core/ports.ts';
import { canTransition } from '../../src/core/lifecycle.ts';
import { STATUSES } from '../../src/core/proposal.ts';
import type { Proposal, Status } from '../../src/core/proposal.ts';
import { IDEMPOTENCY_TTL_SECONDS, redisKeys } from './keys.ts';
import { redisScripts } from './scripts.ts';
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
    async create(proposal: Proposal, events: AuditEventInput[], implicitKey?: ImplicitKey, proposedAt = proposal.created_at): Promise<CreateResult> {
      if (proposal.version !== 1) throw new Error(`a new proposal has version 1, not ${proposal.version}`);
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
          events: events.map(seal),
        },
      );
      if (result.kind === 'created') return { created: true };
      if (result.kind === 'revoked') return { created: false, refused: 'agent_revoked', revoked_at: result.revokedAt };
      const existing = await get(result.id);
      // Proposals are never deleted while their idempotency key lives, so this is corruption.
      if (existing === null) throw new Error(`idempotency key points to missing proposal ${result.id}`);
      return { created: false, existing };
    },

    get,

    async commit(next: Proposal, expectedVersion: number, events: AuditEventInput[], options: WriteOptions = {}): Promise<'ok' | 'conflict'> {
      if (next.version !== expectedVersion + 1) {
        throw new Error(`commit of version ${next.version} against expected version ${expectedVersion}`);
      }
      const ok = await scripts.commitProposal(
        {
          proposal: keys.proposal(next.id),
          pending: keys.pending,
          statusCounts: keys.statusCounts,
          audit: keys.audit,
          auditHead: keys.auditHead,
        },
        {
          id: next.id,
          expectedVersion,
          doc: JSON.stringify(next),
          version: next.version,
          status: next.status,
          pendingScore: pendingScore(next),
          allowedFrom: ALLOWED_FROM[next.status],
          events: events.map(seal),
        },
        options.evenWhenFull === true,
      );
      return ok ? 'ok' : 'conflict';
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
