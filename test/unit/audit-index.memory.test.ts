import { auditIndexContract } from '../contracts/audit-index.contract.ts';
import { createMemoryAuditIndex } from '../helpers/memory/audit-index.ts';
import { createMemoryAuditSeals } from '../helpers/memory/audit-seals.ts';
import { createManualClock } from '../helpers/memory/clock.ts';

auditIndexContract('memory', async () => {
  const seals = createMemoryAuditSeals({ clock: createManualClock() });
  return {
    index: createMemoryAuditIndex(seals),
    seals,
    append: async (events) => seals.append(events, 3),
    editData: async (seq, data) => seals.tamper.edit(seq, { data }),
  };
});
