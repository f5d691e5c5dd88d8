import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditSigner } from '../../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../../adapters/tokens/jwt-signer.ts';
import { createAuditRetention, type AuditRetentionTuning } from '../../../src/app/audit-retention.ts';
import { createAuditSealer } from '../../../src/app/seal-audit.ts';
import { chainHash } from '../../../src/core/audit.ts';
import type { AuditSigner, Checkpoint } from '../../../src/core/audit-checkpoint.ts';
import type { AuditSeals } from '../../../src/core/audit-seal-ports.ts';
import { auditEvents } from '../../contracts/audit-seals.contract.ts';
import { createMemoryAuditSealMetrics, createMemoryWitness } from '../../helpers/memory/audit-sealer-recorders.ts';
import { createMemoryAuditSeals, type MemoryAuditSeals } from '../../helpers/memory/audit-seals.ts';
import { T0, createManualClock, type ManualClock } from '../../helpers/memory/clock.ts';
import { createMemoryLogger } from '../../helpers/memory/logger.ts';

// Retention on the in-memory store and a manual clock: where it cuts (only at a signed
// checkpoint older than the retention, never at one that does not verify), that only the
// sealer's lease holder writes, and that a run cut short anywhere is finished by the next.

const RETENTION = 60_000;
let signer: AuditSigner;
let otherSigner: AuditSigner;
beforeAll(async () => {
  signer = await createAuditSigner(await generateSigningKey());
  otherSigner = await createAuditSigner(await generateSigningKey());
});

interface Setup {
  clock: ManualClock;
  seals: MemoryAuditSeals;
}

function world(): Setup {
  const clock = createManualClock();
  return { clock, seals: createMemoryAuditSeals({ clock }) };
}

/** A sealer that signs every 5 entries and never on its own time (heartbeats far apart). */
function sealerOf({ clock, seals }: Setup, owner = 'owner-a') {
  return createAuditSealer(
    { seals, signer, clock, logger: createMemoryLogger(), metrics: createMemoryAuditSealMetrics(), witness: createMemoryWitness(), log: 'unit-log', owner },
    { everyEntries: 5, everyMs: 3_600_000, heartbeatMs: 86_400_000, leaseMs: 600_000 },
  );
}

function retentionOf({ clock, seals }: Setup, options: { owner?: string; view?: (s: AuditSeals) => AuditSeals; tuning?: Partial<AuditRetentionTuning> } = {}) {
  const logger = createMemoryLogger();
  const witness = createMemoryWitness();
  const trimmed: number[] = [];
  const retention = createAuditRetention(
    {
      seals: options.view?.(seals) ?? seals,
      signer,
      clock,
      logger,
      metrics: { auditTrimmed: (n) => void trimmed.push(n) },
      witness,
      log: 'unit-log',
      owner: options.owner ?? 'owner-a',
      retentionMs: RETENTION,
    },
    { batch: 2, ...options.tuning },
  );
  return { retention, logger, witness, trimmed };
}

/** Appends `count` entries and seals them (a checkpoint every 5), at the clock's time. */
async function sealed(s: Setup, count: number, from: number, owner = 'owner-a'): Promise<void> {
  s.seals.append(auditEvents(count, from), 3);
  const sealer = sealerOf(s, owner);
  while ((await sealer.step()) === 'more');
}

const seqsOf = async (seals: AuditSeals) => (await seals.entriesAfter('0-0', 1000)).map((e) => e.seq);

async function runUntilIdle(retention: { step(): Promise<string> }): Promise<string> {
  for (;;) {
    const r = await retention.step();
    if (r !== 'more') return r;
  }
}

