import { authFailureLimiterContract } from '../contracts/auth-failure-limiter.contract.ts';
import { createMemoryFailureLimiter } from '../helpers/memory/auth-failure-limiter.ts';

// The in-memory fake keeps the same contract as the Redis limiter (test/integration/auth-failure-limiter.redis.test.ts).
authFailureLimiterContract((clock, perMinute) => createMemoryFailureLimiter(clock, perMinute));
