import { GENESIS_HASH, chainHash, type AuditEvent } from '../core/audit.ts';
import type { Checkpoint } from '../core/audit-checkpoint.ts';
import type { ExportEntry, ExportRecord } from '../core/audit-export.ts';
import type { AuditLog, AuditScanFrom, AuditSeals, StoredAuditEvent } from '../core/ports.ts';

// `countersign audit export`: the log as records a SIEM keeps (core/audit-export.ts): a start
// record (the chain's hash before the first entry), every entry with its seq, prev_hash and hash
// computed here, and each signed checkpoint right after the entry it covers. `--follow` goes on
// with entries as checkpoints cover them, so the checkpoint after an entry is never more than a
// sealing interval behind it and always in its place.

export interface ExportAuditOptions {
  /** Start at this seq (resuming an export) or at entries from about this time on. */
  from?: AuditScanFrom;
  /** Keep going until `signal` aborts, looking for new checkpoints every `pollMs`. */
  follow?: { signal: AbortSignal; pollMs: number };
}

/** The hash after `e`, chained from `prev`: computed for chain step 3, as stored for steps 1 and 2. */
function hashAfter(prev: string, e: AuditEvent): string {
  return e.chain === 3 ? chainHash(prev, e.seq, e.digest) : (e.hash ?? '');
}

function entryRecord(e: StoredAuditEvent, prev: string, hash: string): ExportEntry {
  const { prev_hash: _p, hash: _h, ...rest } = e;
  return { record: 'entry', ...rest, prev_hash: e.chain === 3 ? prev : (e.prev_hash ?? ''), hash };
}

/** The newest checkpoint at or below `seq` (and at or above `floor`), looked for among the few thousand seqs below. */
async function checkpointAtOrBelow(seals: AuditSeals, seq: number, floor: number): Promise<Checkpoint | null> {
  const list = await seals.checkpoints(Math.max(floor, seq - 5000), 20_000);
  return list.filter((c) => c.seq <= seq).at(-1) ?? null;
}

export async function* exportAudit(audit: AuditLog, seals: AuditSeals, log: string, o: ExportAuditOptions = {}): AsyncGenerator<ExportRecord> {
  const cut = await seals.cut();
  const floor = cut?.seq ?? 0;
  // The first seq to export.
  let first = floor + 1;
  if (o.from?.seq !== undefined) first = Math.max(first, o.from.seq);
  else if (o.from?.time !== undefined) {
    let found: number | null = null;
    for await (const e of audit.scan(1, { time: o.from.time })) {
      found = e.seq;
      break;
    }
    first = Math.max(first, found ?? (await seals.headSeq()) + 1);
  }

  // The chain's hash before `first`: from the cut or a checkpoint below it, then the entries in
  // between (read, not exported). The verifier of the export trusts it only once a checkpoint
  // after it matches.
  let anchor = { seq: floor, hash: cut?.hash ?? GENESIS_HASH };
  if (first - 1 > floor) {
    const c = await checkpointAtOrBelow(seals, first - 1, floor);
    if (c !== null && c.seq > floor) anchor = { seq: c.seq, hash: c.hash };
  }
  let prev = anchor.hash;
  let lastSeq = anchor.seq;
  if (first - 1 > anchor.seq) {
    for await (const e of audit.scan(1000, { seq: anchor.seq + 1 })) {
      if (e.seq >= first) break;
      prev = hashAfter(prev, e);
      lastSeq = e.seq;
    }
    if (lastSeq !== first - 1) first = lastSeq + 1;
  }
  yield { record: 'start', log, seq: first - 1, hash: prev };
  if (cut !== null && cut.seq === first - 1) yield { record: 'checkpoint', ...cut };

  // Where reading checkpoints goes on: by position, since an idle log holds many heartbeats at one seq.
  let cursor: { seq: number } | { after: string } = { seq: first - 1 };
  /** The checkpoints not given yet, up to those at seq `upTo`. */
  const newCheckpoints = async (upTo: number): Promise<Checkpoint[]> => {
    const out: Checkpoint[] = [];
    for (;;) {
      const page = await seals.checkpointPage(cursor, 1000);
      for (const [i, c] of page.checkpoints.entries()) {
        if (c.seq > upTo) return out;
        // A checkpoint below the first entry given (the cut trimmed the rest) proves nothing here.
        if (c.seq >= first - 1) out.push(c);
        cursor = { after: page.ids[i]! };
      }
      if (page.next === null) return out;
    }
  };

  /** Entries after lastSeq up to `upTo`, each followed by the checkpoints at its seq. */
  async function* entriesThrough(upTo: number): AsyncGenerator<ExportRecord> {
    const pending = await newCheckpoints(upTo);
    while (pending.length > 0 && pending[0]!.seq <= lastSeq) yield { record: 'checkpoint', ...pending.shift()! };
    if (upTo <= lastSeq) return;
    for await (const e of audit.scan(1000, { seq: lastSeq + 1 })) {
      if (e.seq > upTo) break;
      // A gap: a retention run cut under this export (or entries are missing). What follows would not
      // chain: stop, and let whoever runs the export resume from the last seq it has.
      if (e.seq !== lastSeq + 1) throw new ExportGap(lastSeq, e.seq);
      const hash = hashAfter(prev, e);
      yield entryRecord(e, prev, hash);
      prev = hash;
      lastSeq = e.seq;
      while (pending.length > 0 && pending[0]!.seq <= e.seq) yield { record: 'checkpoint', ...pending.shift()! };
    }
    if (lastSeq < upTo) throw new ExportGap(lastSeq, null);
    for (const c of pending) yield { record: 'checkpoint', ...c };
  }

  // Up to the newest checkpoint only: an export ends at a checkpoint, so that everything in it is
  // proven and anything after the last checkpoint in a copy is suspect. The unsealed tail (normally
  // under a second) comes with the next run or, with --follow, a moment later.
  const signal = o.follow?.signal;
  for (;;) {
    const latest = await seals.latestCheckpoint();
    if (latest !== null && latest.seq >= lastSeq) yield* entriesThrough(latest.seq);
    if (signal === undefined || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, o.follow!.pollMs);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    if (signal.aborted) return;
  }
}

/** The export cannot go on in order: entries after `lastSeq` are gone (a retention cut, or deleted). */
export class ExportGap extends Error {
  constructor(readonly lastSeq: number, readonly found: number | null) {
    super(
      found === null
        ? `the log ends before the newest checkpoint after seq ${lastSeq}: entries are missing (run countersign audit verify)`
        : `the log jumps from seq ${lastSeq} to seq ${found} (a retention cut during the export, or deleted entries): resume with --after-seq ${lastSeq}, and run countersign audit verify`,
    );
    this.name = 'ExportGap';
  }
}
