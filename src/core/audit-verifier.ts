import { ChainVerifier, GENESIS_HASH, type AuditEvent } from './audit.ts';
import type { Checkpoint } from './audit-checkpoint.ts';

// What `countersign audit verify` checks, over the log in Redis or over an export, fed in order:
// every entry's digest and the chain (ChainVerifier), every checkpoint's signature and that the
// chain has its hash at its seq, checkpoints that name entries no longer there, the outside copy
// (witness file or URL) the same way, and the gaps a sealer that kept its promises leaves none of.
// It is fed, not reading: the Redis and export sources (src/app/verify-audit.ts) differ only in
// where entries and checkpoints come from.

/** Checks checkpoint signatures: AUDIT_SIGNING_KEY's keys, or a published JWK set. */
export interface CheckpointKeys {
  verify(c: Checkpoint): Promise<boolean>;
}

/** Where a checkpoint came from: the log's own stream, or a copy kept outside it (`--against`). */
export type CheckpointSource = 'log' | 'outside';

export interface AuditVerifyOptions {
  /** Null: no key to check signatures with; any checkpoint then fails the verification. */
  keys: CheckpointKeys | null;
  /** The installation's name every checkpoint must carry (its key prefix); null: whatever the first one says. */
  log: string | null;
  /**
   * Where the log starts when not at seq 1: the seq before its first entry and the chain's hash
   * there. `signed`: the retention cut that says so (its signature is checked). An export's
   * start record is not signed: the first checkpoint after it proves it (a wrong start hash
   * makes every checkpoint after it mismatch).
   */
  anchor: { seq: number; hash: string; signed: Checkpoint | null } | null;
  /** The heartbeat the sealer promises (a checkpoint at least this often while countersign runs). */
  heartbeatMs: number;
  /** An entry not covered by a checkpoint after this long was sealed late (or the log was re-signed). */
  maxLagMs: number;
  /** The time now, for the age of the tail; null for an export (a snapshot). */
  now: number | null;
}

export interface VerifyProblem {
  /** The entry the problem is at, or the first one it concerns. */
  seq: number;
  /** The store's id for it (the Redis stream id), '(none)' when there is no such entry. */
  id: string;
  reason: string;
}

export interface AuditVerifyReport {
  ok: boolean;
  /** Entries checked (their digest and chain). */
  entries: number;
  /** The first seq the log holds (1, or the cut's seq + 1). */
  from: number;
  /** The last entry checked and the chain's hash after it. */
  last: { seq: number; id: string } | null;
  head: string;
  /** Checkpoints checked (signature and hash), from the log and from the outside copy. */
  checkpoints: number;
  outside: number;
  /** The newest checkpoint whose signature and hash hold; nothing after its seq is proven unedited. */
  lastGood: Checkpoint | null;
  /** The first problem found; verification stops there. */
  problem: VerifyProblem | null;
  /** The first entry after the last good checkpoint (where distrust starts), null when every entry is covered. */
  firstUnproven: { seq: number; id: string } | null;
  /** Entries after the last good checkpoint: how many, and the time of the oldest. */
  unsealed: { count: number; oldestAt: string | null };
  /** Things a sound log shows only after an outage or an upgrade, and a re-signed one always: reported, not failed. */
  warnings: string[];
}

const KINDS = new Set(['seal', 'heartbeat', 'cut']);
/** Hashes kept for checkpoints that arrive after the entries they cover (an export followed live). */
const RECENT_HASHES = 100_000;

export class AuditVerifier {
  private readonly chain: ChainVerifier;
  private readonly recent = new Map<number, string>();
  private readonly deferred = new Map<number, { c: Checkpoint; source: CheckpointSource }[]>();
  private log: string | null;
  private last: { seq: number; id: string; at: string } | null = null;
  private lastGood: Checkpoint | null = null;
  private lastCheckpointAt: number | null = null;
  private problem: VerifyProblem | null = null;
  private counts = { checkpoints: 0, outside: 0 };
  /** Times of entries checked but not yet covered by a good checkpoint, in seq order. */
  private uncovered: { seq: number; id: string; at: number; text: string }[] = [];
  private late = { count: 0, worstMs: 0, seq: 0 };
  private gaps: { from: string; to: string }[] = [];
  readonly from: number;

