import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { createRedisAuditIndex } from '../adapters/redis/audit-index-store.ts';
import { parseStreamEntry } from '../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../adapters/redis/audit-seals.ts';
import { redisKeys } from '../adapters/redis/keys.ts';
import { redisScripts, type CreateProposalArgs } from '../adapters/redis/scripts.ts';
import type { SealedAuditEventInput } from '../src/core/audit.ts';
import { step2Args } from './audit-cost.ts';
import { pool } from './lib.ts';
import { addDelta, emptySnapshot, redisSnapshot, scriptStat, snapshotDelta, unlinkPrefix } from './redis-stats.ts';

// The create script of proposals countersign made in this run, replayed on fresh keys twice:
// with today's create-proposal.lua (and the indexer after it) and with the one of before issue 13
// (chain step 2: SHA-256 in Lua; a bench-only copy in bench/fixtures/chain-step2/), taking turns in rounds. The same
// proposal documents and audit events (read back from Redis) go to both, so the difference is
// the scripts' alone: a same-run before/after of what creating a proposal costs Redis.

const fixture = (name: string) => readFileSync(new URL(`./fixtures/chain-step2/${name}`, import.meta.url), 'utf8');
// Composed as lua-commands.ts composed it before issue 13.
const STEP2_CREATE = [fixture('sha256.lua'), fixture('audit-append.lua'), fixture('create-proposal.lua')].join('\n');
const STEP2_COMMAND = 'benchCreateProposalStep2';
/** The events the create script writes with the proposal (the card's come later, by another script). */
const CREATE_EVENTS = new Set(['proposal_received', 'policy_decided', 'decided']);
const ROUNDS = 4;
/** Entries per indexer step in the `after` window: about what a 500 ms poll gathers at the bench's intake. */
export const INDEX_BATCH = 300;
const INDEXER = 'bench-indexer';

export interface ReplayCost {
  proposals: number;
  eventsPerProposal: number;
  /** Per proposal: redis-server CPU and create script time, µs. */
  before: { cpuUs: number; scriptUs: number };
  after: { cpuUs: number; scriptUs: number };
}

/** What the create script got for proposal `id` of `prefix`, rebuilt from what it stored (the index must have caught up). */
async function createArgs(redis: Redis, prefix: string, id: string): Promise<CreateProposalArgs | null> {
  const k = redisKeys(prefix);
  const [doc, version, status, agent] = await redis.hmget(k.proposal(id), 'doc', 'version', 'status', 'agent');
  if (doc == null || version == null || status == null || agent == null) return null;
  const ids = await redis.lrange(k.auditIndex.proposal(id), 0, -1);
  const events: (SealedAuditEventInput & { seq: number })[] = [];
  for (const entryId of ids) {
    const entry = (await redis.xrange(k.audit, entryId, entryId))[0];
    if (entry === undefined) continue;
    const e = parseStreamEntry(entry);
    if (!CREATE_EVENTS.has(e.type)) continue;
    events.push({ seq: e.seq, type: e.type, at: e.at, proposal_id: e.proposal_id, agent: e.agent, actor: e.actor, data: e.data, digest: e.digest } as SealedAuditEventInput & { seq: number });
  }
  events.sort((a, b) => a.seq - b.seq);
  const score = await redis.zscore(k.pending, id);
  return {
    id,
    doc,
    version: Number(version),
    status,
    agent,
    pendingScore: score ?? '+inf',
    idempotencyTtlSeconds: 0,
    proposedAt: Date.now(),
    now: Date.now(),
    limits: { perMinute: 0, pending: 0, rulePerMinute: 0, rulePending: 0 },
    aggregate: null,
    nudgeScore: '',
    events: events.map(({ seq: _seq, ...e }) => e),
  };
}

/** Replays the create step of `ids` (proposals of `prefix`) before and after issue 13; deletes its keys afterwards. */
export async function replayCreates(redis: Redis, prefix: string, ids: readonly string[], label: string): Promise<ReplayCost> {
  redis.defineCommand(STEP2_COMMAND, { numberOfKeys: 8, lua: STEP2_CREATE });
  const step2 = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[STEP2_COMMAND]!.bind(redis);
  const today = redisScripts(redis);
  const list: CreateProposalArgs[] = [];
  for (const id of ids) {
    const a = await createArgs(redis, prefix, id);
    if (a !== null && a.events.length > 0) list.push(a);
  }
  if (list.length === 0) throw new Error(`create replay (${label}): no proposal could be read back`);
  const target = { before: `benchreplay-${label}-step2`, after: `benchreplay-${label}-step3` } as const;
  const run = {
    before: (a: CreateProposalArgs) => {
      const k = redisKeys(target.before);
      return step2(
        k.proposal(a.id), k.idempotency(a.agent, ''), k.pending, k.statusCounts, k.audit, k.auditHead, k.revokedAgent(a.agent), k.restoredAgent(a.agent),
        a.id, a.doc, String(a.version), a.status, a.agent, a.pendingScore, String(a.idempotencyTtlSeconds), String(a.proposedAt),
        ...step2Args(a.events),
      );
    },
    after: (a: CreateProposalArgs) => {
      const k = redisKeys(target.after);
      const keys = {
        proposal: k.proposal(a.id), idempotency: k.idempotency(a.agent, ''), pending: k.pending, statusCounts: k.statusCounts,
        audit: k.audit, auditHead: k.auditHead, revokedAgent: k.revokedAgent(a.agent), restoredAgent: k.restoredAgent(a.agent), cardOutbox: k.cardOutbox,
        agentPending: k.limitPending(a.agent, null), agentRulePending: k.limitPending(a.agent, 'bench'), agentRate: k.limitRate(a.agent, null),
        agentRuleRate: k.limitRate(a.agent, 'bench'), aggregate: k.aggregate(''), aggregateVersion: k.aggregateVersion(''), escalations: k.escalations,
      };
      return today.createProposal(keys, a);
    },
  };
  // Today's create leaves the search index to the indexer: the `after` window runs it too, over
  // what the creates appended (the index at commit was part of the create script before).
  const afterSeals = createRedisAuditSeals(redis, { prefix: target.after });
  const afterIndex = createRedisAuditIndex(redis, { prefix: target.after });
  const sums = { before: emptySnapshot(), after: emptySnapshot() };
  const per = Math.ceil(list.length / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const chunk = list.slice(r * per, (r + 1) * per);
    for (const v of ['after', 'before'] as const) {
      if (v === 'after') await afterSeals.acquireLease(INDEXER, 600_000);
      const s0 = await redisSnapshot(redis);
      const res = await pool(chunk.length, 4, (i) => run[v](chunk[i]!).then(() => undefined));
      if (res.errors > 0) throw new Error(`create replay (${label}, ${v}): ${String((res.firstError as Error)?.message ?? res.firstError)}`);
      if (v === 'after') {
        for (;;) {
          const step = await afterIndex.indexNext(INDEXER, INDEX_BATCH);
          if (typeof step !== 'object') throw new Error(`create replay (${label}): the indexer step was ${step}`);
          if (step.indexed === 0) break;
        }
      }
      addDelta(sums[v], snapshotDelta(s0, await redisSnapshot(redis)));
    }
  }
  for (const p of Object.values(target)) await unlinkPrefix(redis, p);
  const n = list.length;
  const cost = (v: 'before' | 'after') => ({ cpuUs: (sums[v].cpuMs * 1000) / n, scriptUs: scriptStat(sums[v]).usec / n });
  return { proposals: n, eventsPerProposal: list.reduce((a, p) => a + p.events.length, 0) / n, before: cost('before'), after: cost('after') };
}
