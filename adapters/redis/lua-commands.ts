import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

// The one place that reads the Lua files and defines them as commands on a client. The
// sources are read once at import: a missing file stops the process at start, not at the
// first proposal. Libraries are prepended as source text because Redis 7.0 scripts cannot
// import anything (Functions could, but they are not replicated with the same ease across
// Sentinel/Cluster set-ups and need FUNCTION LOAD management).
//
// The files stay in ./lua next to this module: the build copies them beside the compiled
// code, and they are found relative to import.meta.url from either place.

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');

const AUDIT_LIB = lua('audit-append.lua');
const COMMIT_PROPOSAL = `${AUDIT_LIB}\n${lua('commit-proposal.lua')}`;
const APPEND_EVENTS = `${AUDIT_LIB}\n${lua('append-events.lua')}`;
const TOKEN_REVOKE = lua('token-revoke.lua');
const AGENT_REVOKE = lua('agent-revoke.lua');

// Redis 7 runs a script whose first line declares allow-oom even when maxmemory is reached
// (noeviction), where any other script's first write is refused. Only the kill switch's own
// writes use these `…WhenFull` variants (WriteOptions in src/core/ports.ts): the agent to stop
// may be the one filling Redis. They may take Redis a little over maxmemory, by design.
const whenFull = (source: string) => `#!lua flags=allow-oom\n${source}`;

// `numberOfKeys: null`: the caller passes the count first (the retention and index scripts
// take their own keys and then the search index lists of a batch).
const COMMANDS = {
  countersignCreateProposal: { numberOfKeys: 16, lua: `${AUDIT_LIB}\n${lua('create-proposal.lua')}` },
  countersignCommitProposal: { numberOfKeys: 13, lua: COMMIT_PROPOSAL },
  countersignCommitProposalWhenFull: { numberOfKeys: 13, lua: whenFull(COMMIT_PROPOSAL) },
  countersignNudgeReschedule: { numberOfKeys: 2, lua: `${AUDIT_LIB}\n${lua('nudge-reschedule.lua')}` },

  countersignAppendEvents: { numberOfKeys: 2, lua: APPEND_EVENTS },
  countersignAppendEventsWhenFull: { numberOfKeys: 2, lua: whenFull(APPEND_EVENTS) },
  countersignTokenSave: { numberOfKeys: 4, lua: lua('token-save.lua') },
  countersignTokenRedeem: { numberOfKeys: 1, lua: lua('token-redeem.lua') },
  countersignTokenRevoke: { numberOfKeys: 4, lua: TOKEN_REVOKE },
  countersignTokenRevokeWhenFull: { numberOfKeys: 4, lua: whenFull(TOKEN_REVOKE) },
  countersignTokenRestore: { numberOfKeys: 2, lua: lua('token-restore.lua') },
  countersignAgentRevoke: { numberOfKeys: 2, lua: AGENT_REVOKE },
  countersignAgentRevokeWhenFull: { numberOfKeys: 2, lua: whenFull(AGENT_REVOKE) },
  countersignAgentRestore: { numberOfKeys: 2, lua: lua('agent-restore.lua') },
  countersignCardPostClaim: { numberOfKeys: 3, lua: `${AUDIT_LIB}\n${lua('card-post-claim.lua')}` },
  countersignCardPostDone: { numberOfKeys: 5, lua: `${AUDIT_LIB}\n${lua('card-post-done.lua')}` },
  countersignCardPostRelease: { numberOfKeys: 1, lua: lua('card-post-release.lua') },
  countersignCredentialReserve: { numberOfKeys: 3, lua: lua('credential-reserve.lua') },
  countersignCredentialPickupSave: { numberOfKeys: 1, lua: lua('credential-pickup-save.lua') },
  countersignCredentialPickupTake: { numberOfKeys: 1, lua: lua('credential-pickup-take.lua') },
  countersignCredentialRevoke: { numberOfKeys: 3, lua: lua('credential-revoke.lua') },
  countersignIdempotencyForget: { numberOfKeys: 1, lua: lua('idempotency-forget.lua') },
  countersignCountInWindow: { numberOfKeys: 1, lua: lua('count-in-window.lua') },
  countersignLimitNoticeRefused: { numberOfKeys: 3, lua: lua('limit-notice-refused.lua') },
  countersignLimitNoticePosted: { numberOfKeys: 2, lua: lua('limit-notice-posted.lua') },
  countersignLimitNoticeClaim: { numberOfKeys: 2, lua: lua('limit-notice-claim.lua') },
  countersignLimitNoticeRetry: { numberOfKeys: 2, lua: lua('limit-notice-retry.lua') },
  countersignAuditSeal: { numberOfKeys: 3, lua: lua('audit-seal.lua') },
  countersignAwaySet: { numberOfKeys: 3, lua: `${AUDIT_LIB}\n${lua('away-set.lua')}` },
  countersignAwayClear: { numberOfKeys: 3, lua: `${AUDIT_LIB}\n${lua('away-clear.lua')}` },
  countersignAuditRetention: { numberOfKeys: null, lua: lua('audit-retention.lua') },
  countersignAuditIndex: { numberOfKeys: null, lua: lua('audit-index.lua') },
  countersignLimitPendingPrune: { numberOfKeys: null, lua: lua('limit-pending-prune.lua') },
} as const;

export type LuaCommand = keyof typeof COMMANDS;

type Client = Redis | Cluster;
type CommandFn = (...args: (string | number)[]) => Promise<unknown>;

const defined = new WeakSet<Client>();

/** Defines every command on `redis`, once per client, whoever asks first. */
export function defineLuaCommands(redis: Client): void {
  if (defined.has(redis)) return;
  for (const [name, def] of Object.entries(COMMANDS)) {
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (after a restart or failover).
    redis.defineCommand(name, def.numberOfKeys === null ? { lua: def.lua } : { numberOfKeys: def.numberOfKeys, lua: def.lua });
  }
  defined.add(redis);
}

/** Runs one command: its KEYS first (as many as it declares, or their count first when it declares none), then its ARGV. */
export function runLua(redis: Client, name: LuaCommand, args: readonly (string | number)[]): Promise<unknown> {
  defineLuaCommands(redis);
  const fn = (redis as unknown as Record<LuaCommand, CommandFn>)[name];
  return fn.apply(redis, args as (string | number)[]);
}

type WhenFullCommand = Extract<LuaCommand, `${string}WhenFull`>;

/**
 * Runs a `…WhenFull` variant. A Redis before 7.0 cannot read its first line (it fails to
 * compile): there the plain script runs instead, and a full Redis refuses it as it refuses
 * everything else.
 */
export async function runLuaWhenFull(redis: Client, name: WhenFullCommand, args: readonly (string | number)[]): Promise<unknown> {
  try {
    return await runLua(redis, name, args);
  } catch (e) {
    if (!(e instanceof Error && /Error compiling script.*near '#'/s.test(e.message))) throw e;
    return runLua(redis, name.slice(0, -'WhenFull'.length) as LuaCommand, args);
  }
}

/** INCR with a window that is set in the same step (count-in-window.lua); the new count. */
export async function countInWindow(redis: Client, key: string, windowSeconds: number): Promise<number> {
  return Number(await runLua(redis, 'countersignCountInWindow', [key, windowSeconds]));
}
