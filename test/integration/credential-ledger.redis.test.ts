import { describe, expect, it } from 'vitest';
import { createRedisCredentialLedger } from '../../adapters/redis/credential-ledger.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createSecretSealer } from '../../adapters/tokens/secret-sealer.ts';
import { newId } from '../../src/core/ids.ts';
import { testRedis } from '../helpers/redis.ts';

// The credential ledger on Redis: what must happen once happens once (reserve, the pick-up,
// revoke), against a second connection too; and the sealer that keeps the pick-up unreadable.

const { redis, prefix, connect } = testRedis();
const ledger = createRedisCredentialLedger(redis, { prefix });
const record = (agent = 'ops-agent', expires_at = Date.now() + 60_000) => ({ proposal_id: newId('p', Date.now()), agent, issuer: 'orders-db', handle: `cs_${Math.random().toString(36).slice(2)}`, expires_at });

describe('credential ledger', () => {
  it('reserves once per proposal, whoever asks first (a second connection loses)', async () => {
    const r = record();
    const other = createRedisCredentialLedger(connect(), { prefix });
    const results = await Promise.all([ledger.reserve(r), other.reserve({ ...r, handle: 'cs_other' })]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await ledger.get(r.proposal_id))?.state).toBe('live');
    expect(await ledger.liveOf(r.agent)).toContain(r.proposal_id);
  });

  it('hands the pick-up over once when taken, any number of times when only read, never after revoke', async () => {
    const r = record();
    await ledger.reserve(r);
    await ledger.savePickup(r.proposal_id, 'sealed-1');
    expect(await ledger.pickup(r.proposal_id, false)).toBe('sealed-1');
    const taken = await Promise.all([ledger.pickup(r.proposal_id, true), createRedisCredentialLedger(connect(), { prefix }).pickup(r.proposal_id, true)]);
    expect(taken.filter((t) => t !== null)).toEqual(['sealed-1']);
    await ledger.savePickup(r.proposal_id, 'sealed-2');
    expect(await ledger.markRevoked(r.proposal_id)).toBe(true);
    expect(await ledger.markRevoked(r.proposal_id)).toBe(false);
    expect(await ledger.pickup(r.proposal_id, false)).toBeNull();
    // A pick-up saved after the revocation (a slow issuer) is not kept.
    await ledger.savePickup(r.proposal_id, 'sealed-3');
    expect(await ledger.pickup(r.proposal_id, true)).toBeNull();
    expect(await ledger.liveOf(r.agent)).not.toContain(r.proposal_id);
  });

  it('lists the live ones whose time is up, and drops them from the list once revoked', async () => {
    const past = record('due-agent', Date.now() - 1000);
    const future = record('due-agent', Date.now() + 3_600_000);
    await ledger.reserve(past);
    await ledger.reserve(future);
    const due = await ledger.due(Date.now(), 1000);
    expect(due).toContain(past.proposal_id);
    expect(due).not.toContain(future.proposal_id);
    await ledger.markRevoked(past.proposal_id);
    expect(await ledger.due(Date.now(), 1000)).not.toContain(past.proposal_id);
  });

  it('refuses, writing nothing, when its live set holds another type', async () => {
    const keys = redisKeys(prefix);
    const aside = `${keys.credentialsLive}:aside`;
    const had = (await redis.exists(keys.credentialsLive)) === 1;
    if (had) await redis.rename(keys.credentialsLive, aside);
    await redis.set(keys.credentialsLive, 'not a sorted set');
    const r = record();
    try {
      await expect(ledger.reserve(r)).rejects.toThrow(/STORE_REFUSED/);
      expect(await ledger.get(r.proposal_id)).toBeNull();
    } finally {
      await redis.del(keys.credentialsLive);
      if (had) await redis.rename(aside, keys.credentialsLive);
    }
  });
});

describe('credential ledger, a wrong-typed key at revoke', () => {
  it('refuses the revocation before any write: the record stays live, its pick-up and lists as they were', async () => {
    const r = record('typed-agent');
    await ledger.reserve(r);
    await ledger.savePickup(r.proposal_id, 'sealed');
    const agentSet = redisKeys(prefix).agentCredentials(r.agent);
    await redis.del(agentSet);
    await redis.set(agentSet, 'not a set');
    try {
      await expect(ledger.markRevoked(r.proposal_id)).rejects.toThrow(/STORE_REFUSED/);
      expect((await ledger.get(r.proposal_id))?.state).toBe('live');
      expect(await ledger.pickup(r.proposal_id, false)).toBe('sealed');
      expect(await ledger.due(r.expires_at, 1000)).toContain(r.proposal_id);
    } finally {
      await redis.del(agentSet);
    }
    expect(await ledger.markRevoked(r.proposal_id)).toBe(true);
  });
});

describe('secret sealer', () => {
  it('opens only what it sealed, for the same proposal, with the same key', () => {
    const sealer = createSecretSealer('key-material-one');
    const sealed = sealer.seal('{"password":"hunter2-but-longer"}', 'p_a');
    expect(sealed).not.toContain('hunter2');
    expect(sealer.open(sealed, 'p_a')).toBe('{"password":"hunter2-but-longer"}');
    expect(sealer.open(sealed, 'p_b')).toBeNull();
    expect(createSecretSealer('key-material-two').open(sealed, 'p_a')).toBeNull();
    const flipped = Buffer.from(sealed, 'base64url');
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    expect(sealer.open(flipped.toString('base64url'), 'p_a')).toBeNull();
    expect(sealer.open('short', 'p_a')).toBeNull();
    // A fresh IV each time: the same secret seals differently.
    expect(sealer.seal('x', 'p_a')).not.toBe(sealer.seal('x', 'p_a'));
  });
});
