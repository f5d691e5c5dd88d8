import { describe, expect, it } from 'vitest';
import { recordAuthFailure } from '../../../src/app/record-auth-failure.ts';
import type { AuthFailureLimiter } from '../../../src/core/ports.ts';
import { createMemoryAuditLog } from '../../helpers/memory/audit-log.ts';
import { createMemoryFailureLimiter } from '../../helpers/memory/auth-failure-limiter.ts';
import { createManualClock, T0 } from '../../helpers/memory/clock.ts';
import { createMemoryLogger } from '../../helpers/memory/logger.ts';

// Every refused credential: a log line always, and an `auth_failed` audit event unless the
// address has had its share this minute (a flood must not grow the chain without bound).

function setup() {
  const clock = createManualClock();
  const audit = createMemoryAuditLog({ clock });
  const logger = createMemoryLogger();
  return { clock, audit, logger, deps: { audit, clock, logger } };
}

const failure = (address = '203.0.113.7') => ({ address, reason: 'bad_signature', via: 'agent-api', details: { agent: 'billing-agent' } });

describe('recordAuthFailure', () => {
  it('logs and audits one failure: actor the address, data what and where', async () => {
    const { deps, audit, logger } = setup();
    await recordAuthFailure(deps, undefined, failure());
    expect(audit.entries()).toMatchObject([
      { type: 'auth_failed', at: new Date(T0).toISOString(), actor: 'ip:203.0.113.7', proposal_id: null, agent: null, data: { reason: 'bad_signature', via: 'agent-api', agent: 'billing-agent' } },
    ]);
    expect(logger.at('warn')).toEqual([{ level: 'warn', obj: { reason: 'bad_signature', ip: '203.0.113.7', via: 'agent-api' }, msg: 'authentication failed' }]);
  });

  it('audits at most the limiter cap per address and minute, logs every one, and starts again next minute', async () => {
    const { deps, audit, logger, clock } = setup();
    const limiter = createMemoryFailureLimiter(clock, 3);
    for (let i = 0; i < 5; i++) await recordAuthFailure(deps, limiter, failure());
    await recordAuthFailure(deps, limiter, failure('198.51.100.1'));
    expect(audit.entries().map((e) => e.actor)).toEqual(['ip:203.0.113.7', 'ip:203.0.113.7', 'ip:203.0.113.7', 'ip:198.51.100.1']);
    expect(logger.at('warn')).toHaveLength(6);

    clock.advance(60_000);
    await recordAuthFailure(deps, limiter, failure());
    expect(audit.entries()).toHaveLength(5);
  });

  it('a limiter that fails lets the event through (an outage must not hide an attack)', async () => {
    const { deps, audit } = setup();
    const broken: AuthFailureLimiter = { allow: () => Promise.reject(new Error('redis down')) };
    await recordAuthFailure(deps, broken, failure());
    expect(audit.entries()).toHaveLength(1);
  });

  it('an audit log that fails is logged, never thrown at the caller (who is answering 401)', async () => {
    const { deps, logger } = setup();
    const failing = { ...deps, audit: { ...deps.audit, append: () => Promise.reject(new Error('redis down')) } };
    await expect(recordAuthFailure(failing, undefined, failure())).resolves.toBeUndefined();
    expect(logger.at('error')).toEqual([{ level: 'error', obj: { error: 'redis down' }, msg: 'could not record an auth failure' }]);
  });
});
