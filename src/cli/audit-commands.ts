import { searchAudit, MAX_AUDIT_LIMIT } from '../app/search-audit.ts';
import { parseDuration } from '../core/duration.ts';
import { showHiddenOneLine } from '../core/visible-text.ts';
import type { AuditQuery, StoredAuditEvent } from '../core/ports.ts';
import { STATUSES, type Status } from '../core/proposal.ts';
import { openAuditLog } from '../wiring/cli-commands.ts';
import { auditExport, auditVerify } from '../wiring/audit-commands.ts';
import { EXPORT_FORMATS, formatExportRecord, type ExportFormat } from '../core/audit-export.ts';
import type { AuditVerifyReport } from '../core/audit-verifier.ts';
import { usage, type Env, type Flags, type Io } from './io.ts';

// `audit search` (the API's filters as flags), `audit verify` (the chain, the signed checkpoints,
// an outside copy) and `audit export` (records for a SIEM).

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

export const AUDIT_VERIFY_FLAGS = ['keys', 'against', 'offline', 'json'] as const;
export const AUDIT_EXPORT_FLAGS = ['since', 'after-seq', 'follow', 'format'] as const;

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export async function runAuditVerify(flags: Flags, env: Env, io: Io): Promise<number> {
  const against = flags.string('against');
  const keys = flags.string('keys');
  const offline = flags.string('offline');
  const r: AuditVerifyReport = await auditVerify(env, {
    ...(against === undefined ? {} : { against }),
    ...(keys === undefined ? {} : { keys }),
    ...(offline === undefined ? {} : { offline }),
    onProgress: (n) => io.err(`verified ${n} entries…`),
  });
  if (flags.has('json')) {
    io.out(JSON.stringify(r, null, 2));
    return r.ok ? 0 : 1;
  }
  // Ids, kids and times come from the store or the file checked: shown, never run.
  const say = (line: string) => io.out(showHiddenOneLine(line));
  const what = offline === undefined ? 'audit log' : `export ${offline}`;
  const span = r.last === null ? `no entries${r.from > 1 ? ` (all up to seq ${r.from - 1} trimmed by retention)` : ''}` : `${plural(r.entries, 'entry', 'entries')} (seq ${r.from} to ${r.last.seq})`;
  const signed = `${plural(r.checkpoints, 'signed checkpoint', 'signed checkpoints')}${against === undefined ? '' : `, ${r.outside} from the outside copy`}`;
  if (r.ok) {
    say(`${what} ok: ${span}, ${signed}, head ${r.head}`);
    if (r.lastGood !== null) say(`the last good checkpoint covers seq ${r.lastGood.seq} (${r.lastGood.kind}, signed at ${r.lastGood.at})`);
    if (r.firstUnproven !== null) say(`not yet covered by a checkpoint: ${plural(r.unsealed.count, 'entry', 'entries')} from seq ${r.firstUnproven.seq} (stream id ${r.firstUnproven.id})`);
  } else {
    const p = r.problem!;
    say((`${what} BROKEN at seq ${p.seq} (stream id ${p.id}): ${p.reason}`));
    say(`${span} checked, ${signed} held`);
    say(
      r.lastGood === null
        ? 'no checkpoint holds: nothing in the log is proven'
        : `the last good checkpoint covers seq ${r.lastGood.seq} (${r.lastGood.kind}, signed at ${r.lastGood.at}); distrust everything from seq ${r.lastGood.seq + 1}${r.firstUnproven === null ? '' : ` (stream id ${r.firstUnproven.id})`}`,
    );
  }
  for (const w of r.warnings) io.err(showHiddenOneLine(`warning: ${w}`));
  return r.ok ? 0 : 1;
}

export async function runAuditExport(flags: Flags, env: Env, io: Io, stop: AbortSignal): Promise<number> {
  const format = (flags.string('format') ?? 'jsonl') as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) throw usage(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  const afterSeq = flags.string('after-seq');
  if (afterSeq !== undefined && !/^\d{1,15}$/.test(afterSeq)) throw usage('--after-seq must be a whole number (the seq of the last entry you already have)');
  const since = time('since', flags.string('since'), Date.now());
  if (afterSeq !== undefined && since !== undefined) throw usage('give --since or --after-seq, not both');
  const from = afterSeq !== undefined ? { seq: Number(afterSeq) + 1 } : since !== undefined ? { time: since } : undefined;
  const n = await auditExport(env, { ...(from === undefined ? {} : { from }), ...(flags.has('follow') ? { follow: { signal: stop, pollMs: 500 } } : {}) }, (r) =>
    io.out(formatExportRecord(r, format)),
  );
  io.err(`${plural(n, 'entry', 'entries')} exported`);
  return 0;
}
