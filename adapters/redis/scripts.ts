import { ReplyError, type Cluster, type Redis } from 'ioredis';
import { canonicalJson } from '../../src/core/audit.ts';
import type { SealedAuditEventInput } from '../../src/core/audit.ts';
import { UnavailableError } from '../../src/core/errors.ts';
import { defineLuaCommands, runLua, runLuaWhenFull, type LuaCommand } from './lua-commands.ts';

// The proposal and audit scripts, typed: their KEYS and ARGV in the order the Lua expects.
// The Lua itself is loaded and defined by lua-commands.ts. The scripts append audit events
// and nothing else for them: their search index is written after the commit by the indexer
// (audit-index-store.ts), so a commit touches only its own keys.

type Client = Redis | Cluster;

/** The number of ARGV entries per event; must match EVENT_ARITY in audit-append.lua. */
export const EVENT_ARITY = 7;

/** Events as the scripts take them: ARGV groups of EVENT_ARITY. */
export function eventArgs(events: readonly SealedAuditEventInput[]): string[] {
  const args: string[] = [];
  for (const e of events) {
    // '' stands for null in the stream; a real empty id would read back as null and break the digest.
    if (e.proposal_id === '' || e.agent === '') throw new Error('audit event proposal_id/agent must be null, not empty');
    // Sent as canonical JSON, so that what is stored is exactly what the digest covered.
    args.push(e.type, e.at, e.proposal_id ?? '', e.agent ?? '', e.actor, canonicalJson(e.data), e.digest);
  }
  return args;
}

// A script that finds a key of the wrong type (or a count it cannot add to) refuses before its
// first write (audit-append.lua): the store cannot take the change now, nothing was written.
const REFUSED = /^STORE_REFUSED (.*)$/s;

function storeRefused(e: unknown): unknown {
  if (!(e instanceof ReplyError)) return e;
  const m = REFUSED.exec((e as Error).message);
  return m === null ? e : new UnavailableError(`the store cannot record this now: ${m[1]}`);
}

/** Runs a script: its KEYS (as many as lua-commands.ts declares for it), then its ARGV; STORE_REFUSED becomes UnavailableError. */
export async function runWithKeys(redis: Client, name: LuaCommand, keys: readonly string[], argv: readonly string[], evenWhenFull = false): Promise<unknown> {
  const args = [...keys, ...argv];
  try {
    return evenWhenFull ? await runLuaWhenFull(redis, name as Extract<LuaCommand, `${string}WhenFull`>, args) : await runLua(redis, name, args);
  } catch (e) {
    throw storeRefused(e);
  }
}

export interface CreateProposalKeys {
  proposal: string;
  idempotency: string;
  pending: string;
  statusCounts: string;
  audit: string;
  auditHead: string;
  /** The agent's kill switch (the token ledger's keys), checked in the same step. */
  revokedAgent: string;
  restoredAgent: string;
  /** Where a new pending proposal's id goes for its card (card-outbox.ts). */
  cardOutbox: string;
  /** Approval fatigue (keys.ts limitPending, limitRate, aggregate): the agent's, the agent's for the rule, the group's. */
  agentPending: string;
  agentRulePending: string;
  agentRate: string;
  agentRuleRate: string;
  aggregate: string;
  aggregateVersion: string;
  /** Where a pending proposal waits for its next escalation step or reminder (keys.ts escalations). */
  escalations: string;
}

export interface CreateProposalArgs {
  id: string;
  doc: string;
  version: number;
  status: string;
  agent: string;
  pendingScore: string;
  /** 0 when the proposal has no idempotency key. */
  idempotencyTtlSeconds: number;
  /** When the agent made the proposal: what the kill switch's revocation time is compared with. */
  proposedAt: number;
  now: number;
  /** 0: no limit of that kind. */
  limits: { perMinute: number; pending: number; rulePerMinute: number; rulePending: number };
  /** The group's version the decision was made on, or null without aggregation. */
  aggregate: { version: string; member: string; windowMs: number } | null;
  /** When its first escalation step or reminder is due (escalation.ts nextNudgeAt), '' for none. */
  nudgeScore: string;
  events: readonly SealedAuditEventInput[];
}

export type CreateProposalReply =
  | { kind: 'created' }
  | { kind: 'exists'; id: string }
  | { kind: 'revoked'; revokedAt: number }
  | { kind: 'stale' }
  | { kind: 'limited'; limit: string; max: number; retryAfterMs: number };

export interface CommitProposalKeys {
  proposal: string;
  pending: string;
  statusCounts: string;
  audit: string;
  auditHead: string;
  agentPending: string;
  agentRulePending: string;
  escalations: string;
  /** The absences (keys.ts away): read when the commit is a delegate's vote. */
  away: string;
  /** A revision's aggregate groups (ports.ts AggregateMove): the one it leaves and the one it joins, with their versions. */
  aggregateFrom: string;
  aggregateFromVersion: string;
  aggregateTo: string;
  aggregateToVersion: string;
}

