import { describe, expect, it } from 'vitest';
import { createRedisAclIssuer } from '../../adapters/credentials/redis-acl-issuer.ts';
import { createRedisCredentialLedger } from '../../adapters/redis/credential-ledger.ts';
import { createSecretSealer } from '../../adapters/tokens/secret-sealer.ts';
import type { AppDeps } from '../../src/app/deps.ts';
import type { ExecutionDeps } from '../../src/app/execution-deps.ts';
import { issueTaskCredential, revokeAgentCredentials } from '../../src/app/task-credentials.ts';
import type { CredentialIssuer, CredentialLedger, CredentialSpec } from '../../src/core/credential-ports.ts';
import { newId } from '../../src/core/ids.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { cacheServer } from '../helpers/credential-downstreams.ts';
import { createMemoryLogger } from '../helpers/memory/logger.ts';
import { testRedis } from '../helpers/redis.ts';

// A revocation (kill switch, cancel, sweep) while the task's login is still being made: the
// ledger has the record (reserved before the issuer runs), the downstream not yet the login.
// Whichever way the two interleave, no login may be left on the downstream once both are done.
// Real Redis (the ledger) and a real redis-server as the downstream; the issuer and the
// ledger's markRevoked are held at a gate to force each interleaving.

const r = testRedis();
const cache = cacheServer();
const SPEC: CredentialSpec = { name: 'cache', kind: 'redis-acl', settings: { admin_url: { env: 'CACHE_ADMIN_URL' }, acl: '~orders:* +get' } };

function gate(): { reached: Promise<void>; pass: () => void; hold: () => Promise<void> } {
  let reach!: () => void;
  let pass!: () => void;
  const reached = new Promise<void>((res) => (reach = res));
  const passed = new Promise<void>((res) => (pass = res));
  return { reached, pass, hold: () => (reach(), passed) };
}

function setUp(holds: { issue?: () => Promise<void>; markRevoked?: () => Promise<void> }) {
  const logger = createMemoryLogger();
  const real = createRedisAclIssuer({ secrets: { get: (name) => (name === 'CACHE_ADMIN_URL' ? cache.adminUrl : undefined) }, logger });
  const issuer: CredentialIssuer = {
    ...real,
    async issue(spec, request) {
      await holds.issue?.();
      return real.issue(spec, request);
    },
  };
  const realLedger = createRedisCredentialLedger(r.redis, { prefix: r.prefix });
  const ledger: CredentialLedger = {
    ...realLedger,
    async markRevoked(id) {
      await holds.markRevoked?.();
      return realLedger.markRevoked(id);
    },
  };
  const app = {
    policy: { credentials: new Map([['cache', SPEC]]) },
    logger,
    clock: { now: () => Date.now() },
    audit: { append: async () => undefined },
    store: { get: async () => null },
    jobs: { notify: async () => undefined },
  } as unknown as AppDeps;
  const x = { app, credentials: { issuers: new Map([[issuer.kind, issuer]]), ledger, sealer: createSecretSealer('test-key-material') } } as unknown as ExecutionDeps;
  const p = { id: newId('p', Date.now()), agent: 'racing-agent', decision: { effect: 'allow', credentials: { issuer: 'cache', ttl_ms: 600_000 } } } as unknown as Proposal;
  return { x, p, handle: real.handleFor({ proposal_id: p.id, agent: p.agent, expires_at: 0 }), close: () => real.close() };
}

describe('a revocation while the login is being made', () => {
  it('that completes before the login exists: the issue drops what it made and reports failure', async () => {
    const issuing = gate();
    const { x, p, handle, close } = setUp({ issue: issuing.hold });
    const issued = issueTaskCredential(x, p);
    await issuing.reached;
    expect(await revokeAgentCredentials(x, p.agent)).toBe(1);
    issuing.pass();
    expect(await issued).toBe(false);
    expect(await cache.users()).not.toContain(handle);
    await close();
  });

  it('that drops on the downstream before the login exists and records after it: the revocation drops it', async () => {
    const issuing = gate();
    const marking = gate();
    const { x, p, handle, close } = setUp({ issue: issuing.hold, markRevoked: marking.hold });
    const issued = issueTaskCredential(x, p);
    await issuing.reached;
    const revoked = revokeAgentCredentials(x, p.agent);
    await marking.reached; // its downstream revoke found no login yet
    issuing.pass();
    expect(await issued).toBe(true); // the record was still live when the issue checked
    expect(await cache.users()).toContain(handle);
    marking.pass();
    expect(await revoked).toBe(1);
    expect(await cache.users()).not.toContain(handle);
    await close();
  });
});
