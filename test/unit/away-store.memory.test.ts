import { awayStoreContract } from '../contracts/away-store.contract.ts';
import { createMemoryAuditLog } from '../helpers/memory/audit-log.ts';
import { createMemoryAwayStore } from '../helpers/memory/away-store.ts';

// The in-memory fake keeps the same contract as the Redis store (test/integration/away-store.redis.test.ts).
awayStoreContract(() => {
  const audit = createMemoryAuditLog();
  return { store: createMemoryAwayStore({ audit }), audit };
});
