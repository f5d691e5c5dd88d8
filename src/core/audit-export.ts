import { z } from 'zod';
import type { AuditEvent } from './audit.ts';
import type { Checkpoint } from './audit-checkpoint.ts';
import { ValidationError } from './errors.ts';
import { showHiddenOneLine } from './visible-text.ts';

// What `countersign audit export` writes, one record per line, and `audit verify --offline` reads
// back. A SIEM keeps the entries with their place in the chain (seq, prev_hash, hash) and the
// signed checkpoints between them, so the copy outside countersign is itself evidence: anyone
// with the public keys can check it, and a deleted or edited entry shows.
//
//   {"record":"start", log, seq, hash}        the chain's hash before the first entry (seq 0 and the
//                                             genesis hash for a whole log); proven by the first
//                                             checkpoint after it
//   {"record":"entry", seq, id, at, type, proposal_id, agent, actor, data, digest, chain, prev_hash, hash}
//   {"record":"checkpoint", v, log, kind, seq, hash, at, kid, sig}   right after the entry it covers

export interface ExportStart {
  record: 'start';
  log: string;
  seq: number;
  hash: string;
}

export type ExportEntry = { record: 'entry'; id: string } & Omit<AuditEvent, 'prev_hash' | 'hash'> & { prev_hash: string; hash: string };

export type ExportCheckpoint = { record: 'checkpoint' } & Checkpoint;

export type ExportRecord = ExportStart | ExportEntry | ExportCheckpoint;

export type ExportFormat = 'jsonl' | 'cef';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['jsonl', 'cef'];

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a 64-character hex hash');
const seq = z.number().int().nonnegative();

const startSchema = z.object({ record: z.literal('start'), log: z.string(), seq, hash: hex64 }).strict();
const entrySchema = z
  .object({
    record: z.literal('entry'),
    seq: seq.min(1),
    id: z.string().regex(/^\d{1,20}-\d{1,20}$/, 'a stream id'),
    at: z.string(),
    type: z.string(),
    proposal_id: z.string().nullable(),
    agent: z.string().nullable(),
    actor: z.string(),
    data: z.record(z.string(), z.unknown()),
    digest: hex64,
    chain: z.union([z.literal(1), z.literal(2), z.literal(3)]),
    prev_hash: hex64,
    hash: hex64,
  })
  .strict();
// Checked loosely: a checkpoint's fields are judged by its signature, not here.
const checkpointSchema = z
  .object({ record: z.literal('checkpoint'), v: z.number(), log: z.string(), kind: z.string(), seq, hash: z.string(), at: z.string(), kid: z.string(), sig: z.string() })
  .strict();
const recordSchema = z.discriminatedUnion('record', [startSchema, entrySchema, checkpointSchema]);

/** Reads one line of a jsonl export; a bad line is an error naming its line number and field. */
export function parseExportLine(line: string, lineNo: number): ExportRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ValidationError(`line ${lineNo} is not JSON`, [{ path: `line ${lineNo}`, code: 'invalid_json', message: 'not JSON (is this a jsonl export?)' }]);
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // The file's own words (a key, a value) reach the terminal: shown, never run.
    const field = showHiddenOneLine(issue.path.join('.') || 'record').slice(0, 100);
    const message = showHiddenOneLine(issue.message).slice(0, 200);
    throw new ValidationError(`line ${lineNo}: ${field}: ${message}`, [{ path: `line ${lineNo}.${field}`, code: issue.code, message }]);
  }
  return parsed.data as ExportRecord;
}

// ---- CEF (ArcSight Common Event Format), for SIEMs that take it rather than JSON ----

const SEVERITY: Record<string, number> = {
  auth_failed: 7,
  request_rejected: 5,
  agent_revoked: 8,
  proposal_refused: 5,
  approval_refused: 5,
  channel_bind_refused: 5,
  token_revoked: 6,
  callback_failed: 4,
  card_failed: 4,
};

// Control characters, line and paragraph separators and bidi controls: written as \uXXXX, so a
// value can neither split a record nor reorder what an analyst reads.
const HIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const unhide = (text: string) => text.replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const header = (text: string) => unhide(text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' '));
const value = (text: string) => unhide(text.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r\n|\r|\n/g, '\\n'));

function cef(signature: string, name: string, severity: number, ext: [string, string | number | null][]): string {
  const fields = ext.filter(([, v]) => v !== null && v !== '').map(([k, v]) => `${k}=${value(String(v))}`);
  return `CEF:0|countersign|countersign|1|${header(signature)}|${header(name)}|${severity}|${fields.join(' ')}`;
}

/** One record as a CEF line: the event's fields in standard keys, the chain in labelled custom ones. */
export function toCefLine(r: ExportRecord): string {
  if (r.record === 'start') {
    return cef('audit_start', 'audit export starts here', 1, [['cs1Label', 'log'], ['cs1', r.log], ['cn1Label', 'seq'], ['cn1', r.seq], ['cs2Label', 'hash'], ['cs2', r.hash]]);
  }
  if (r.record === 'checkpoint') {
    return cef(`audit_checkpoint_${r.kind}`, `audit checkpoint (${r.kind})`, 1, [
      ['rt', Date.parse(r.at)],
      ['cs1Label', 'log'], ['cs1', r.log],
      ['cn1Label', 'seq'], ['cn1', r.seq],
      ['cs2Label', 'hash'], ['cs2', r.hash],
      ['cs3Label', 'kid'], ['cs3', r.kid],
      ['cs4Label', 'sig'], ['cs4', r.sig],
      ['cn2Label', 'v'], ['cn2', r.v],
    ]);
  }
  return cef(r.type, r.type.replace(/_/g, ' '), SEVERITY[r.type] ?? 3, [
    ['rt', Date.parse(r.at)],
    ['suser', r.actor],
    ['externalId', r.id],
    ['cs1Label', 'proposal'], ['cs1', r.proposal_id],
    ['cs2Label', 'agent'], ['cs2', r.agent],
    ['cn1Label', 'seq'], ['cn1', r.seq],
    ['cs3Label', 'hash'], ['cs3', r.hash],
    ['cs4Label', 'prev_hash'], ['cs4', r.prev_hash],
    ['cs5Label', 'digest'], ['cs5', r.digest],
    ['cn2Label', 'chain'], ['cn2', r.chain],
    ['msg', JSON.stringify(r.data)],
  ]);
}

export function formatExportRecord(r: ExportRecord, format: ExportFormat): string {
  return format === 'cef' ? toCefLine(r) : JSON.stringify(r);
}