export interface CommitProposalArgs {
  id: string;
  expectedVersion: number;
  doc: string;
  version: number;
  status: string;
  pendingScore: string;
  /** The statuses this commit may leave, space-separated. */
  allowedFrom: string;
  /** When its next escalation step or reminder is due, '' for none (then it leaves the set). */
  nudgeScore: string;
  /** A delegate's vote: committed only while this absence still holds (ports.ts CommitOptions). */
  delegation: { person: string; delegate: string; at: number } | null;
  /** A revision's move between aggregate groups (ports.ts AggregateMove), or null. */
  aggregate: { from: string | null; to: { member: string; score: number; version: string } | null; windowMs: number } | null;
  /** The member taken out of the group (keys.aggregateFrom) without moving its version: the new status no longer counts (ports.ts CommitOptions.counted); null otherwise. */
  leaves: string | null;
  events: readonly SealedAuditEventInput[];
}

export interface CountersignScripts {
  createProposal(keys: CreateProposalKeys, args: CreateProposalArgs): Promise<CreateProposalReply>;
  /** `evenWhenFull`: the kill switch's commits, run even at maxmemory (see WriteOptions). */
  commitProposal(keys: CommitProposalKeys, args: CommitProposalArgs, evenWhenFull?: boolean): Promise<boolean>;
  appendEvents(keys: { audit: string; auditHead: string }, events: readonly SealedAuditEventInput[], evenWhenFull?: boolean): Promise<number>;
}

export function redisScripts(redis: Client): CountersignScripts {
  defineLuaCommands(redis);
  return {
    async createProposal(k, a) {
      const reply = await runWithKeys(
        redis,
        'countersignCreateProposal',
        [
          k.proposal, k.idempotency, k.pending, k.statusCounts, k.audit, k.auditHead, k.revokedAgent, k.restoredAgent, k.cardOutbox,
          k.agentPending, k.agentRulePending, k.agentRate, k.agentRuleRate, k.aggregate, k.aggregateVersion, k.escalations,
        ],
        [
          a.id, a.doc, String(a.version), a.status, a.agent, a.pendingScore, String(a.idempotencyTtlSeconds), String(a.proposedAt),
          String(a.now), String(a.limits.perMinute), String(a.limits.pending), String(a.limits.rulePerMinute), String(a.limits.rulePending),
          a.aggregate?.version ?? '', a.aggregate?.member ?? '', String(a.aggregate?.windowMs ?? 0), a.nudgeScore,
          ...eventArgs(a.events),
        ],
      );
      if (!Array.isArray(reply) || reply.length < 2) throw new Error('countersign create-proposal: unexpected reply');
      const kind = Number(reply[0]);
      if (kind === 1) return { kind: 'created' };
      if (kind === 2) return { kind: 'revoked', revokedAt: Number(reply[1]) };
      if (kind === 3) return { kind: 'stale' };
      if (kind === 4) return { kind: 'limited', limit: String(reply[1]), max: Number(reply[2]), retryAfterMs: Number(reply[3]) };
      return { kind: 'exists', id: String(reply[1]) };
    },
    async commitProposal(k, a, evenWhenFull = false) {
      const reply = await runWithKeys(
        redis,
        evenWhenFull ? 'countersignCommitProposalWhenFull' : 'countersignCommitProposal',
        [k.proposal, k.pending, k.statusCounts, k.audit, k.auditHead, k.agentPending, k.agentRulePending, k.escalations, k.away, k.aggregateFrom, k.aggregateFromVersion, k.aggregateTo, k.aggregateToVersion],
        [
          a.id, String(a.expectedVersion), a.doc, String(a.version), a.status, a.pendingScore, a.allowedFrom, a.nudgeScore,
          a.delegation?.person ?? '', a.delegation?.delegate ?? '', a.delegation === null ? '' : String(a.delegation.at),
          a.aggregate?.from ?? '', a.aggregate?.to?.member ?? '', String(a.aggregate?.to?.score ?? 0), String(a.aggregate?.windowMs ?? 0), a.aggregate?.to?.version ?? '',
          a.leaves ?? '',
          ...eventArgs(a.events),
        ],

        evenWhenFull,
      );
      return Number(reply) === 1;
    },
    async appendEvents(k, list, evenWhenFull = false) {
      if (list.length === 0) return 0;
      const name = evenWhenFull ? 'countersignAppendEventsWhenFull' : 'countersignAppendEvents';
      return Number(await runWithKeys(redis, name, [k.audit, k.auditHead], eventArgs(list), evenWhenFull));
    },
  };
}
