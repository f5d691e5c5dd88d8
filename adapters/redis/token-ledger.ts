import type { Cluster, Redis } from 'ioredis';
import type { TokenLedger, TokenRecord, TokenState, WriteOptions } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';
import { defineLuaCommands, runLua, runLuaWhenFull, type LuaCommand } from './lua-commands.ts';
import type { RedisStoreOptions } from './proposal-store.ts';

// The token ledger. Keys (named in keys.ts, all under the installation's `{prefix}` hash tag,
// so each script's keys share one Cluster slot):
//   token:<jti>            hash  proposal_id, agent, state (issued|redeemed|revoked|closed), expires_at
//   ptoken:<proposal>      "<jti> <signed token>", until it expires or the execution is over
//   pickup:<proposal>      poll mode: the same, taken (GETDEL) by the agent's first read
//   agent-tokens:<agent>   zset jti -> expiry, what a revocation has to reach
//   executing              zset proposal -> deadline of each claimed execution
//   revoked-agent:<agent>  when the agent was last revoked
//   restored-agent:<agent> when that revocation was lifted (absent while revoked); the proposal
//                          store reads both at intake (create-proposal.lua)
//   signing-key            the development signing key, when TOKEN_SIGNING_KEY is unset

/** Token state outlives the token, so a late outcome report or redemption gets a clear "no". */
const STATE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** A slot's value: "<jti> <token>"; a value without a space is an older version's bare token. */
function unpack(value: string | null): { jti: string | null; token: string } | null {
  if (value === null) return null;
  const space = value.indexOf(' ');
  return space < 0 ? { jti: null, token: value } : { jti: value.slice(0, space), token: value.slice(space + 1) };
}

export interface RedisTokenLedger extends TokenLedger {
  /** The development key every replica shares: the first writer wins (SET NX). */
  sharedDevKey(generate: () => Promise<string>): Promise<string>;
}

export function createRedisTokenLedger(redis: Redis | Cluster, opts: RedisStoreOptions): RedisTokenLedger {
  const keys = redisKeys(opts.prefix);
  defineLuaCommands(redis);
  const call = (name: LuaCommand, ...args: (string | number)[]) => runLua(redis, name, args);

  async function end(jti: string, to: 'revoked' | 'closed', evenWhenFull = false): Promise<{ changed: boolean; proposal_id: string | null }> {
    const [pid, agent] = await redis.hmget(keys.token(jti), 'proposal_id', 'agent');
    if (pid === null || pid === undefined || agent === null || agent === undefined) return { changed: false, proposal_id: null };
    const args = [keys.token(jti), keys.proposalToken(pid), keys.pickup(pid), keys.agentTokens(agent), jti, to];
    const changed = evenWhenFull ? await runLuaWhenFull(redis, 'countersignTokenRevokeWhenFull', args) : await call('countersignTokenRevoke', ...args);
    return { changed: Number(changed) === 1, proposal_id: pid };
  }

  return {
    async save(r: TokenRecord) {
      const stored = await call(
        'countersignTokenSave',
        keys.token(r.jti), keys.proposalToken(r.proposal_id), keys.pickup(r.proposal_id), keys.agentTokens(r.agent),
        r.jti, r.proposal_id, r.agent, String(r.expires_at), r.token, r.pickup ? '1' : '0', String(STATE_RETENTION_MS), String(Date.now()), r.replace === true ? '1' : '0',
      );
      return Number(stored) === 1;
    },
    async tokenFor(pid, jti) {
      const stored = unpack(await redis.get(keys.proposalToken(pid)));
      if (stored === null || (jti !== undefined && stored.jti !== null && stored.jti !== jti)) return null;
      return stored.token;
    },
    async takePickup(pid, jti) {
      const stored = unpack(await redis.getdel(keys.pickup(pid)));
      if (stored === null || (jti !== undefined && stored.jti !== null && stored.jti !== jti)) return null;
      return stored.token;
    },
    async restorePickup(pid, jti, token) {
      return Number(await call('countersignTokenRestore', keys.token(jti), keys.pickup(pid), jti, token)) === 1;
    },
    async redeem(jti) {
      return Number(await call('countersignTokenRedeem', keys.token(jti))) === 1;
    },
    async state(jti) {
      return (await redis.hget(keys.token(jti), 'state')) as TokenState | null;
    },
    async close(jti) {
      return (await end(jti, 'closed')).changed;
    },
    async revoke(jti, options: WriteOptions = {}) {
      return (await end(jti, 'revoked', options.evenWhenFull === true)).changed;
    },
    async outstandingTokens(agent) {
      const jtis = await redis.zrange(keys.agentTokens(agent), '0', '-1');
      const out: { jti: string; proposal_id: string }[] = [];
      for (const jti of jtis) {
        const [pid, state] = await redis.hmget(keys.token(jti), 'proposal_id', 'state');
        if (pid && (state === 'issued' || state === 'redeemed')) out.push({ jti, proposal_id: pid });
      }
      return out;
    },
    async markAgentRevoked(agent, at) {
      await runLuaWhenFull(redis, 'countersignAgentRevokeWhenFull', [keys.revokedAgent(agent), keys.restoredAgent(agent), String(at)]);
    },
    async markAgentRestored(agent, at) {
      const reply = await call('countersignAgentRestore', keys.revokedAgent(agent), keys.restoredAgent(agent), String(at));
      if (!Array.isArray(reply) || reply.length !== 2) return null;
      return { revoked_at: Number(reply[0]), restored_at: Number(reply[1]) };
    },
    async agentRevokedAt(agent) {
      const v = await redis.get(keys.revokedAgent(agent));
      return v === null ? null : Number(v);
    },
    async trackExecuting(pid, deadline) {
      await redis.zadd(keys.executing, String(deadline), pid);
    },
    async untrackExecuting(pid) {
      await redis.zrem(keys.executing, pid);
    },
    async executingDeadline(pid) {
      const score = await redis.zscore(keys.executing, pid);
      return score === null ? null : Number(score);
    },
    overdueExecutions: (now, limit) => redis.zrangebyscore(keys.executing, '-inf', String(now), 'LIMIT', 0, limit),
    async sharedDevKey(generate) {
      const existing = await redis.get(keys.devSigningKey);
      if (existing !== null) return existing;
      await redis.set(keys.devSigningKey, await generate(), 'NX');
      const winner = await redis.get(keys.devSigningKey);
      if (winner === null) throw new Error('the development signing key vanished from Redis');
      return winner;
    },
  };
}
