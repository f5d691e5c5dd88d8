import { describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import type { AuditIndexStore } from '../../src/core/audit-index-ports.ts';
import type { AuditSeals, SealedState } from '../../src/core/ports.ts';
import { auditEvents, checkpointAt, cutAt } from './audit-seals.contract.ts';

// What every AuditIndexStore must do, run against the Redis adapter
// (test/integration/audit-index.contract.redis.test.ts) and the memory fake
// (test/unit/audit-index.memory.test.ts): batches oldest first from the position, only by the
// holder of the sealer's lease, whatever the entries hold, and never an entry retention removed.
// What the index holds (lists, no id twice, the cap) is Redis's own: test/integration/audit-index.redis.test.ts.

export interface AuditIndexSubject {
  index: AuditIndexStore;
  /** The same log's seal store: its lease fences the index, its retention trims the log. */
  seals: AuditSeals;
  append(events: AuditEventInput[]): Promise<void>;
  /** Replaces the stored data of the entry with this seq, as someone with access to the store could. */
  editData(seq: number, data: Record<string, unknown>): Promise<void>;
}

const LEASE = 60_000;

export function auditIndexContract(name: string, make: () => Promise<AuditIndexSubject>): void {
  describe(`AuditIndexStore contract: ${name}`, () => {
    it('indexes in batches, oldest first, from where it stands, until nothing is left', async () => {
      const { index, seals, append } = await make();
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await index.position()).toBeNull();
      expect(await index.indexNext('a', 10)).toEqual({ indexed: 0 });
      expect(await index.position()).toBeNull();

      await append(auditEvents(5));
      const ids = (await seals.entriesAfter('0-0', 10)).map((e) => e.id);
      expect(await index.indexNext('a', 2)).toEqual({ indexed: 2 });
      expect(await index.position()).toBe(ids[1]);
      expect(await index.indexNext('a', 2)).toEqual({ indexed: 2 });
      expect(await index.indexNext('a', 2)).toEqual({ indexed: 1 });
      expect(await index.position()).toBe(ids[4]);
      expect(await index.indexNext('a', 2)).toEqual({ indexed: 0 });
      await append(auditEvents(1, 6));
      expect(await index.indexNext('a', 2)).toEqual({ indexed: 1 });
    });

    it('writes only while the owner holds the sealer lease', async () => {
      const { index, seals, append } = await make();
      await append(auditEvents(3));
      expect(await index.indexNext('a', 10)).toBe('fenced');
      expect(await seals.acquireLease('b', LEASE)).toBe(true);
      expect(await index.indexNext('a', 10)).toBe('fenced');
      expect(await index.position()).toBeNull();
      expect(await index.indexNext('b', 2)).toEqual({ indexed: 2 });
      // Taken over: the new holder goes on from the position, the old one writes nothing.
      await seals.releaseLease('b');
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await index.indexNext('b', 10)).toBe('fenced');
      expect(await index.indexNext('a', 10)).toEqual({ indexed: 1 });
    });

    it('indexes an edited entry like any other (search must work on a tampered log)', async () => {
      const { index, seals, append, editData } = await make();
      await append(auditEvents(3));
      await editData(2, { n: 2000, text: 'rewritten' });
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await index.indexNext('a', 10)).toEqual({ indexed: 3 });
    });

    it('never indexes an entry that retention removed before it got there', async () => {
      const { index, seals, append } = await make();
      await append(auditEvents(8));
      const entries = await seals.entriesAfter('0-0', 10);
      expect(await seals.acquireLease('a', LEASE)).toBe(true);
      expect(await index.indexNext('a', 2)).toEqual({ indexed: 2 });
      // Sealed and cut at seq 6, four entries ahead of the index; then trimmed.
      const state: SealedState = { seq: 6, hash: 'c'.repeat(64), id: entries[5]!.id, at: '2030-01-02T00:00:00.000Z', legacyHash: GENESIS_HASH };
      expect(await seals.seal('a', LEASE, 0, state, checkpointAt(state))).toBe('ok');
      expect(await seals.writeCut('a', cutAt(checkpointAt(state)))).toBe('ok');
      expect(await seals.trimToCut('a', 100)).toBe(6);
      expect(await index.indexNext('a', 10)).toEqual({ indexed: 2 });
      expect(await index.position()).toBe(entries[7]!.id);
      expect(await index.indexNext('a', 10)).toEqual({ indexed: 0 });
    });
  });
}
