import type { Cluster, Redis } from 'ioredis';
import type { CredentialLedger, CredentialRecord } from '../../src/core/credential-ports.ts';
import { redisKeys } from './keys.ts';
import { runLua } from './lua-commands.ts';
import type { RedisStoreOptions } from './proposal-store.ts';

// The credential ledger: one hash per proposal (`state` live/revoked, the handle, the sealed
// pickup), a sorted set of live ones by expiry for the sweep, a set per agent for the kill
// switch. Each step that must happen once is one script. Records stay (revoked) for a week,
// the audit holding the history.

const KEEP_REVOKED_SECONDS = 7 * 24 * 3600;

export function createRedisCredentialLedger(redis: Redis | Cluster, opts: RedisStoreOptions): CredentialLedger {
  const keys = redisKeys(opts.prefix);
  return {
    async reserve(r: CredentialRecord) {
      const ok = await runLua(redis, 'countersignCredentialReserve', [
        keys.credential(r.proposal_id),
        keys.credentialsLive,
        keys.agentCredentials(r.agent),
        r.proposal_id,
        r.agent,
        r.issuer,
        r.handle,
        String(r.expires_at),
      ]);
      return ok === 1;
    },
    async savePickup(proposalId, sealed) {
      await runLua(redis, 'countersignCredentialPickupSave', [keys.credential(proposalId), sealed]);
    },
    async pickup(proposalId, take) {
      const key = keys.credential(proposalId);
      if (!take) return (await redis.hget(key, 'pickup')) ?? null;
      const v = await runLua(redis, 'countersignCredentialPickupTake', [key]);
      return typeof v === 'string' ? v : null;
    },
    async dropPickup(proposalId) {
      await redis.hdel(keys.credential(proposalId), 'pickup');
    },
    async get(proposalId) {
      const h = await redis.hgetall(keys.credential(proposalId));
      if (h['handle'] === undefined) return null;
      return {
        proposal_id: proposalId,
        agent: h['agent'] ?? '',
        issuer: h['issuer'] ?? '',
        handle: h['handle'],
        expires_at: Number(h['expires_at']),
        state: h['state'] === 'revoked' ? 'revoked' : 'live',
      };
    },
    async markRevoked(proposalId) {
      const agent = (await redis.hget(keys.credential(proposalId), 'agent')) ?? '';
      const ok = await runLua(redis, 'countersignCredentialRevoke', [
        keys.credential(proposalId),
        keys.credentialsLive,
        keys.agentCredentials(agent),
        proposalId,
        String(KEEP_REVOKED_SECONDS),
      ]);
      return ok === 1;
    },
    async due(now, limit) {
      return redis.zrangebyscore(keys.credentialsLive, '-inf', String(now), 'LIMIT', 0, limit);
    },
    async liveOf(agent) {
      return redis.smembers(keys.agentCredentials(agent));
    },
  };
}
