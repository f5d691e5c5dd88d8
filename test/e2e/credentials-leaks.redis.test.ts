import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../adapters/redis/private-server.ts';
import { recordDecision } from '../../src/app/record-decision.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { waitFor } from '../helpers/fake-slack.ts';
import { cacheServer, credentialsPolicy, everythingUnder, ordersDatabase, taskBody } from '../helpers/credential-downstreams.ts';
import { logSink } from '../helpers/observe.ts';

// Just-in-time credentials (issue 15): no issued password and no admin URL's password in
// Redis (the pick-up waits sealed), in the log (debug level) or in the audit, across issue,
// hand-over, revocation and an issuer that cannot be reached.

const orders = ordersDatabase();
const cache = cacheServer();
const logs = logSink();
const LEGACY_ADMIN_PASSWORD = `legacy-${randomBytes(8).toString('hex')}`;
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    policy: credentialsPolicy(),
    env: {
      LOG_LEVEL: 'debug',
      ORDERS_DB_ADMIN_URL: orders.adminUrl,
      CACHE_ADMIN_URL: cache.adminUrl,
      // A closed port: issuing fails, and the failure is logged.
      LEGACY_DB_ADMIN_URL: `postgres://legacy_admin:${LEGACY_ADMIN_PASSWORD}@127.0.0.1:${await freePort()}/orders`,
    },
    start: { logStream: logs.stream },
  });
});

async function approved(body: Record<string, unknown>): Promise<string> {
  const { body: p } = await app.billing.propose(body);
  if (p.status === 'pending') await recordDecision(app.running.deps, { proposalId: p.id, person: 'alice', platform: 'console', vote: 'approve' });
  return p.id as string;
}

describe('secrets of just-in-time credentials', () => {
  it('are in no Redis value, no log line and no audit entry', async () => {
    const ids = [await approved(taskBody('postgres', 'migrate')), await approved(taskBody('cache', 'warm')), await approved(taskBody('postgres', 'read'))];
    const failed = await approved(taskBody('legacy-db', 'read'));
    // Everything issued and waiting for its hand-over: the pick-ups are in Redis, sealed. A
    // proposal the policy allowed gets its credential after the 201, so wait for all three.
    const waiting = await waitFor(
      async () => {
        const now = await everythingUnder(app.running.redis, app.prefix);
        return (now.text.match(/"pickup"/g) ?? []).length >= 3 ? now : null;
      },
      { what: 'three credential pick-ups' },
    );

    const handed: { id: string; token: string; password: string; url: string }[] = [];
    for (const id of ids) {
      const read = await app.billing.request('GET', `/v1/proposals/${id}`);
      expect(read.body.credential?.password).toEqual(expect.any(String));
      handed.push({ id, token: read.body.execution_token, password: read.body.credential.password, url: read.body.credential.url });
    }
    const inFlight = await everythingUnder(app.running.redis, app.prefix);
    for (const h of handed) {
      const res = await app.billing.request('POST', `/v1/proposals/${h.id}/outcome`, { token: h.token, status: 'succeeded' });
      expect(res.status).toBe(200);
    }
    expect((await app.billing.request('GET', `/v1/proposals/${failed}`)).body.execution).toMatchObject({ reason: 'credential_unavailable' });
    const after = await everythingUnder(app.running.redis, app.prefix);

    const secrets = [...handed.map((h) => h.password), orders.adminPassword, cache.adminPassword, LEGACY_ADMIN_PASSWORD];
    // The checks below must be able to fail: the pick-ups were there, and the log and audit speak of the logins.
    expect(waiting.text.match(/"pickup"/g)).toHaveLength(3);
    expect(after.keys).toBeGreaterThan(10);
    for (const { text } of [waiting, inFlight, after]) {
      for (const secret of secrets) expect(text).not.toContain(secret);
    }

    const logText = JSON.stringify(logs.lines());
    expect(logText).toContain('credential issued');
    expect(logText).toContain('could not issue the task credential');
    for (const secret of secrets) expect(logText).not.toContain(secret);

    const audit = await app.admin<{ events: { type: string }[] }>('/v1/audit?limit=500');
    const types = audit.body.events.map((e) => e.type);
    expect(types.filter((t) => t === 'credential_issued')).toHaveLength(3);
    expect(types.filter((t) => t === 'credential_revoked')).toHaveLength(3);
    const auditText = JSON.stringify(audit.body);
    for (const secret of secrets) expect(auditText).not.toContain(secret);
    // Nor the connection URLs (they carry the passwords, URL-encoded or not).
    for (const h of handed) expect(auditText + logText + after.text).not.toContain(h.url);
  });
});
