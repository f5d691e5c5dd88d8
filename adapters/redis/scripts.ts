import type { Cluster, Redis } from 'ioredis';
import { canonicalJson } from '../../src/core/audit.ts';
import type { SealedAuditEventInput } from '../../src/core/audit.ts';
import { indexArg } from './audit-index.ts';
import { defineLuaCommands, runLua, runLuaWhenFull } from './lua-commands.ts';

// The proposal and audit scripts, typed: their KEYS and ARGV in the order the Lua expects.
// The Lua itself is loaded and defined by lua-commands.ts.

type Client = Redis | Cluster;

/** The number of ARGV entries per event; must match EVENT_ARITY in audit-append.lua. */
export const EVENT_ARITY = 8;

/** Flattens events into ARGV groups; Lua copies every string verbatim. */
export function eventArgs(events: readonly SealedAuditEventInput[]): string[] {
  const args: string[] = [];
  for (const e of events) {
    // '' stands for null in the stream; a real empty id would read back as null and break the digest.
    if (e.proposal_id === '' || e.agent === '') throw new Error('audit event proposal_id/agent must be null, not empty');
    const data = canonicalData(e);
    const text = searchText(e.type, e.actor, e.proposal_id ?? '', e.agent ?? '', data);
    args.push(e.type, e.at, e.proposal_id ?? '', e.agent ?? '', e.actor, data, e.digest, indexArg(text));
  }
  return args;
}

/** What a word search looks in, lower-cased: the same text for the index and for the check. */
export function searchText(type: string, actor: string, proposalId: string, agent: string, data: string): string {
  return [type, actor, proposalId, agent, data].join('\n').toLowerCase();
}

// Data is sent as canonical JSON so that what is stored is exactly what the digest covered.
function canonicalData(e: SealedAuditEventInput): string {
  return canonicalJson(e.data);
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
  appendEvents(keys: { audit: string; auditHead: string }, events: readonly SealedAuditEventInput[], evenWhenFull?: boolean): Promise<number>;
  /** Test hook: the Lua SHA-256 of `text` (UTF-8 bytes), hex. */
  sha256(text: string): Promise<string>;
  /** Test hook: the Lua audit chain step, to compare with core/audit.ts chainHash. */
  chainHash(prevHash: string, seq: number, digest: string): Promise<string>;
}

export function redisScripts(redis: Client): CountersignScripts {
  defineLuaCommands(redis);
  return {
    async createProposal(k, a) {
      const reply = await runLua(redis, 'countersignCreateProposal', [
        k.proposal, k.idempotency, k.pending, k.statusCounts, k.audit, k.auditHead, k.revokedAgent, k.restoredAgent,
        a.id, a.doc, String(a.version), a.status, a.agent, a.pendingScore, String(a.idempotencyTtlSeconds), String(a.proposedAt),
        ...eventArgs(a.events),
      ]);
      if (!Array.isArray(reply) || reply.length !== 2) throw new Error('countersign create-proposal: unexpected reply');
      const kind = Number(reply[0]);
      if (kind === 1) return { kind: 'created' };
      if (kind === 2) return { kind: 'revoked', revokedAt: Number(reply[1]) };
      return { kind: 'exists', id: String(reply[1]) };
    },
    async commitProposal(k, a, evenWhenFull = false) {
      const args = [
        k.proposal, k.pending, k.statusCounts, k.audit, k.auditHead,
        a.id, String(a.expectedVersion), a.doc, String(a.version), a.status, a.pendingScore, a.allowedFrom,
        ...eventArgs(a.events),
      ];
      const reply = evenWhenFull ? await runLuaWhenFull(redis, 'countersignCommitProposalWhenFull', args) : await runLua(redis, 'countersignCommitProposal', args);
      return Number(reply) === 1;
    },
    async appendEvents(k, events, evenWhenFull = false) {
      if (events.length === 0) return 0;
      const args = [k.audit, k.auditHead, ...eventArgs(events)];
      return Number(evenWhenFull ? await runLuaWhenFull(redis, 'countersignAppendEventsWhenFull', args) : await runLua(redis, 'countersignAppendEvents', args));
    },
    async sha256(text) {
      return String(await runLua(redis, 'countersignSha256', [text]));
    },
    async chainHash(prevHash, seq, digest) {
      return String(await runLua(redis, 'countersignChainHash', [prevHash, digest, String(seq)]));
    },
  };
}
