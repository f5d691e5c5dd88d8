import { describe, expect, it } from 'vitest';
import { auditSealsContract } from '../contracts/audit-seals.contract.ts';
import { createManualClock } from '../helpers/memory/clock.ts';
import { createMemoryAuditSeals } from '../helpers/memory/audit-seals.ts';

auditSealsContract('memory', async () => {
  const seals = createMemoryAuditSeals({ clock: createManualClock() });
  return { seals, append: async (events, chain) => seals.append(events, chain) };
});

// What needs time to pass, on the fake's clock.
describe('memory AuditSeals', () => {
  it('a lease not renewed runs out after its ttl, and then anyone may take it', async () => {
    const clock = createManualClock();
    const seals = createMemoryAuditSeals({ clock });
    expect(await seals.acquireLease('a', 1000)).toBe(true);
    clock.advance(999);
    expect(await seals.acquireLease('b', 1000)).toBe(false);
    expect(await seals.renewLease('a', 1000)).toBe(true);
    clock.advance(999);
    expect(await seals.acquireLease('b', 1000)).toBe(false);
    clock.advance(1);
    expect(await seals.renewLease('a', 1000)).toBe(false);
    expect(await seals.acquireLease('b', 1000)).toBe(true);
  });
});
