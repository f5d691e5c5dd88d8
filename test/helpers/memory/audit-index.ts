import type { AuditIndexStore } from '../../../src/core/audit-index-ports.ts';
import type { AuditSeals } from '../../../src/core/audit-seal-ports.ts';

// AuditIndexStore in memory, held to adapters/redis/audit-index-store.ts + audit-index.lua by
// test/contracts/audit-index.contract.ts, over the entries and the lease of a memory AuditSeals
// (test/helpers/memory/audit-seals.ts). It keeps no index (the memory AuditLog's search scans),
// only the position: one step reads after it and moves it, while the owner holds the lease.
// Entries that retention removed are no longer there to read, as in Redis.

export function createMemoryAuditIndex(seals: AuditSeals): AuditIndexStore {
  let position: string | null = null;
  return {
    async position() {
      return position;
    },
    async indexNext(owner, count) {
      if (!(await seals.holdsLease(owner))) return 'fenced';
      const entries = await seals.entriesAfter(position ?? '0-0', count);
      const last = entries.at(-1);
      if (last === undefined) return { indexed: 0 };
      position = last.id;
      return { indexed: entries.length };
    },
  };
}