  constructor(private readonly o: AuditVerifyOptions) {
    const a = o.anchor;
    this.chain = new ChainVerifier(a === null ? undefined : { seq: a.seq, hash: a.hash });
    this.from = (a?.seq ?? 0) + 1;
    this.log = o.log;
    this.recent.set(this.from - 1, a?.hash ?? GENESIS_HASH);
  }

  get failed(): boolean {
    return this.problem !== null;
  }

  /** Checks the anchor's own signature (a cut the log starts after must be signed like any checkpoint). */
  async start(): Promise<void> {
    const c = this.o.anchor?.signed ?? null;
    if (c === null) return;
    const bad = await this.unsigned(c);
    if (bad !== null) this.fail(this.from, '(none)', `the retention cut the log starts after (seq ${c.seq}) ${bad}`);
    else if (c.kind !== 'cut' || c.seq !== this.from - 1 || c.hash !== this.o.anchor!.hash) this.fail(this.from, '(none)', `the retention cut record is not a cut at seq ${this.from - 1}`);
    else {
      this.counts.checkpoints += 1;
      this.good(c);
    }
  }

  /** The next entry in seq order. Entries at or below the anchor (a trim not finished) are skipped. */
  async entry(e: AuditEvent & { id: string }): Promise<void> {
    if (this.problem !== null) return;
    if (!Number.isSafeInteger(e.seq) || e.seq < 1) return this.fail(this.last?.seq ?? this.from, e.id, `an entry with seq "${String(e.seq).slice(0, 20)}" (not a whole number from 1): it was planted`);
    if (this.last === null) {
      // Leftovers of a trim not finished lie below the cut, oldest first, before the log proper.
      if (e.seq < this.from) return;
      if (e.seq > this.from) {
        return this.fail(
          this.from,
          e.id,
          this.o.anchor === null
            ? `the log starts at seq ${e.seq}, not 1, and no retention cut record says why: entries were deleted (or the cut record {prefix}:audit:cut was)`
            : `the log starts at seq ${e.seq} but the retention cut ends at seq ${this.from - 1}: entries in between are missing`,
        );
      }
    } else if (e.seq < this.from) {
      return this.fail(e.seq, e.id, `an entry with seq ${e.seq}, below where the log starts (${this.from}), after entry ${this.last.seq}: it was planted`);
    }
    const reason = this.chain.check(e);
    if (reason !== null) return this.fail(e.seq, e.id, reason);
    this.last = { seq: e.seq, id: e.id, at: e.at };
    this.recent.set(e.seq, this.chain.head);
    if (this.recent.size > RECENT_HASHES) this.recent.delete(this.recent.keys().next().value as number);
    const at = Date.parse(e.at);
    this.uncovered.push({ seq: e.seq, id: e.id, at: Number.isNaN(at) ? Infinity : at, text: e.at });
    for (const { c, source } of this.deferred.get(e.seq) ?? []) await this.against(c, source);
    this.deferred.delete(e.seq);
  }

  /** A checkpoint, from the log or from the outside copy; one for a seq not reached yet waits for it. */
  async checkpoint(c: Checkpoint, source: CheckpointSource): Promise<void> {
    if (this.problem !== null) return;
    // Below where the log starts: trimmed away, nothing left to hold it against.
    if (c.seq < this.from - 1) return;
    if (c.seq > (this.last?.seq ?? this.from - 1)) {
      const list = this.deferred.get(c.seq) ?? [];
      list.push({ c, source });
      this.deferred.set(c.seq, list);
      return;
    }
    await this.against(c, source);
  }

