import { liveUpdatesContract } from '../contracts/live-updates.contract.ts';
import { createMemoryLiveUpdatesHub } from '../helpers/memory/live-updates.ts';

// The in-memory fake keeps the same contract as the Redis one (test/integration/live-updates.redis.test.ts).
const hub = createMemoryLiveUpdatesHub();
liveUpdatesContract(() => hub.connect());
