import type { TestProject } from 'vitest/node';
import { startPrivatePostgres } from './postgres.ts';

// One throw-away PostgreSQL cluster for the whole run (test files each make a database on
// it: testPostgres()). When PostgreSQL is missing, everything else still runs: only the tests
// that ask for it fail, with the install hint.

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    const server = await startPrivatePostgres();
    project.provide('postgresUrl', server.url);
    project.provide('postgresUnavailable', null);
    return () => server.stop();
  } catch (err) {
    project.provide('postgresUrl', null);
    project.provide('postgresUnavailable', (err as Error).message);
    return async () => undefined;
  }
}
