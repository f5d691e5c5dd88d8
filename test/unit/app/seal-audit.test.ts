import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditSigner } from '../../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../../adapters/tokens/jwt-signer.ts';
import { createAuditSealer, type AuditSealer, type AuditSealerTuning } from '../../../src/app/seal-audit.ts';
import { ChainVerifier, GENESIS_HASH, type AuditEventInput } from '../../../src/core/audit.ts';
import type { AuditSigner } from '../../../src/core/audit-checkpoint.ts';
import type { AuditSeals } from '../../../src/core/ports.ts';
import { auditEvents } from '../../contracts/audit-seals.contract.ts';
import { createMemoryAuditSealMetrics, createMemoryWitness } from '../../helpers/memory/audit-sealer-recorders.ts';
import { createMemoryAuditSeals, type MemoryAuditSeals } from '../../helpers/memory/audit-seals.ts';
import { T0, createManualClock, type ManualClock } from '../../helpers/memory/clock.ts';
import { createMemoryLogger } from '../../helpers/memory/logger.ts';

// The sealer on in-memory fakes and a manual clock: when it signs (every N entries, T ms after
// the first entry not yet covered, a heartbeat when idle), that it never signs over a broken
// log, and that only the lease holder writes.

let signer: AuditSigner;
beforeAll(async () => {
  signer = await createAuditSigner(await generateSigningKey());
});

const TUNING: Partial<AuditSealerTuning> = { everyEntries: 5, everyMs: 1000, heartbeatMs: 60_000, leaseMs: 10_000 };

function setup(options: { clock?: ManualClock; seals?: MemoryAuditSeals; owner?: string; tuning?: Partial<AuditSealerTuning>; view?: (s: AuditSeals) => AuditSeals } = {}) {
  const clock = options.clock ?? createManualClock();
  const seals = options.seals ?? createMemoryAuditSeals({ clock });
  const logger = createMemoryLogger();
  const metrics = createMemoryAuditSealMetrics();
  const witness = createMemoryWitness();
  const sealer = createAuditSealer(
    { seals: options.view?.(seals) ?? seals, signer, clock, logger, metrics, witness, log: 'unit-log', owner: options.owner ?? 'owner-a' },
    { ...TUNING, ...options.tuning },
  );
  return { clock, seals, logger, metrics, witness, sealer };
}

/** Steps until the sealer has read everything there is. */
async function sealAll(sealer: AuditSealer): Promise<string> {
  for (;;) {
    const r = await sealer.step();
    if (r !== 'more') return r;
  }
}

function eventsAt(times: number[]): AuditEventInput[] {
  return times.map((t, i) => ({ type: 'proposal_received', at: new Date(t).toISOString(), proposal_id: `p_t${i}`, agent: 'ops-agent', actor: 'agent:ops-agent', data: { i } }));
}

