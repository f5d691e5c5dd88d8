import { ReplyError, type Cluster, type Redis } from 'ioredis';
import { canonicalJson } from '../../src/core/audit.ts';
import type { SealedAuditEventInput } from '../../src/core/audit.ts';
import { auditSearchText } from '../../src/core/audit-words.ts';
import { UnavailableError } from '../../src/core/errors.ts';
import { indexKeys, type AuditIndexKeys } from './audit-index.ts';
import { defineLuaCommands, runLua, runLuaWhenFull, type LuaCommand } from './lua-commands.ts';

// The proposal and audit scripts, typed: their KEYS and ARGV in the order the Lua expects.
// The Lua itself is loaded and defined by lua-commands.ts. The scripts that append audit
// events take a variable number of KEYS: their own, then each event's search index lists, so
// that every key a script touches is declared (Redis Cluster).

type Client = Redis | Cluster;

/** The number of ARGV entries per event; must match EVENT_ARITY in audit-append.lua. */
export const EVENT_ARITY = 8;

/** Events as the scripts take them: ARGV groups, and the index lists they go to (KEYS). */
export function eventArgs(events: readonly SealedAuditEventInput[], index: AuditIndexKeys): { args: string[]; keys: string[] } {
  const args: string[] = [];
  const keys: string[] = [];
  for (const e of events) {
    // '' stands for null in the stream; a real empty id would read back as null and break the digest.
    if (e.proposal_id === '' || e.agent === '') throw new Error('audit event proposal_id/agent must be null, not empty');
    // Sent as canonical JSON, so that what is stored is exactly what the digest covered.
    const data = canonicalJson(e.data);
    const lists = indexKeys(index, e, auditSearchText(e.type, e.actor, e.proposal_id ?? '', e.agent ?? '', data));
    args.push(e.type, e.at, e.proposal_id ?? '', e.agent ?? '', e.actor, data, e.digest, String(lists.length));
    keys.push(...lists);
  }
  return { args, keys };
}

// A script that finds a key of the wrong type (or a count it cannot add to) refuses before its
// first write (audit-append.lua): the store cannot take the change now, nothing was written.
const REFUSED = /^STORE_REFUSED (.*)$/s;

function storeRefused(e: unknown): unknown {
  if (!(e instanceof ReplyError)) return e;
  const m = REFUSED.exec((e as Error).message);
  return m === null ? e : new UnavailableError(`the store cannot record this now: ${m[1]}`);
}

/** Runs a script with a variable number of KEYS (its own first, then the index lists). */
async function runWithKeys(redis: Client, name: LuaCommand, keys: readonly string[], argv: readonly string[], evenWhenFull = false): Promise<unknown> {
  const args = [keys.length, ...keys, ...argv];
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
  auditIndex: AuditIndexKeys;
  /** The agent's kill switch (the token ledger's keys), checked in the same step. */
  revokedAgent: string;
  restoredAgent: string;
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
  events: readonly SealedAuditEventInput[];
}

export type CreateProposalReply = { kind: 'created' } | { kind: 'exists'; id: string } | { kind: 'revoked'; revokedAt: number };

export interface CommitProposalKeys {
  proposal: string;
  pending: string;
  statusCounts: string;
  audit: string;
  auditHead: string;
  auditIndex: AuditIndexKeys;
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
  events: readonly SealedAuditEventInput[];
}

export interface CountersignScripts {
  createProposal(keys: CreateProposalKeys, args: CreateProposalArgs): Promise<CreateProposalReply>;
  /** `evenWhenFull`: the kill switch's commits, run even at maxmemory (see WriteOptions). */
  commitProposal(keys: CommitProposalKeys, args: CommitProposalArgs, evenWhenFull?: boolean): Promise<boolean>;
  appendEvents(keys: { audit: string; auditHead: string; auditIndex: AuditIndexKeys }, events: readonly SealedAuditEventInput[], evenWhenFull?: boolean): Promise<number>;
}

export function redisScripts(redis: Client): CountersignScripts {
  defineLuaCommands(redis);
  return {
    async createProposal(k, a) {
      const events = eventArgs(a.events, k.auditIndex);
      const reply = await runWithKeys(
        redis,
        'countersignCreateProposal',
        [k.proposal, k.idempotency, k.pending, k.statusCounts, k.audit, k.auditHead, k.revokedAgent, k.restoredAgent, ...events.keys],
        [a.id, a.doc, String(a.version), a.status, a.agent, a.pendingScore, String(a.idempotencyTtlSeconds), String(a.proposedAt), ...events.args],
      );
      if (!Array.isArray(reply) || reply.length !== 2) throw new Error('countersign create-proposal: unexpected reply');
      const kind = Number(reply[0]);
      if (kind === 1) return { kind: 'created' };
      if (kind === 2) return { kind: 'revoked', revokedAt: Number(reply[1]) };
      return { kind: 'exists', id: String(reply[1]) };
    },
    async commitProposal(k, a, evenWhenFull = false) {
      const events = eventArgs(a.events, k.auditIndex);
      const reply = await runWithKeys(
        redis,
        evenWhenFull ? 'countersignCommitProposalWhenFull' : 'countersignCommitProposal',
        [k.proposal, k.pending, k.statusCounts, k.audit, k.auditHead, ...events.keys],
        [a.id, String(a.expectedVersion), a.doc, String(a.version), a.status, a.pendingScore, a.allowedFrom, ...events.args],
        evenWhenFull,
      );
      return Number(reply) === 1;
    },
    async appendEvents(k, list, evenWhenFull = false) {
      if (list.length === 0) return 0;
      const events = eventArgs(list, k.auditIndex);
      const name = evenWhenFull ? 'countersignAppendEventsWhenFull' : 'countersignAppendEvents';
      return Number(await runWithKeys(redis, name, [k.audit, k.auditHead, ...events.keys], events.args, evenWhenFull));
    },
  };
}