describe('audit retention', () => {
  it('cuts only at a checkpoint older than the retention, signs the cut, and trims entries and checkpoints up to it', async () => {
    const s = world();
    await sealed(s, 5, 1);
    s.clock.advance(30_000);
    await sealed(s, 5, 6);
    const [five, ten] = await s.seals.checkpoints(0, 10);
    expect([five!.seq, ten!.seq]).toEqual([5, 10]);

    // Nothing is older than the retention yet.
    const { retention, logger, witness, trimmed } = retentionOf(s);
    expect(await runUntilIdle(retention)).toBe('idle');
    s.clock.set(T0 + RETENTION);
    expect(await runUntilIdle(retention)).toBe('idle');
    expect(await s.seals.cut()).toBeNull();
    expect(await seqsOf(s.seals)).toHaveLength(10);

    // The checkpoint at seq 5 is now older; the one at 10 is not.
    s.clock.set(T0 + RETENTION + 1);
    expect(await runUntilIdle(retention)).toBe('idle');
    const cut = (await s.seals.cut())!;
    expect(cut).toMatchObject({ v: 1, log: 'unit-log', kind: 'cut', seq: 5, hash: five!.hash, at: new Date(T0 + RETENTION + 1).toISOString(), kid: signer.kid });
    expect(await signer.verify(cut)).toBe(true);
    expect(witness.sent).toEqual([cut]);
    expect(logger.lines.filter((l) => l.msg === 'audit checkpoint').map((l) => l.obj)).toEqual([{ checkpoint: cut }]);
    expect(await seqsOf(s.seals)).toEqual([6, 7, 8, 9, 10]);
    expect(trimmed).toEqual([2, 2, 1]);
    expect(await s.seals.checkpoints(0, 10)).toEqual([five, ten]);

    s.clock.set(T0 + 30_000 + RETENTION + 1);
    expect(await runUntilIdle(retention)).toBe('idle');
    expect(await s.seals.cut()).toMatchObject({ kind: 'cut', seq: 10, hash: ten!.hash });
    expect(await seqsOf(s.seals)).toEqual([]);
    // Checkpoints below the cut go; the one at its seq stays.
    expect(await s.seals.checkpoints(0, 10)).toEqual([ten]);
    expect(witness.sent.map((c) => c.seq)).toEqual([5, 10]);

    // A run with nothing new to cut changes nothing.
    const before = await s.seals.cut();
    expect(await runUntilIdle(retention)).toBe('idle');
    expect(await s.seals.cut()).toEqual(before);
    expect(witness.sent).toHaveLength(2);

    // The log goes on from the cut: new entries chain from its hash, as the sealer signs them.
    await sealed(s, 5, 11);
    let prev = before!.hash;
    const rest = await s.seals.entriesAfter('0-0', 100);
    expect(rest.map((e) => e.seq)).toEqual([11, 12, 13, 14, 15]);
    for (const e of rest) prev = chainHash(prev, e.seq, e.digest);
    expect(await s.seals.latestCheckpoint()).toMatchObject({ seq: 15, hash: prev });
  });

  it('never cuts at a checkpoint that does not verify: it logs it and cuts at the newest older one that does', async () => {
    const s = world();
    for (let i = 0; i < 4; i++) {
      await sealed(s, 5, 1 + 5 * i);
      s.clock.advance(1000);
    }
    s.clock.advance(RETENTION);
    const forged = await otherSigner.sign({ v: 1, log: 'unit-log', kind: 'seal', seq: 15, hash: 'f'.repeat(64), at: new Date(T0).toISOString() });
    // As read: seq 20 with its signature broken, 15 signed by a key this replica does not know, 10 of another log.
    const view = (seals: AuditSeals): AuditSeals => ({
      ...seals,
      async checkpoints(fromSeq, limit) {
        return (await seals.checkpoints(fromSeq, limit)).map((c) =>
          c.seq === 20 ? { ...c, sig: c.sig.replace(/^./, (x) => (x === 'A' ? 'B' : 'A')) } : c.seq === 15 ? { ...forged, hash: c.hash } : c.seq === 10 ? { ...c, log: 'elsewhere' } : c,
        );
      },
    });
    const { retention, logger } = retentionOf(s, { view });
    expect(await runUntilIdle(retention)).toBe('idle');
    expect(await s.seals.cut()).toMatchObject({ seq: 5 });
    expect(await seqsOf(s.seals)).toEqual(Array.from({ length: 15 }, (_, i) => i + 6));
    const errors = logger.at('error');
    expect(errors.map((l) => (l.obj as { checkpoint: Checkpoint }).checkpoint.seq)).toEqual([20, 15, 10]);
    expect(errors.every((l) => /does not verify/.test(l.msg ?? ''))).toBe(true);

    // With none that verifies, nothing is cut.
    const t = world();
    await sealed(t, 5, 1);
    t.clock.advance(RETENTION + 1);
    const bad = retentionOf(t, { view: (seals) => ({ ...seals, checkpoints: async (f, l) => (await seals.checkpoints(f, l)).map((c) => ({ ...c, at: new Date(T0 - 1).toISOString() })) }) });
    expect(await runUntilIdle(bad.retention)).toBe('idle');
    expect(await t.seals.cut()).toBeNull();
    expect(await seqsOf(t.seals)).toHaveLength(5);
    expect(bad.logger.at('error')).toHaveLength(1);
  });

  it('writes nothing while another replica holds the lease', async () => {
    const s = world();
    await sealed(s, 5, 1, 'owner-b');
    s.clock.advance(RETENTION + 1);
    const { retention, witness } = retentionOf(s, { owner: 'owner-a' });
    expect(await retention.step()).toBe('fenced');
    expect(await s.seals.cut()).toBeNull();
    expect(await seqsOf(s.seals)).toHaveLength(5);
    expect(witness.sent).toEqual([]);
    // Its own replica's retention (the lease holder's) cuts.
    expect(await runUntilIdle(retentionOf(s, { owner: 'owner-b' }).retention)).toBe('idle');
    expect(await s.seals.cut()).toMatchObject({ seq: 5 });
  });

  it('a run that loses the lease after the cut is fenced; the new holder finishes the trim', async () => {
    const s = world();
    await sealed(s, 10, 1);
    s.clock.advance(RETENTION + 1);
    const a = retentionOf(s, {
      view: (seals) => ({
        ...seals,
        async writeCut(owner, c) {
          const r = await seals.writeCut(owner, c);
          // A pause long enough for the lease to run out and be taken.
          s.clock.advance(600_000);
          await seals.acquireLease('owner-b', 600_000);
          return r;
        },
      }),
    });
    expect(await a.retention.step()).toBe('fenced');
    expect(await s.seals.cut()).toMatchObject({ seq: 10 });
    expect(await seqsOf(s.seals)).toHaveLength(10);

    const b = retentionOf(s, { owner: 'owner-b' });
    expect(await runUntilIdle(b.retention)).toBe('idle');
    expect(await seqsOf(s.seals)).toEqual([]);
    // It did not cut again: the cut was there.
    expect(b.witness.sent).toEqual([]);
    expect(b.trimmed.reduce((x, y) => x + y, 0)).toBe(10);
  });

  it('a run that fails part-way through the trim is finished by the next run (bounded runs report more)', async () => {
    const s = world();
    await sealed(s, 10, 1);
    s.clock.advance(RETENTION + 1);
    let calls = 0;
    const failing = retentionOf(s, {
      view: (seals) => ({
        ...seals,
        async trimToCut(owner, limit) {
          if (++calls === 3) throw new Error('store away');
          return seals.trimToCut(owner, limit);
        },
      }),
    });
    await expect(failing.retention.step()).rejects.toThrow('store away');
    expect(await seqsOf(s.seals)).toEqual([5, 6, 7, 8, 9, 10]);
    expect((await s.seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([5, 10]);

    const next = retentionOf(s, { tuning: { batchesPerStep: 2 } });
    expect(await next.retention.step()).toBe('more');
    expect(await seqsOf(s.seals)).toEqual([9, 10]);
    expect(await next.retention.step()).toBe('idle');
    expect(await seqsOf(s.seals)).toEqual([]);
    expect((await s.seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([10]);
    expect(next.witness.sent).toEqual([]);
  });

  it('finds its target across pages of checkpoints, and over a long scan cuts in several runs', async () => {
    const s = world();
    for (let i = 0; i < 6; i++) {
      await sealed(s, 5, 1 + 5 * i);
      s.clock.advance(1000);
    }
    s.clock.advance(RETENTION);
    const { retention } = retentionOf(s, { tuning: { checkpointPage: 2, scanPages: 2 } });
    expect(await retention.step()).toBe('more');
    expect(await s.seals.cut()).toMatchObject({ seq: 20 });
    expect(await runUntilIdle(retention)).toBe('idle');
    expect(await s.seals.cut()).toMatchObject({ seq: 30 });
    expect(await seqsOf(s.seals)).toEqual([]);
  });

  it('start() runs in the background until stop()', async () => {
    const s = world();
    await sealed(s, 5, 1);
    s.clock.advance(RETENTION + 1);
    const { retention } = retentionOf(s, { tuning: { everyMs: 5 } });
    retention.start();
    while ((await s.seals.cut()) === null) await new Promise((r) => setTimeout(r, 5));
    await retention.stop();
    expect(await seqsOf(s.seals)).toEqual([]);
  });
});
