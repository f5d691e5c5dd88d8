import { describe, expect, it } from 'vitest';
import { auditEvent, type AuditEventInput } from '../../src/core/audit-events.ts';
import type { Absence } from '../../src/core/away.ts';
import type { AuditLog, AwayStore } from '../../src/core/ports.ts';

// What every AwayStore does (src/core/ports.ts), whatever keeps the data. `make` gives a store
// and the audit log its events go to, both empty.

const NOW = Date.parse('2026-12-01T10:00:00Z');
const DAY = 24 * 60 * 60_000;

function absence(delegate: string, days = 3): Absence {
  return { delegate, until: NOW + days * DAY, set_at: NOW };
}

function setEvent(person: string, a: Absence): AuditEventInput {
  return auditEvent('away_set', { at: new Date(NOW).toISOString(), proposal_id: null, agent: null, actor: `person:${person}` }, { delegate: a.delegate, until: new Date(a.until).toISOString() });
}

function clearEvent(person: string, a: Absence): AuditEventInput {
  return auditEvent('away_cleared', { at: new Date(NOW).toISOString(), proposal_id: null, agent: null, actor: `person:${person}` }, { delegate: a.delegate, until: new Date(a.until).toISOString() });
}

async function logged(audit: AuditLog): Promise<string[]> {
  const out: string[] = [];
  for await (const e of audit.scan()) out.push(`${e.type} ${e.actor} ${String(e.data['delegate'])}`);
  return out;
}

export function awayStoreContract(make: () => Promise<{ store: AwayStore; audit: AuditLog }> | { store: AwayStore; audit: AuditLog }): void {
  describe('AwayStore contract', () => {
    it('nobody is away at first', async () => {
      const { store } = await make();
      expect(await store.get('alice', NOW)).toBeNull();
      expect([...(await store.list(NOW))]).toEqual([]);
    });

    it('an absence set reads back, with its event in the log, and reads as absent from its until on', async () => {
      const { store, audit } = await make();
      const a = absence('bob');
      expect(await store.set('alice', a, NOW, [setEvent('alice', a)])).toEqual({ kind: 'set' });
      expect(await store.get('alice', NOW)).toEqual(a);
      expect([...(await store.list(NOW + DAY))]).toEqual([['alice', a]]);
      expect(await logged(audit)).toEqual(['away_set person:alice bob']);
      expect(await store.get('alice', a.until - 1)).toEqual(a);
      expect(await store.get('alice', a.until)).toBeNull();
      expect([...(await store.list(a.until))]).toEqual([]);
    });

    it('a later absence replaces the earlier one', async () => {
      const { store } = await make();
      await store.set('alice', absence('bob'), NOW, []);
      await store.set('alice', absence('carol', 5), NOW + 1, []);
      expect((await store.get('alice', NOW + 2))?.delegate).toBe('carol');
    });

    it('no chains: a delegate away now is refused, nothing written; one whose absence ended is fine', async () => {
      const { store, audit } = await make();
      const bobs = absence('alice', 2);
      await store.set('bob', bobs, NOW, [setEvent('bob', bobs)]);
      const back = absence('bob');
      expect(await store.set('alice', back, NOW, [setEvent('alice', back)])).toEqual({ kind: 'delegate_away', until: bobs.until });
      expect(await store.get('alice', NOW)).toBeNull();
      expect(await logged(audit)).toEqual(['away_set person:bob alice']);
      // Bob is back by then: his entry (still stored) no longer counts.
      const later = { ...back, until: bobs.until + DAY };
      expect(await store.set('alice', later, bobs.until, [])).toEqual({ kind: 'set' });
    });

    it('clear ends exactly the absence read, with its event; a replaced or missing one is left alone', async () => {
      const { store, audit } = await make();
      const first = absence('bob');
      await store.set('alice', first, NOW, [setEvent('alice', first)]);
      const second = absence('carol', 4);
      await store.set('alice', second, NOW + 1, [setEvent('alice', second)]);
      expect(await store.clear('alice', first, [clearEvent('alice', first)])).toBe(false);
      expect(await store.get('alice', NOW + 2)).toEqual(second);
      expect(await store.clear('alice', second, [clearEvent('alice', second)])).toBe(true);
      expect(await store.get('alice', NOW + 2)).toBeNull();
      expect(await store.clear('alice', second, [clearEvent('alice', second)])).toBe(false);
      expect(await logged(audit)).toEqual(['away_set person:alice bob', 'away_set person:alice carol', 'away_cleared person:alice carol']);
    });

    it('list returns every absence in force, by person', async () => {
      const { store } = await make();
      await store.set('carol', absence('dave', 1), NOW, []);
      await store.set('alice', absence('bob', 3), NOW, []);
      expect([...(await store.list(NOW))].map(([p, a]) => `${p}>${a.delegate}`)).toEqual(['alice>bob', 'carol>dave']);
      expect([...(await store.list(NOW + 2 * DAY))].map(([p]) => p)).toEqual(['alice']);
    });
  });
}
