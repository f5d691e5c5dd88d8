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

  // Checkpoints already given, at the seq of the last one (several can share a seq).
  let given = { seq: first - 1, sigs: new Set<string>() };
  const newCheckpoints = async (upTo: number): Promise<Checkpoint[]> => {
    const out: Checkpoint[] = [];
    for (;;) {
      const page = await seals.checkpoints(given.seq, 1000);
      const fresh = page.filter((c) => c.seq <= upTo && (c.seq > given.seq || !given.sigs.has(c.sig)));
      for (const c of fresh) {
        if (c.seq !== given.seq) given = { seq: c.seq, sigs: new Set() };
        given.sigs.add(c.sig);
        out.push(c);
      }
      if (page.length < 1000 || fresh.length === 0) return out;
    }
  };

  /** Entries after lastSeq up to `upTo`, each followed by the checkpoints at its seq. */
  async function* entriesThrough(upTo: number): AsyncGenerator<ExportRecord> {
    if (upTo <= lastSeq) return;
    const pending = await newCheckpoints(upTo);
    for await (const e of audit.scan(1000, { seq: lastSeq + 1 })) {
      if (e.seq > upTo) break;
      const hash = hashAfter(prev, e);
      yield entryRecord(e, prev, hash);
      prev = hash;
      lastSeq = e.seq;
      while (pending.length > 0 && pending[0]!.seq <= e.seq) yield { record: 'checkpoint', ...pending.shift()! };
    }
    for (const c of pending) yield { record: 'checkpoint', ...c };
  }

  if (o.follow === undefined) {
    yield* entriesThrough(Number.MAX_SAFE_INTEGER);
    return;
  }
  const { signal, pollMs } = o.follow;
  while (!signal.aborted) {
    const latest = await seals.latestCheckpoint();
    if (latest !== null && latest.seq >= lastSeq) {
      yield* entriesThrough(latest.seq);
      // Heartbeats and checkpoints at the seq reached (no new entry to carry them).
      for (const c of await newCheckpoints(lastSeq)) yield { record: 'checkpoint', ...c };
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, pollMs);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}
