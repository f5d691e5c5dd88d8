import { describe, expect, it } from 'vitest';
import { auditLogContract } from '../contracts/audit-log.contract.ts';
import { compareIds, createMemoryAuditLog, hasWord } from '../helpers/memory/audit-log.ts';
import { createManualClock, T0 } from '../helpers/memory/clock.ts';
import { createMemoryProposalStore } from '../helpers/memory/proposal-store.ts';

auditLogContract('memory', async () => {
  const clock = createManualClock();
  const audit = createMemoryAuditLog({ clock });
  return { audit, store: createMemoryProposalStore({ audit, clock }), tamper: audit.tamper };
});

describe('memory AuditLog', () => {
  const ev = { type: 'auth_failed' as const, at: new Date(T0).toISOString(), proposal_id: null, agent: null, actor: 'system', data: {} };

  it('gives entries stream-like ids from its clock, in order even when the clock stands still or goes back', async () => {
    const clock = createManualClock();
    const log = createMemoryAuditLog({ clock });
    await log.append([ev, ev]);
    clock.advance(5);
    await log.append([ev]);
    clock.set(T0 - 1_000);
    await log.append([ev]);
    const ids = log.entries().map((e) => e.id);
    expect(ids).toEqual([`${T0}-0`, `${T0}-1`, `${T0 + 5}-0`, `${T0 + 5}-1`]);
    expect([...ids].sort(compareIds)).toEqual(ids);
  });

  it('hands out copies: changing a read entry changes nothing stored', async () => {
    const log = createMemoryAuditLog();
    await log.append([{ ...ev, data: { list: [1] } }]);
    const [read] = log.entries();
    (read!.data['list'] as number[]).push(2);
    expect(log.entries()[0]!.data).toEqual({ list: [1] });
  });

  it('matches a word only where no letter or digit is glued to it', () => {
    expect(hasWord('approval_refused\n{"intent":"refunds"}', 'refused')).toBe(true);
    expect(hasWord('{"intent":"refunds"}', 'refund')).toBe(false);
    expect(hasWord('{"invoice":4711}', '4711')).toBe(true);
    expect(hasWord('x47110', '4711')).toBe(false);
    expect(hasWord('person:alice', 'person:alice')).toBe(true);
    expect(hasWord('refund refunds', 'refund')).toBe(true);
  });
});
