import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Most test time is waiting on Redis, HTTP and child processes, not CPU: vitest's default of
    // one worker fewer than the cores runs one file at a time on 2 cores (295 s); two take ~150 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // The JSON report gives .ci/run a plain closing line to print.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    // One private redis-server and one PostgreSQL cluster for the whole run; test files share
    // them under distinct prefixes and databases.
    globalSetup: ['test/helpers/global-redis.ts', 'test/helpers/global-postgres.ts'],
  },
});
