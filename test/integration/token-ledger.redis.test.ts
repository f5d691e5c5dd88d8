import { describe, expect, it } from 'vitest';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { newId } from '../../src/core/ids.ts';
import { testRedis } from '../helpers/redis.ts';

// The token ledger's atomic steps against real Redis.

const { redis, prefix } = testRedis();
const ledger = createRedisTokenLedger(redis, { prefix });

function record(pid: string, jti: string, token: string, replace = false) {
  return { jti, proposal_id: pid, agent: 'ops-agent', expires_at: Date.now() + 60_000, token, pickup: true, replace };
}

describe('token ledger', () => {
  it("a losing issuer's revocation leaves the winner's token (after a recovery replaced it)", async () => {
    const pid = newId('p', Date.now());
    // A live issuer stores its token; a recovery pass replaces it and wins the record; the
    // live issuer loses the record and revokes its own token.
    expect(await ledger.save(record(pid, 't-live', 'live.token.sig'))).toBe(true);
    expect(await ledger.save(record(pid, 't-recovery', 'recovery.token.sig', true))).toBe(true);
    expect(await ledger.revoke('t-live')).toBe(true);
    expect(await ledger.tokenFor(pid)).toBe('recovery.token.sig');
    expect(await ledger.tokenFor(pid, 't-recovery')).toBe('recovery.token.sig');
    expect(await ledger.tokenFor(pid, 't-live')).toBeNull();
    expect(await ledger.state('t-recovery')).toBe('issued');
    // The pick-up slot too, and only its own token is handed out.
    expect(await ledger.takePickup(pid, 't-recovery')).toBe('recovery.token.sig');
    expect(await ledger.takePickup(pid, 't-recovery')).toBeNull();
  });

  it('close: an issued token becomes closed and its copies go; a redeemed one stays redeemed', async () => {
    const a = newId('p', Date.now());
    await ledger.save(record(a, 't-close-a', 'a.token.sig'));
    expect(await ledger.close('t-close-a')).toBe(true);
    expect(await ledger.state('t-close-a')).toBe('closed');
    expect(await ledger.tokenFor(a)).toBeNull();
    expect(await ledger.takePickup(a)).toBeNull();
    expect(await ledger.redeem('t-close-a')).toBe(false);
    expect(await ledger.outstandingTokens('ops-agent')).not.toContainEqual({ jti: 't-close-a', proposal_id: a });

    const b = newId('p', Date.now());
    await ledger.save(record(b, 't-close-b', 'b.token.sig'));
    expect(await ledger.outstandingTokens('ops-agent')).toContainEqual({ jti: 't-close-b', proposal_id: b });
    expect(await ledger.redeem('t-close-b')).toBe(true);
    expect(await ledger.close('t-close-b')).toBe(false);
    expect(await ledger.state('t-close-b')).toBe('redeemed');
  });
});
