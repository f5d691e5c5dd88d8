import { searchAudit, MAX_AUDIT_LIMIT } from '../app/search-audit.ts';
import { parseDuration } from '../core/duration.ts';
import { showHiddenOneLine } from '../core/visible-text.ts';
import type { AuditQuery, StoredAuditEvent } from '../core/ports.ts';
import { STATUSES, type Status } from '../core/proposal.ts';
import { auditVerify, openAuditLog } from '../wiring/cli-commands.ts';
import { usage, type Env, type Flags, type Io } from './io.ts';

// `audit search` (the API's filters as flags) and `audit verify` (the hash chain).

export const AUDIT_SEARCH_FLAGS = ['agent', 'actor', 'status', 'proposal', 'since', 'until', 'limit', 'json'] as const;

function time(name: string, text: string | undefined, now: number): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(ms|d|h|m|s)/.test(text)) return now - parseDuration(text);
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text);
  if (Number.isNaN(ms)) throw usage(`--${name} "${text}": write a duration (24h, 7d), a date (2026-01-31) or unix seconds`);
  return ms;
}

export function auditQueryFromFlags(flags: Flags, now: number): AuditQuery {
  const limit = Number(flags.string('limit') ?? '50');
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT) throw usage(`--limit must be a whole number from 1 to ${MAX_AUDIT_LIMIT}`);
  const query: AuditQuery = { words: flags.positionals, limit };
  const status = flags.string('status');
  if (status !== undefined) {
    if (!(STATUSES as readonly string[]).includes(status)) throw usage(`--status must be one of ${STATUSES.join(', ')}`);
    query.status = status as Status;
  }
  const agent = flags.string('agent');
  const actor = flags.string('actor');
  const proposal = flags.string('proposal');
  const since = time('since', flags.string('since'), now);
  const until = time('until', flags.string('until'), now);
  if (agent !== undefined) query.agent = agent;
  if (actor !== undefined) query.actor = actor;
  if (proposal !== undefined) query.proposalId = proposal;
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  return query;
}

/** One entry per terminal line; agents' and people's words inside it shown, never run (escape sequences, bidi). */
function line(e: StoredAuditEvent): string {
  const data = JSON.stringify(e.data);
  return showHiddenOneLine([e.at, e.type.padEnd(18), e.actor.padEnd(22), e.proposal_id ?? '-', data.length > 160 ? `${data.slice(0, 160)}…` : data].join('  '));
}

export async function runAuditSearch(flags: Flags, env: Env, io: Io): Promise<number> {
  const query = auditQueryFromFlags(flags, Date.now());
  const { audit, close } = await openAuditLog(env);
  try {
    // The CLI reads Redis directly, so it sees what the admin token would.
    const result = await searchAudit(audit, { kind: 'admin' }, query);
    if (flags.has('json')) io.out(JSON.stringify(result, null, 2));
    else {
      for (const e of result.events) io.out(line(e));
      io.err(`${result.events.length} entr${result.events.length === 1 ? 'y' : 'ies'}, newest first${result.next === null ? '' : ' (more: narrow the search or raise --limit)'}`);
    }
    return 0;
  } finally {
    await close();
  }
}

export async function runAuditVerify(env: Env, io: Io): Promise<number> {
  const verdict = await auditVerify(env, io.err);
  if (verdict.ok) {
    io.out(`audit chain ok: ${verdict.count} entries, head ${verdict.head}`);
    return 0;
  }
  io.out(`audit chain BROKEN at seq ${verdict.seq} (stream id ${verdict.id}): ${verdict.reason}; ${verdict.count} entries before it verified`);
  return 1;
}