describe('the audit sealer', () => {
  it('on an empty log writes a heartbeat at seq 0 at once, then one per heartbeat interval', async () => {
    const { clock, seals, sealer, metrics } = setup();
    expect(await sealer.step()).toBe('idle');
    expect(metrics.leader).toEqual([true]);
    const [first, ...none] = await seals.checkpoints(0, 10);
    expect(none).toEqual([]);
    expect(first).toMatchObject({ v: 1, log: 'unit-log', kind: 'heartbeat', seq: 0, hash: GENESIS_HASH, at: new Date(T0).toISOString(), kid: signer.kid });
    expect(await signer.verify(first!)).toBe(true);
    clock.advance(59_999);
    await sealer.step();
    expect(await seals.checkpoints(0, 10)).toHaveLength(1);
    clock.advance(1);
    await sealer.step();
    expect((await seals.checkpoints(0, 10)).map((c) => [c.kind, c.seq, c.at])).toEqual([
      ['heartbeat', 0, new Date(T0).toISOString()],
      ['heartbeat', 0, new Date(T0 + 60_000).toISOString()],
    ]);
  });

  it('chains step-3 entries as ChainVerifier chains step 2, and signs a checkpoint every N entries', async () => {
    const { clock, seals, sealer } = setup();
    const events = auditEvents(12);
    seals.append(events, 3);
    expect(await sealAll(sealer)).toBe('idle');
    expect((await seals.checkpoints(0, 10)).map((c) => [c.kind, c.seq])).toEqual([['seal', 5], ['seal', 10]]);
    expect((await seals.sealed())!.seq).toBe(12);

    // The same events written by a step-2 writer, checked the way `audit verify` checks them.
    const twin = createMemoryAuditSeals({ clock: createManualClock() });
    twin.append(events, 2);
    const verifier = new ChainVerifier();
    const hashAt = new Map<number, string>();
    for (const e of await twin.entriesAfter('0-0', 100)) {
      expect(verifier.check({ ...e.event, digest: e.digest, seq: e.seq, prev_hash: e.prevHash!, hash: e.hash!, chain: 2 })).toBeNull();
      hashAt.set(e.seq, verifier.head);
    }
    for (const c of await seals.checkpoints(0, 10)) expect(c.hash).toBe(hashAt.get(c.seq));
    expect((await seals.sealed())!.hash).toBe(hashAt.get(12));

    // The last two wait for T ms after the first of them was seen.
    clock.advance(999);
    await sealer.step();
    expect(await seals.checkpoints(11, 10)).toEqual([]);
    clock.advance(1);
    await sealer.step();
    const [last] = await seals.checkpoints(11, 10);
    expect(last).toMatchObject({ kind: 'seal', seq: 12, hash: hashAt.get(12) });
    expect(await signer.verify(last!)).toBe(true);
  });

  it('during an upgrade, a step-2 entry an older replica chains from the last stored hash is sealed as verify chains it, across a takeover', async () => {
    const clock = createManualClock();
    const seals = createMemoryAuditSeals({ clock });
    const a = setup({ clock, seals, owner: 'owner-a', tuning: { everyEntries: 2 } });
    seals.append(auditEvents(2), 2);
    seals.append(auditEvents(2, 3), 3);
    await sealAll(a.sealer);
    // a dies; an older replica appends (from the head's hash, written by the last step-2 entry), then a newer one.
    seals.append(auditEvents(1, 5), 2);
    seals.append(auditEvents(1, 6), 3);
    clock.advance(10_000);
    const b = setup({ clock, seals, owner: 'owner-b', tuning: { everyEntries: 2 } });
    await sealAll(b.sealer);
    expect(b.metrics.errors).toEqual([]);

    const verifier = new ChainVerifier();
    const hashAt = new Map<number, string>();
    for (const e of await seals.entriesAfter('0-0', 100)) {
      expect(verifier.check({ ...e.event, digest: e.digest, seq: e.seq, prev_hash: e.prevHash, hash: e.hash, chain: e.chain as 1 | 2 | 3 })).toBeNull();
      hashAt.set(e.seq, verifier.head);
    }
    const written = await seals.checkpoints(0, 10);
    expect(written.map((c) => c.seq)).toEqual([2, 4, 6]);
    for (const c of written) expect(c.hash).toBe(hashAt.get(c.seq));
  });

  it("signs T ms after the first entry not yet covered, counted from the entry's own time", async () => {
    const { clock, seals, sealer } = setup();
    await sealer.step(); // the first heartbeat
    clock.advance(100_000);
    seals.append(eventsAt([clock.now() - 400]), 3);
    await sealer.step();
    expect(await seals.checkpoints(1, 10)).toEqual([]);
    clock.advance(599);
    await sealer.step();
    expect(await seals.checkpoints(1, 10)).toEqual([]);
    clock.advance(1);
    await sealer.step();
    expect((await seals.checkpoints(1, 10)).map((c) => [c.kind, c.seq])).toEqual([['seal', 1]]);
  });

  it('keeps writing heartbeats while idle, counted from the last checkpoint of any kind', async () => {
    const { clock, seals, sealer } = setup();
    seals.append(auditEvents(5), 3);
    await sealAll(sealer);
    expect((await seals.checkpoints(0, 10)).map((c) => c.kind)).toEqual(['seal']);
    clock.advance(59_999);
    await sealer.step();
    expect(await seals.checkpoints(0, 10)).toHaveLength(1);
    clock.advance(1);
    await sealer.step();
    expect((await seals.checkpoints(0, 10)).map((c) => [c.kind, c.seq])).toEqual([['seal', 5], ['heartbeat', 5]]);
  });

  it('logs each checkpoint as one "audit checkpoint" line with all its fields, sends it to the witness, and observes each entry\'s lag', async () => {
    const { clock, seals, sealer, logger, witness, metrics } = setup();
    clock.advance(10_000);
    seals.append(eventsAt([clock.now() - 3000, clock.now() - 2000, clock.now() - 1000, clock.now() - 500, clock.now()]), 3);
    await sealAll(sealer);
    const written = await seals.checkpoints(0, 10);
    expect(written).toHaveLength(1);
    const lines = logger.lines.filter((l) => l.msg === 'audit checkpoint');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('info');
    expect(lines[0]!.obj).toEqual({ checkpoint: written[0] });
    expect(witness.sent).toEqual(written);
    expect(metrics.lags).toEqual([3, 2, 1, 0.5, 0]);
  });

  it('stops at a step-2 entry whose stored hash was edited: an error naming the seq, a metric, nothing signed past it', async () => {
    const { clock, seals, sealer, logger, metrics } = setup({ tuning: { everyEntries: 100 } });
    seals.append(auditEvents(6), 2);
    seals.tamper.edit(4, { hash: 'e'.repeat(64) });
    expect(await sealAll(sealer)).toBe('broken');
    // What came before the break is sealed and signed at once; nothing after it.
    expect((await seals.checkpoints(0, 10)).map((c) => [c.kind, c.seq])).toEqual([['seal', 3]]);
    expect((await seals.sealed())!.seq).toBe(3);
    const errors = logger.at('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.obj).toMatchObject({ seq: 4, reason: expect.stringMatching(/hash/) });
    expect(errors[0]!.msg).toMatch(/audit log is broken at seq 4/);
    expect(metrics.errors).toEqual(['chain']);

    seals.append(auditEvents(3, 7), 3);
    clock.advance(5_000);
    expect(await sealer.step()).toBe('broken');
    expect(await seals.checkpoints(4, 10)).toEqual([]);
    // Still broken at the next look (every heartbeat interval): said again, still nothing signed.
    clock.advance(60_000);
    expect(await sealer.step()).toBe('broken');
    expect(logger.at('error')).toHaveLength(2);
    expect(metrics.errors).toEqual(['chain', 'chain']);
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([3]);
    // It keeps the lease meanwhile, so no other replica signs past the break either.
    expect(await seals.acquireLease('owner-b', 10_000)).toBe(false);
  });

  it.each([
    ['an entry whose content no longer matches its digest', (s: MemoryAuditSeals) => s.tamper.edit(3, { data: { n: 3, text: 'approved → denied' } }), 'digest', /digest/],
    ['a missing entry', (s: MemoryAuditSeals) => s.tamper.drop(3), 'seq', /seq 4 where 3/],
    ["a step-2 entry whose prev_hash is not the chain's", (s: MemoryAuditSeals) => s.tamper.edit(3, { prevHash: 'f'.repeat(64) }), 'chain', /prev_hash/],
    ['an entry naming a chain step this release does not know', (s: MemoryAuditSeals) => s.tamper.edit(3, { chain: 9 }), 'chain', /chain step 9/],
  ] as const)('stops at %s too', async (_what, tamper, reason, said) => {
    const { seals, sealer, logger, metrics } = setup({ tuning: { everyEntries: 100 } });
    seals.append(auditEvents(5), 2);
    tamper(seals);
    expect(await sealAll(sealer)).toBe('broken');
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([2]);
    expect(metrics.errors).toEqual([reason]);
    expect(logger.at('error')[0]!.obj).toMatchObject({ reason: expect.stringMatching(said) });
  });

  it('two sealers: only the lease holder writes; the other takes over when the lease runs out and goes on from the sealed state', async () => {
    const clock = createManualClock();
    const seals = createMemoryAuditSeals({ clock });
    const a = setup({ clock, seals, owner: 'owner-a' });
    const b = setup({ clock, seals, owner: 'owner-b' });
    expect(await a.sealer.step()).toBe('idle');
    expect(await b.sealer.step()).toBe('follower');
    seals.append(auditEvents(5), 3);
    expect(await b.sealer.step()).toBe('follower');
    await sealAll(a.sealer);
    expect(a.witness.sent.map((c) => c.seq)).toEqual([0, 5]);

    // a stops (a crash): once its lease has run out, b takes over and seals what follows.
    seals.append(auditEvents(5, 6), 3);
    clock.advance(10_000);
    await sealAll(b.sealer);
    expect(b.metrics.leader).toEqual([true]);
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([0, 5, 10]);
    expect(b.witness.sent.map((c) => c.seq)).toEqual([10]);

    // a comes back: it finds its lease gone and writes nothing.
    seals.append(auditEvents(5, 11), 3);
    expect(await a.sealer.step()).toBe('follower');
    expect(a.metrics.leader).toEqual([true, false]);
    await sealAll(b.sealer);
    expect((await seals.checkpoints(0, 10)).map((c) => c.seq)).toEqual([0, 5, 10, 15]);
    expect(a.witness.sent.map((c) => c.seq)).toEqual([0, 5]);
  });

  it('a sealer whose lease is taken between its read and its write writes nothing (fenced) and becomes a follower', async () => {
    const clock = createManualClock();
    const seals = createMemoryAuditSeals({ clock });
    const b = setup({ clock, seals, owner: 'owner-b' });
    let pause: (() => Promise<void>) | null = null;
    const a = setup({
      clock,
      seals,
      owner: 'owner-a',
      view: (s) => ({
        ...s,
        acquireLease: s.acquireLease.bind(s),
        async entriesAfter(id, count) {
          const read = await s.entriesAfter(id, count);
          const hook = pause;
          pause = null;
          if (hook !== null) await hook();
          return read;
        },
      }),
    });
    await a.sealer.step();
    seals.append(auditEvents(5), 3);
    // a stalls after reading (a long GC pause): its lease runs out, b takes over and seals.
    pause = async () => {
      clock.advance(10_000);
      await sealAll(b.sealer);
    };
    expect(await a.sealer.step()).toBe('follower');
    expect(a.metrics.leader).toEqual([true, false]);
    expect((await seals.checkpoints(0, 10)).map((c) => [c.seq, c.kind])).toEqual([[0, 'heartbeat'], [5, 'seal']]);
    expect(b.witness.sent.map((c) => c.seq)).toEqual([5]);
    expect(a.witness.sent.map((c) => c.seq)).toEqual([0]);
    expect(a.logger.lines.filter((l) => l.msg === 'audit checkpoint')).toHaveLength(1);
  });

  it('running: a batch too large to read is halved until it reads, and the log still gets sealed', async () => {
    const { seals, sealer, logger } = setup({
      tuning: { everyEntries: 1000, everyMs: 0, pollMs: 1, batch: 1000 },
      view: (s) => ({
        ...s,
        async entriesAfter(id, count) {
          // As a store whose command times out on a batch this big.
          if (count > 100) throw new Error('Command timed out');
          return s.entriesAfter(id, count);
        },
      }),
    });
    seals.append(auditEvents(300), 3);
    sealer.start();
    try {
      for (let i = 0; i < 500 && (await seals.latestCheckpoint())?.seq !== 300; i++) await new Promise((r) => setTimeout(r, 5));
    } finally {
      await sealer.stop();
    }
    expect((await seals.latestCheckpoint())?.seq).toBe(300);
    const failed = logger.at('warn').filter((l) => l.msg === 'audit sealer: step failed; trying again');
    expect(failed.map((l) => (l.obj as { batch: number }).batch)).toEqual([500, 250, 125, 62]);
  });

  it('stop() signs what was sealed but not yet covered and gives the lease up', async () => {
    const { seals, sealer } = setup({ tuning: { everyEntries: 100 } });
    seals.append(auditEvents(3), 3);
    await sealAll(sealer);
    expect((await seals.checkpoints(1, 10)).map((c) => c.seq)).toEqual([]);
    await sealer.stop();
    expect((await seals.checkpoints(1, 10)).map((c) => [c.kind, c.seq])).toEqual([['seal', 3]]);
    expect(await seals.acquireLease('owner-b', 10_000)).toBe(true);
  });
});
