import { sessionStoreContract } from '../contracts/session-store.contract.ts';
import { createMemorySessionStore } from '../helpers/memory/sessions.ts';

// The in-memory fake keeps the same contract as the Redis store (test/integration/sessions.redis.test.ts),
// expiries included: its time is a clock the test moves.
let now = Date.parse('2030-01-01T00:00:00.000Z');
const clock = { now: () => now };
sessionStoreContract(() => createMemorySessionStore(clock), { advance: (ms) => void (now += ms) });
