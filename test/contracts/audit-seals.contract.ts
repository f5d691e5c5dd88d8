import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, chainHash, eventDigest, legacyChainHash } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import type { Checkpoint, CheckpointKind } from '../../src/core/audit-checkpoint.ts';
import type { AuditSeals, SealedState } from '../../src/core/ports.ts';

// What every AuditSeals must do, run against the Redis adapter
// (test/integration/audit-seals.contract.redis.test.ts) and the memory fake
// (test/unit/audit-seals.memory.test.ts). `make` gives an empty log and a way to append
// entries as a writer of each chain step does (1 and 2 store prev_hash and hash, 3 does not).
// A lease that runs out by itself is tested where time can be moved (the fake) or waited on
// (the Redis-only tests).

export interface AuditSealsSubject {
  seals: AuditSeals;
  append(events: AuditEventInput[], chain: 1 | 2 | 3): Promise<void>;
}

const LEASE = 60_000;

export function auditEvents(count: number, from = 1): AuditEventInput[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'proposal_received' as const,
    at: new Date(Date.parse('2030-01-01T00:00:00.000Z') + (from + i) * 1000).toISOString(),
    proposal_id: `p_${from + i}`,
    agent: 'billing-agent',
    actor: 'agent:billing-agent',
    data: { n: from + i, text: 'Refund / "twice" — €' },
  }));
}

/** A checkpoint as the sealer would write it (the signature is not the store's business). */
export function checkpointAt(state: SealedState, kind: CheckpointKind = 'seal'): Checkpoint {
  return { v: 1, log: 'contract', kind, seq: state.seq, hash: state.hash, at: state.at, kid: 'k1', sig: `sig-${state.seq}-${kind}` };
}

/** A 64-hex hash that names its seq, so a test can tell them apart. */
const hashOf = (seq: number) => seq.toString(16).padStart(64, '0');

/** The cut retention signs at checkpoint `c` (the signature is not the store's business). */
export function cutAt(c: Checkpoint, at = '2031-01-01T00:00:00.000Z'): Checkpoint {
  return { ...c, kind: 'cut', at, sig: `sig-cut-${c.seq}` };
}

/**
 * `count` entries, sealed by owner 'a' (who keeps the lease) with a checkpoint at each of
 * `marks` ([seq, kind], in order); returns the checkpoints.
 */
async function sealedLog(subject: AuditSealsSubject, count: number, marks: [number, CheckpointKind][]): Promise<Checkpoint[]> {
  const { seals, append } = subject;
  await append(auditEvents(count), 3);
  const entries = await seals.entriesAfter('0-0', count);
  expect(await seals.acquireLease('a', LEASE)).toBe(true);
  const written: Checkpoint[] = [];
  let sealedSeq = 0;
  for (const [seq, kind] of marks) {
    const state: SealedState = { seq, hash: hashOf(seq), id: entries[seq - 1]!.id, at: `2030-01-02T00:00:${String(written.length).padStart(2, '0')}.000Z`, legacyHash: GENESIS_HASH };
    const c = checkpointAt(state, kind);
    expect(await seals.seal('a', LEASE, sealedSeq, state, c)).toBe('ok');
    written.push(c);
    sealedSeq = seq;
  }
  return written;
}

