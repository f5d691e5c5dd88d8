import { inForce, type Absence } from '../../../src/core/away.ts';
import type { AwayStore } from '../../../src/core/ports.ts';
import type { MemoryAuditLog } from './audit-log.ts';

// AwayStore in memory (test/contracts/away-store.contract.ts states what it shares with the
// Redis store): each change and its events in one step, the events appended to the audit fake.

export interface MemoryAwayStore extends AwayStore {
  /** The absence stored for `person`, in force or not (what the proposal store's commit reads, at once). */
  stored(person: string): Absence | undefined;
}

export function createMemoryAwayStore(opts: { audit: MemoryAuditLog }): MemoryAwayStore {
  const absences = new Map<string, Absence>();
  const same = (a: Absence, b: Absence) => a.delegate === b.delegate && a.until === b.until && a.set_at === b.set_at;
  return {
    stored: (person) => absences.get(person),
    async set(person, absence, now, events) {
      const theirs = absences.get(absence.delegate);
      if (theirs !== undefined && inForce(theirs, now)) return { kind: 'delegate_away', until: theirs.until };
      opts.audit.appendNow(events);
      absences.set(person, { ...absence });
      return { kind: 'set' };
    },
    async clear(person, absence, events) {
      const stored = absences.get(person);
      if (stored === undefined || !same(stored, absence)) return false;
      opts.audit.appendNow(events);
      absences.delete(person);
      return true;
    },
    async get(person, now) {
      const a = absences.get(person);
      return a !== undefined && inForce(a, now) ? { ...a } : null;
    },
    async list(now) {
      return new Map([...absences].filter(([, a]) => inForce(a, now)).sort(([x], [y]) => (x < y ? -1 : 1)).map(([p, a]) => [p, { ...a }]));
    },
  };
}
