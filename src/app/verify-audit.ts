import { GENESIS_HASH } from '../core/audit.ts';
import type { Checkpoint } from '../core/audit-checkpoint.ts';
import { parseExportLine } from '../core/audit-export.ts';
import { AuditVerifier, type AuditVerifyReport, type CheckpointKeys } from '../core/audit-verifier.ts';
import type { AuditLog, AuditSeals } from '../core/ports.ts';
import { DEFAULT_AUDIT_SEALER_TUNING } from './seal-audit.ts';

// `countersign audit verify`, over the log in the store or over an export (`--offline`): feeds
// core/audit-verifier.ts entries and checkpoints in seq order, and the outside copy (`--against`).

export interface VerifyAuditOptions {
  keys: CheckpointKeys | null;
  /** Checkpoints kept outside the store (the witness file or URL), any order. */
  outside?: readonly Checkpoint[];
  /** The time now; null for an export. */
  now: number | null;
  /** What the sealer promises; its defaults unless the installation changed them. */
  heartbeatMs?: number;
  maxLagMs?: number;
  onProgress?: (entries: number) => void;
}

/**
 * An entry left uncovered longer than this was sealed late: a checkpoint is due a second after
 * an entry, and a dead leader's lease (5 s) plus a follower's poll (1 s) can add to it; the rest
 * is room for a loaded machine.
 */
export const DEFAULT_MAX_LAG_MS = 60_000;

function verifierFor(o: VerifyAuditOptions, log: string | null, anchor: ConstructorParameters<typeof AuditVerifier>[0]['anchor']): AuditVerifier {
  return new AuditVerifier({
    keys: o.keys,
    log,
    anchor,
    heartbeatMs: o.heartbeatMs ?? DEFAULT_AUDIT_SEALER_TUNING.heartbeatMs,
    maxLagMs: o.maxLagMs ?? DEFAULT_MAX_LAG_MS,
    now: o.now,
  });
}

/** Every checkpoint from `fromSeq` on, in order, a page at a time. */
export async function* checkpointsFrom(seals: AuditSeals, fromSeq: number, page = 1000): AsyncIterable<Checkpoint> {
  let from: { seq: number } | { after: string } = { seq: fromSeq };
  for (;;) {
    const { checkpoints, next } = await seals.checkpointPage(from, page);
    yield* checkpoints;
    if (next === null) return;
    from = { after: next };
  }
}

/**
 * The log in the store: from its retention cut (or seq 1), with its checkpoints, head record and
 * the outside copy. A retention run that cuts while this reads (a running countersign trims every
 * few minutes) makes the log start later than the cut read first: read again from the new cut.
 */
export async function verifyStoredAudit(audit: AuditLog, seals: AuditSeals, log: string, o: VerifyAuditOptions): Promise<AuditVerifyReport> {
  for (let attempt = 1; ; attempt++) {
    const cut = await seals.cut();
    const report = await verifyFromCut(audit, seals, log, o, cut);
    if (report.ok || attempt === 3 || (await seals.cut())?.seq === cut?.seq) return report;
  }
}

async function verifyFromCut(audit: AuditLog, seals: AuditSeals, log: string, o: VerifyAuditOptions, cut: Checkpoint | null): Promise<AuditVerifyReport> {
  const v = verifierFor(o, log, cut === null ? null : { seq: cut.seq, hash: cut.hash, signed: cut });
  await v.start();
  for (const c of o.outside ?? []) await v.checkpoint(c, 'outside');
  const checkpoints = checkpointsFrom(seals, v.from - 1)[Symbol.asyncIterator]();
  let next = await checkpoints.next();
  const feedThrough = async (seq: number) => {
    while (!next.done && next.value.seq <= seq && !v.failed) {
      await v.checkpoint(next.value, 'log');
      next = await checkpoints.next();
    }
  };
  await feedThrough(v.from - 1);
  let n = 0;
  for await (const e of audit.scan(1000)) {
    await v.entry(e);
    if (v.failed) break;
    await feedThrough(e.seq);
    n += 1;
    if (o.onProgress !== undefined && n % 10_000 === 0) o.onProgress(n);
  }
  // Checkpoints past the last entry name entries that are gone.
  if (!v.failed) await feedThrough(Number.MAX_SAFE_INTEGER);
  return v.finish(v.failed ? undefined : await audit.head());
}

/** An export (`countersign audit export` jsonl), line by line, without the store. */
export async function verifyExportedAudit(lines: AsyncIterable<string>, o: VerifyAuditOptions): Promise<AuditVerifyReport> {
  let v: AuditVerifier | null = null;
  let lineNo = 0;
  const before: Checkpoint[] = [];
  for await (const raw of lines) {
    lineNo += 1;
    const line = raw.trim();
    if (line === '') continue;
    const r = parseExportLine(line, lineNo);
    if (r.record === 'start') {
      if (v !== null) throw new Error(`line ${lineNo}: a second start record (two exports joined?): verify each export on its own`);
      const anchor = r.seq === 0 ? null : { seq: r.seq, hash: r.hash, signed: null };
      if (r.seq === 0 && r.hash !== GENESIS_HASH) throw new Error(`line ${lineNo}: a start at seq 0 must carry the genesis hash`);
      v = verifierFor(o, r.log, anchor);
      await v.start();
      for (const c of o.outside ?? []) await v.checkpoint(c, 'outside');
      continue;
    }
    if (v === null) {
      if (r.record === 'checkpoint') {
        before.push(r);
        continue;
      }
      throw new Error(`line ${lineNo}: an entry before the start record: this is not an export of countersign audit export`);
    }
    if (r.record === 'checkpoint') {
      const { record: _, ...c } = r;
      await v.checkpoint(c, 'log');
    } else {
      const { record: _, ...e } = r;
      await v.entry(e);
    }
    if (v.failed) break;
    if (o.onProgress !== undefined && lineNo % 10_000 === 0) o.onProgress(lineNo);
  }
  if (v === null) throw new Error(before.length > 0 ? 'the export has checkpoints but no start record' : 'the export is empty (no start record)');
  const report = v.finish();
  // An export ends at a checkpoint (src/app/export-audit.ts): entries after the last one were added
  // to the copy, or the checkpoints after them were taken out.
  if (report.ok && report.firstUnproven !== null) {
    const n = report.unsealed.count;
    return {
      ...report,
      ok: false,
      problem: { ...report.firstUnproven, reason: `${n} entr${n === 1 ? 'y follows' : 'ies follow'} the last checkpoint: an export ends at a checkpoint, so ${n === 1 ? 'it was' : 'they were'} added to the copy, or the checkpoints after ${n === 1 ? 'it' : 'them'} taken out` },
    };
  }
  return report;
}