  /** Once every entry and checkpoint was fed. `head`: the writers' head record (undefined: an export has none). */
  finish(head?: { seq: number; hash: string | null } | null): AuditVerifyReport {
    const lastSeq = this.last?.seq ?? this.from - 1;
    const lastId = this.last?.id ?? '(none)';
    if (this.problem === null) {
      const [beyond] = [...this.deferred.keys()].sort((a, b) => a - b);
      if (beyond !== undefined) {
        const c = this.deferred.get(beyond)![0]!;
        const whose = c.source === 'outside' ? 'the outside copy has' : 'the log has';
        this.fail(lastSeq + 1, lastId, `${whose} a checkpoint signed at ${c.c.at} that covers entries up to seq ${beyond}, but the log ends at seq ${lastSeq}: the newest entries were deleted`);
      }
    }
    if (this.problem === null && head !== undefined) this.checkHead(head, lastSeq, lastId);
    const warnings: string[] = [];
    if (this.late.count > 0) {
      warnings.push(
        `${this.late.count} entr${this.late.count === 1 ? 'y was' : 'ies were'} sealed more than ${Math.round(this.o.maxLagMs / 1000)} s after being written (the longest ${Math.round(this.late.worstMs / 1000)} s, seq ${this.late.seq}): expected after an outage or an upgrade from before sealing; otherwise the log may have been re-signed after an edit (compare with the outside copy: --against)`,
      );
    }
    if (this.gaps.length > 0) {
      const first = this.gaps[0]!;
      warnings.push(`${this.gaps.length} gap${this.gaps.length === 1 ? '' : 's'} longer than twice the heartbeat (${Math.round(this.o.heartbeatMs / 1000)} s) between checkpoints, the first from ${first.from} to ${first.to}: countersign was stopped, or checkpoints were deleted`);
    }
    const unsealed = this.problem === null ? this.uncovered : [];
    const oldest = unsealed[0];
    if (this.o.now !== null && oldest !== undefined && this.o.now - oldest.at > this.o.maxLagMs) {
      warnings.push(`${unsealed.length} entr${unsealed.length === 1 ? 'y is' : 'ies are'} not covered by any checkpoint, the oldest written at ${oldest.text}: is countersign running? (it seals within about a second)`);
    }
    if (this.o.now !== null && this.lastCheckpointAt !== null && this.o.now - this.lastCheckpointAt > 2 * this.o.heartbeatMs) {
      warnings.push(`no checkpoint since ${new Date(this.lastCheckpointAt).toISOString()}: countersign is stopped, or sealing stopped (see its log)`);
    }
    if (this.problem === null && this.counts.checkpoints === 0 && this.last !== null) {
      warnings.push('no checkpoint covers any entry: nothing proves the log was not rewritten (is the sealer running? see AUDIT_SIGNING_KEY)');
    }
    const afterGood = this.lastGood?.seq ?? this.from - 1;
    const firstUnproven = this.firstAfter(afterGood);
    return {
      ok: this.problem === null,
      entries: this.chain.count,
      from: this.from,
      last: this.last === null ? null : { seq: this.last.seq, id: this.last.id },
      head: this.chain.head,
      checkpoints: this.counts.checkpoints,
      outside: this.counts.outside,
      lastGood: this.lastGood,
      problem: this.problem,
      firstUnproven,
      unsealed: { count: unsealed.length, oldestAt: oldest?.text ?? null },
      warnings,
    };
  }

  private firstAfter(seq: number): { seq: number; id: string } | null {
    const u = this.uncovered.find((x) => x.seq > seq);
    if (u !== undefined) return { seq: u.seq, id: u.id };
    if (this.problem !== null && this.problem.seq > seq) return { seq: seq + 1, id: this.problem.seq === seq + 1 ? this.problem.id : '(see above)' };
    return null;
  }

