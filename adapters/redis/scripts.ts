import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { canonicalJson } from '../../src/core/audit.ts';
import type { SealedAuditEventInput } from '../../src/core/audit.ts';
import { indexArg } from './audit-index.ts';

// The Lua sources are read once at import; a missing file should stop the process at start,
// not at the first proposal. Libraries are prepended as source text because Redis 7.0
// scripts cannot import anything (Functions could, but they are not replicated with the
// same ease across Sentinel/Cluster set-ups and need FUNCTION LOAD management).

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');

const SHA256_LIB = lua('sha256.lua');
const AUDIT_LIB = `${SHA256_LIB}\n${lua('audit-append.lua')}`;

const DEFINITIONS = {
  countersignCreateProposal: { numberOfKeys: 6, lua: `${AUDIT_LIB}\n${lua('create-proposal.lua')}` },
  countersignCommitProposal: { numberOfKeys: 5, lua: `${AUDIT_LIB}\n${lua('commit-proposal.lua')}` },
  countersignAppendEvents: { numberOfKeys: 2, lua: `${AUDIT_LIB}\n${lua('append-events.lua')}` },
  // Let tests compare the Lua SHA-256 and chain step with node:crypto; they touch no key.
  countersignSha256: { numberOfKeys: 0, lua: `${SHA256_LIB}\nreturn sha256(ARGV[1])` },
  countersignChainHash: { numberOfKeys: 0, lua: `${SHA256_LIB}\nreturn chain_hash(ARGV[1], ARGV[2], ARGV[3])` },
} as const;

type ScriptName = keyof typeof DEFINITIONS;
type Client = Redis | Cluster;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** The number of ARGV entries per event; must match EVENT_ARITY in audit-append.lua. */
export const EVENT_ARITY = 8;

const defined = new WeakSet<Client>();

function ensureDefined(redis: Client): void {
  if (defined.has(redis)) return;
  for (const [name, def] of Object.entries(DEFINITIONS)) {
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (after a restart or failover).
    redis.defineCommand(name, { numberOfKeys: def.numberOfKeys, lua: def.lua });
  }
  defined.add(redis);
}

function call(redis: Client, name: ScriptName, args: (string | number)[]): Promise<unknown> {
  const fn = (redis as unknown as Record<ScriptName, ScriptFn>)[name];
  return fn.apply(redis, args);
}

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
  events: readonly SealedAuditEventInput[];
}

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
  createProposal(keys: CreateProposalKeys, args: CreateProposalArgs): Promise<{ created: boolean; id: string }>;
  commitProposal(keys: CommitProposalKeys, args: CommitProposalArgs): Promise<boolean>;
  appendEvents(keys: { audit: string; auditHead: string }, events: readonly SealedAuditEventInput[]): Promise<number>;
  /** Test hook: the Lua SHA-256 of `text` (UTF-8 bytes), hex. */
  sha256(text: string): Promise<string>;
  /** Test hook: the Lua audit chain step, to compare with core/audit.ts chainHash. */
  chainHash(prevHash: string, seq: number, digest: string): Promise<string>;
}

export function redisScripts(redis: Client): CountersignScripts {
  ensureDefined(redis);
  return {
    async createProposal(k, a) {
      const reply = await call(redis, 'countersignCreateProposal', [
        k.proposal, k.idempotency, k.pending, k.statusCounts, k.audit, k.auditHead,
        a.id, a.doc, String(a.version), a.status, a.agent, a.pendingScore, String(a.idempotencyTtlSeconds),
        ...eventArgs(a.events),
      ]);
      if (!Array.isArray(reply) || reply.length !== 2) throw new Error('countersign create-proposal: unexpected reply');
      return { created: Number(reply[0]) === 1, id: String(reply[1]) };
    },
    async commitProposal(k, a) {
      const reply = await call(redis, 'countersignCommitProposal', [
        k.proposal, k.pending, k.statusCounts, k.audit, k.auditHead,
        a.id, String(a.expectedVersion), a.doc, String(a.version), a.status, a.pendingScore, a.allowedFrom,
        ...eventArgs(a.events),
      ]);
      return Number(reply) === 1;
    },
    async appendEvents(k, events) {
      if (events.length === 0) return 0;
      return Number(await call(redis, 'countersignAppendEvents', [k.audit, k.auditHead, ...eventArgs(events)]));
    },
    async sha256(text) {
      return String(await call(redis, 'countersignSha256', [text]));
    },
    async chainHash(prevHash, seq, digest) {
      return String(await call(redis, 'countersignChainHash', [prevHash, digest, String(seq)]));
    },
  };
}