export function auditSealsContract(name: string, make: () => Promise<AuditSealsSubject>): void {
  describe(`AuditSeals contract: ${name}`, () => {
    it('the lease: one owner at a time; only its owner renews or releases it', async () => {
      const { seals } = await make();
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await seals.acquireLease('b', LEASE)).toBe(false);
      // Taking it again while holding it is fine (a leader that asks twice).
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await seals.renewLease('b', LEASE)).toBe(false);
      expect(await seals.renewLease('a', LEASE)).toBe(true);
      await seals.releaseLease('b');
      expect(await seals.acquireLease('b', LEASE)).toBe(false);
      await seals.releaseLease('a');
      expect(await seals.renewLease('a', LEASE)).toBe(false);
      expect(await seals.acquireLease('b', LEASE)).toBe(true);
    });

    it('reads entries after an id, oldest first, in batches, with their chain step and stored hashes', async () => {
      const { seals, append } = await make();
      expect(await seals.headSeq()).toBe(0);
      expect(await seals.entriesAfter('0-0', 10)).toEqual([]);
      const events = auditEvents(5);
      await append(events.slice(0, 2), 1);
      await append(events.slice(2, 4), 2);
      await append(events.slice(4), 3);
      expect(await seals.headSeq()).toBe(5);

      const first = await seals.entriesAfter('0-0', 3);
      expect(first.map((e) => e.seq)).toEqual([1, 2, 3]);
      const rest = await seals.entriesAfter(first[2]!.id, 10);
      expect(rest.map((e) => e.seq)).toEqual([4, 5]);
      const all = [...first, ...rest];
      expect(all.map((e) => e.chain)).toEqual([1, 1, 2, 2, 3]);
      all.forEach((e, i) => {
        expect(e.event).toEqual(events[i]);
        expect(e.digest).toBe(eventDigest(events[i]!));
      });
      // What the writers stored: step 1 and 2 chain in the script, step 3 leaves it to the sealer.
      let prev = GENESIS_HASH;
      for (const e of all.slice(0, 4)) {
        expect(e.prevHash).toBe(prev);
        prev = (e.chain === 2 ? chainHash : legacyChainHash)(prev, e.seq, e.digest);
        expect(e.hash).toBe(prev);
      }
      expect(all[4]).toMatchObject({ prevHash: null, hash: null });
      expect(await seals.entriesAfter(all[4]!.id, 10)).toEqual([]);
    });

    it('seal writes the sealed state and its checkpoint together, only while the owner holds the lease', async () => {
      const { seals, append } = await make();
      await append(auditEvents(2), 3);
      const [, second] = await seals.entriesAfter('0-0', 10);
      const next: SealedState = { seq: 2, hash: 'a'.repeat(64), id: second!.id, at: '2030-01-01T00:00:10.000Z', legacyHash: 'b'.repeat(64) };
      expect(await seals.sealed()).toBeNull();
      expect(await seals.latestCheckpoint()).toBeNull();

      expect(await seals.seal('a', LEASE, 0, next, checkpointAt(next))).toBe('fenced');
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await seals.seal('b', LEASE, 0, next, checkpointAt(next))).toBe('fenced');
      expect(await seals.sealed()).toBeNull();
      expect(await seals.latestCheckpoint()).toBeNull();

      expect(await seals.seal('a', LEASE, 0, next, checkpointAt(next))).toBe('ok');
      expect(await seals.sealed()).toEqual(next);
      expect(await seals.latestCheckpoint()).toEqual(checkpointAt(next));

      // Taken over: the old holder writes nothing, even from the right state.
      await seals.releaseLease('a');
      expect(await seals.acquireLease('b', LEASE)).toBe(true);
      const later = { ...next, at: '2030-01-01T00:01:10.000Z' };
      expect(await seals.seal('a', LEASE, 2, later, checkpointAt(later, 'heartbeat'))).toBe('fenced');
      expect(await seals.latestCheckpoint()).toEqual(checkpointAt(next));
      expect(await seals.seal('b', LEASE, 2, later, checkpointAt(later, 'heartbeat'))).toBe('ok');
      expect(await seals.latestCheckpoint()).toEqual(checkpointAt(later, 'heartbeat'));
    });

    it('seal refuses a state that moved on (conflict) and writes nothing; a duplicate has the effect of one', async () => {
      const { seals, append } = await make();
      await append(auditEvents(3), 3);
      const entries = await seals.entriesAfter('0-0', 10);
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      const one: SealedState = { seq: 1, hash: '1'.repeat(64), id: entries[0]!.id, at: '2030-01-01T00:00:01.000Z', legacyHash: GENESIS_HASH };
      const three: SealedState = { seq: 3, hash: '3'.repeat(64), id: entries[2]!.id, at: '2030-01-01T00:00:03.000Z', legacyHash: GENESIS_HASH };
      expect(await seals.seal('a', LEASE, 0, one, null)).toBe('ok');
      expect(await seals.seal('a', LEASE, 0, one, null)).toBe('conflict');
      expect(await seals.seal('a', LEASE, 0, three, checkpointAt(three))).toBe('conflict');
      expect(await seals.sealed()).toEqual(one);
      expect(await seals.latestCheckpoint()).toBeNull();
      expect(await seals.seal('a', LEASE, 1, three, checkpointAt(three))).toBe('ok');
      expect(await seals.seal('a', LEASE, 1, three, checkpointAt(three))).toBe('conflict');
      expect(await seals.checkpoints(0, 10)).toEqual([checkpointAt(three)]);
    });

    it('refuses a checkpoint that is not the sealed state it is written with', async () => {
      const { seals, append } = await make();
      await append(auditEvents(2), 3);
      const entries = await seals.entriesAfter('0-0', 10);
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      const two: SealedState = { seq: 2, hash: '2'.repeat(64), id: entries[1]!.id, at: '2030-01-01T00:00:02.000Z', legacyHash: GENESIS_HASH };
      await expect(seals.seal('a', LEASE, 0, two, { ...checkpointAt(two), seq: 1 })).rejects.toThrow(/checkpoint/);
      await expect(seals.seal('a', LEASE, 0, two, { ...checkpointAt(two), hash: 'f'.repeat(64) })).rejects.toThrow(/checkpoint/);
      expect(await seals.sealed()).toBeNull();
      expect(await seals.latestCheckpoint()).toBeNull();
    });

    it('keeps checkpoints in order (several at one seq: heartbeats) and reads them from a seq', async () => {
      const { seals, append } = await make();
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      // An empty log still has checkpoints: heartbeats at seq 0.
      const zero: SealedState = { seq: 0, hash: GENESIS_HASH, id: '0-0', at: '2030-01-01T00:00:00.000Z', legacyHash: GENESIS_HASH };
      expect(await seals.seal('a', LEASE, 0, zero, checkpointAt(zero, 'heartbeat'))).toBe('ok');
      await append(auditEvents(5), 3);
      const entries = await seals.entriesAfter('0-0', 10);
      const written: Checkpoint[] = [checkpointAt(zero, 'heartbeat')];
      let seq = 0;
      for (const [i, kind] of [[1, 'seal'], [1, 'heartbeat'], [1, 'heartbeat'], [3, 'seal'], [4, 'seal']] as const) {
        const state: SealedState = { seq: i + 1, hash: String(i).repeat(64), id: entries[i]!.id, at: `2030-01-01T00:00:0${written.length}.000Z`, legacyHash: GENESIS_HASH };
        const c = checkpointAt(state, kind);
        expect(await seals.seal('a', LEASE, seq, state, c)).toBe('ok');
        written.push(c);
        seq = state.seq;
      }
      expect(await seals.checkpoints(0, 100)).toEqual(written);
      expect(await seals.checkpoints(2, 100)).toEqual(written.slice(1));
      expect(await seals.checkpoints(3, 100)).toEqual(written.slice(4));
      expect(await seals.checkpoints(2, 2)).toEqual(written.slice(1, 3));
      expect(await seals.checkpoints(6, 100)).toEqual([]);
      expect(await seals.latestCheckpoint()).toEqual(written.at(-1));
    });

    it('retention: a cut names a stored checkpoint, is written only by the lease holder, and never moves back', async () => {
      const subject = await make();
      const { seals } = subject;
      const [, nine, ten, twelve] = await sealedLog(subject, 12, [[2, 'seal'], [9, 'seal'], [10, 'seal'], [12, 'seal']]);
      expect(await seals.holdsLease('a')).toBe(true);
      expect(await seals.holdsLease('b')).toBe(false);

      expect(await seals.writeCut('b', cutAt(ten!))).toBe('fenced');
      expect(await seals.cut()).toBeNull();
      // Never beyond what is sealed and signed, and only a cut.
      await expect(seals.writeCut('a', { ...cutAt(ten!), hash: hashOf(11) })).rejects.toThrow(/checkpoint/);
      await expect(seals.writeCut('a', { ...cutAt(ten!), seq: 11 })).rejects.toThrow(/checkpoint/);
      await expect(seals.writeCut('a', { ...cutAt(ten!), kind: 'seal' })).rejects.toThrow(/cut/);
      expect(await seals.cut()).toBeNull();

      expect(await seals.writeCut('a', cutAt(ten!))).toBe('ok');
      expect(await seals.cut()).toEqual(cutAt(ten!));
      // At or below the current cut: nothing changes (a run that lost a race, or a retry).
      expect(await seals.writeCut('a', cutAt(nine!))).toBe('behind');
      expect(await seals.writeCut('a', cutAt(ten!, '2031-02-01T00:00:00.000Z'))).toBe('behind');
      expect(await seals.cut()).toEqual(cutAt(ten!));

      // Taken over: the old holder writes nothing.
      await seals.releaseLease('a');
      expect(await seals.acquireLease('b', LEASE)).toBe(true);
      expect(await seals.holdsLease('a')).toBe(false);
      expect(await seals.writeCut('a', cutAt(twelve!))).toBe('fenced');
      expect(await seals.cut()).toEqual(cutAt(ten!));
      expect(await seals.writeCut('b', cutAt(twelve!))).toBe('ok');
      expect(await seals.cut()).toEqual(cutAt(twelve!));
    });

    it('retention: entries up to the cut go oldest first, in batches, only by the lease holder; a second run removes nothing', async () => {
      const subject = await make();
      const { seals } = subject;
      const [ten] = await sealedLog(subject, 12, [[10, 'seal'], [12, 'heartbeat']]);
      const seqs = async () => (await seals.entriesAfter('0-0', 100)).map((e) => e.seq);
      // No cut: nothing to remove.
      expect(await seals.trimToCut('a', 4)).toBe(0);
      expect(await seqs()).toHaveLength(12);

      expect(await seals.writeCut('a', cutAt(ten!))).toBe('ok');
      expect(await seals.trimToCut('b', 4)).toBe('fenced');
      expect(await seqs()).toHaveLength(12);
      expect(await seals.trimToCut('a', 4)).toBe(4);
      expect(await seqs()).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
      expect(await seals.trimToCut('a', 4)).toBe(4);
      // Only up to the cut, whatever the batch.
      expect(await seals.trimToCut('a', 4)).toBe(2);
      expect(await seqs()).toEqual([11, 12]);
      expect(await seals.trimToCut('a', 4)).toBe(0);
      expect(await seals.trimToCut('b', 4)).toBe(0);
      expect(await seqs()).toEqual([11, 12]);
      // The sealer reads on from where it was.
      const sealed = await seals.sealed();
      expect(await seals.entriesAfter(sealed!.id, 10)).toEqual([]);
      expect((await seals.entriesAfter('0-0', 1))[0]!.seq).toBe(11);
    });

    it('retention: checkpoints below the cut go once no entry up to it is left; those at its seq stay (9-1 is below 10-1)', async () => {
      const subject = await make();
      const { seals } = subject;
      // Not the lease holder: fenced, even with nothing to do; the holder without a cut: nothing.
      expect(await seals.trimCheckpointsToCut('b')).toBe('fenced');
      const written = await sealedLog(subject, 12, [[2, 'seal'], [9, 'seal'], [10, 'seal'], [10, 'heartbeat'], [12, 'seal']]);
      expect(await seals.trimCheckpointsToCut('a')).toBe(0);
      expect(await seals.writeCut('a', cutAt(written[2]!))).toBe('ok');

      expect(await seals.trimCheckpointsToCut('a')).toBe('pending');
      expect(await seals.trimToCut('a', 5)).toBe(5);
      expect(await seals.trimCheckpointsToCut('a')).toBe('pending');
      expect(await seals.checkpoints(0, 100)).toEqual(written);
      expect(await seals.trimToCut('a', 100)).toBe(5);

      expect(await seals.trimCheckpointsToCut('b')).toBe('fenced');
      expect(await seals.checkpoints(0, 100)).toEqual(written);
      expect(await seals.trimCheckpointsToCut('a')).toBe(2);
      expect(await seals.checkpoints(0, 100)).toEqual(written.slice(2));
      expect(await seals.latestCheckpoint()).toEqual(written[4]);
      expect(await seals.trimCheckpointsToCut('a')).toBe(0);
      expect(await seals.checkpoints(0, 100)).toEqual(written.slice(2));
    });
  });
}