  private checkHead(head: { seq: number; hash: string | null } | null, lastSeq: number, lastId: string): void {
    if (head === null) {
      if (this.last !== null) this.fail(lastSeq + 1, lastId, `the log ends at seq ${lastSeq} but the head record is missing`);
      return;
    }
    if (head.seq > lastSeq) return this.fail(lastSeq + 1, lastId, `the log ends at seq ${lastSeq} but the head records seq ${head.seq}: entries after stream id ${lastId} are missing`);
    if (head.seq < lastSeq) return this.fail(lastSeq + 1, lastId, `the log ends at seq ${lastSeq} but the head records seq ${head.seq}: the head record was moved back`);
    // Only writers of steps 1 and 2 set the head's hash: it is checked while one of them wrote last.
    const legacy = this.chain.legacyHead;
    if (legacy !== null && head.hash !== legacy) this.fail(lastSeq, lastId, "the head record's hash does not match this entry's (the last): one of them was rewritten");
  }

  /** Null when `c` is signed by a known key, for this log, of a known kind; else what is wrong with it. */
  private async unsigned(c: Checkpoint): Promise<string | null> {
    if (this.o.keys === null) return 'cannot be checked: no public key (set AUDIT_SIGNING_KEY, or pass --keys with the published /.well-known/audit-keys.json)';
    if (!(await this.o.keys.verify(c))) return `does not verify against the public keys (kid "${String(c.kid).slice(0, 64)}"): it was altered, or signed by a key not given`;
    if (this.log === null) this.log = c.log;
    if (c.log !== this.log) return `belongs to another log ("${String(c.log).slice(0, 64)}", not "${this.log}")`;
    if (!KINDS.has(c.kind)) return `is of an unknown kind`;
    return null;
  }

  private async against(c: Checkpoint, source: CheckpointSource): Promise<void> {
    if (this.problem !== null) return;
    const where = source === 'outside' ? 'the outside copy' : 'the log';
    const bad = await this.unsigned(c);
    if (bad !== null) return this.fail(c.seq, this.idOf(c.seq), `the checkpoint at seq ${c.seq} in ${where} ${bad}`);
    const hash = this.recent.get(c.seq);
    if (hash === undefined) return this.fail(c.seq, this.idOf(c.seq), `the checkpoint at seq ${c.seq} in ${where} came too long after its entries to be checked`);
    if (hash !== c.hash) {
      return this.fail(
        (this.lastGood?.seq ?? this.from - 1) + 1,
        this.idOf((this.lastGood?.seq ?? this.from - 1) + 1),
        `the checkpoint at seq ${c.seq} in ${where}, signed at ${c.at}, does not match the log: entries after the last good checkpoint (seq ${this.lastGood?.seq ?? this.from - 1}) up to seq ${c.seq} were rewritten after they were signed`,
      );
    }
    if (source === 'outside') this.counts.outside += 1;
    else this.counts.checkpoints += 1;
    this.good(c);
  }

  private good(c: Checkpoint): void {
    const at = Date.parse(c.at);
    if (Number.isNaN(at)) return;
    if (this.lastGood === null || c.seq >= this.lastGood.seq) this.lastGood = c;
    if (this.lastCheckpointAt !== null && at - this.lastCheckpointAt > 2 * this.o.heartbeatMs) {
      this.gaps.push({ from: new Date(this.lastCheckpointAt).toISOString(), to: c.at });
    }
    if (this.lastCheckpointAt === null || at > this.lastCheckpointAt) this.lastCheckpointAt = at;
    // The entries it covers: sealed late when written long before it was signed.
    let i = 0;
    while (i < this.uncovered.length && this.uncovered[i]!.seq <= c.seq) {
      const lag = at - this.uncovered[i]!.at;
      if (lag > this.o.maxLagMs) {
        this.late.count += 1;
        if (lag > this.late.worstMs) this.late = { ...this.late, worstMs: lag, seq: this.uncovered[i]!.seq };
      }
      i += 1;
    }
    this.uncovered.splice(0, i);
  }

  private idOf(seq: number): string {
    return this.uncovered.find((u) => u.seq === seq)?.id ?? (this.last?.seq === seq ? this.last.id : '(see the seq)');
  }

  private fail(seq: number, id: string, reason: string): void {
    this.problem ??= { seq, id, reason };
  }
}
