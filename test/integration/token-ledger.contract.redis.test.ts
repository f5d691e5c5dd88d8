import { systemClock } from '../../src/core/clock.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { tokenLedgerContract } from '../contracts/token-ledger.contract.ts';
import { testRedis } from '../helpers/redis.ts';

// The TokenLedger contract against the Redis adapter: each case on a prefix of its own. Its
// expiries follow Redis' clock (and Date.now()), so the contract gets the system clock.
const { redis, newPrefix } = testRedis();

tokenLedgerContract('redis', async () => ({ ledger: createRedisTokenLedger(redis, { prefix: newPrefix() }), clock: systemClock }));
