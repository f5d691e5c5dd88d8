import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, legacyChainHash, seal } from '../../src/core/audit.ts';
import type { StoredAuditEvent } from '../../src/core/ports.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { ev, proposalAt as proposal, verify } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// What is about Redis itself: writers on several connections, the stream's fields, logs begun
// with the older chain step. What any AuditLog must do (chain, verifyAudit, search) is
// test/contracts/audit-log.contract.ts (run by audit-log.contract.redis.test.ts).
const { redis, newPrefix, connect } = testRedis();

describe('RedisAuditLog chain', () => {
  it('stays one valid chain under concurrent writers', async () => {
    const prefix = newPrefix();
    const writers = Array.from({ length: 6 }, () => connect());
    let expected = 0;
    await Promise.all(
      writers.map(async (conn, w) => {
        const log = createRedisAuditLog(conn, { prefix });
        const store = createRedisProposalStore(conn, { prefix });
        for (let i = 0; i < 20; i++) {
          const p = proposal(`p_w${w}i${i}`, `agent-${w}`, 'pending');
          const received = ev({ type: 'proposal_received', proposal_id: p.id, agent: p.agent, actor: `agent:${p.agent}`, data: { i, w, path: 'a/b' } });
          await store.create(p, [received, { ...received, type: 'policy_decided' }]);
          await log.append([ev({ type: 'auth_failed', actor: `ip:10.0.0.${w}`, data: { why: 'bad signature' } })]);
          await store.commit({ ...p, status: 'cancelled', version: 2 }, 1, [{ ...received, type: 'cancelled' }]);
          expected += 4;
        }
      }),
    );
    expect(expected).toBe(480);
    const verdict = await verify(createRedisAuditLog(redis, { prefix }), 37);
    expect(verdict).toEqual({ ok: true, count: 480, head: await redis.hget(redisKeys(prefix).auditHead, 'hash') });
  });

  it('starts at the genesis hash and stores data exactly as canonical JSON', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const data = { z: 1, a: 'x/y "q" ü 😀', nested: { b: [1.5, null, true], a: {} } };
    await log.append([ev({ type: 'channel_bound', actor: 'person:alice', data })]);
    const [first] = (await redis.xrange(redisKeys(prefix).audit, '-', '+')) as [string, string[]][];
    const fields = first![1];
    expect(fields[fields.indexOf('data') + 1]).toBe(canonicalJson(data));
    expect(fields[fields.indexOf('prev_hash') + 1]).toBe(GENESIS_HASH);
    expect(fields[fields.indexOf('seq') + 1]).toBe('1');
    const scanned: StoredAuditEvent[] = [];
    for await (const e of log.scan()) scanned.push(e);
    expect(scanned).toMatchObject([{ seq: 1, proposal_id: null, agent: null, actor: 'person:alice', data }]);
  });
});

describe('verifyAudit', () => {
  // A log begun before the two-block chain step: its entries were hashed as the text
  // "prev:seq:digest" and carry no `chain` field. Rewrite a fresh log that way, then let the
  // current code append to it.
  async function legacyLog(count: number) {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const keys = redisKeys(prefix);
    const r = redis as import('ioredis').Redis;
    await log.append(Array.from({ length: count }, (_, n) => ev({ type: 'auth_failed', data: { n } })));
    const entries = (await r.xrange(keys.audit, '-', '+')) as [string, string[]][];
    await r.del(keys.audit);
    let prev = GENESIS_HASH;
    for (const [id, fields] of entries) {
      const f = withoutChain(fields);
      const get = (k: string) => f[f.indexOf(k) + 1]!;
      const hash = legacyChainHash(prev, Number(get('seq')), get('digest'));
      f[f.indexOf('prev_hash') + 1] = prev;
      f[f.indexOf('hash') + 1] = hash;
      await r.xadd(keys.audit, id, ...f);
      prev = hash;
    }
    await r.hset(keys.auditHead, 'hash', prev);
    return { log, keys, r };
  }
  const withoutChain = (fields: string[]) => {
    const at = fields.indexOf('chain');
    return at < 0 ? [...fields] : [...fields.slice(0, at), ...fields.slice(at + 2)];
  };
  const rewrite = async (r: import('ioredis').Redis, stream: string, change: (id: string, fields: string[]) => string[]) => {
    const entries = (await r.xrange(stream, '-', '+')) as [string, string[]][];
    await r.del(stream);
    for (const [id, fields] of entries) await r.xadd(stream, id, ...change(id, fields));
    return entries.map(([id]) => id);
  };

  it('verifies a log begun with the older chain step, and the entries appended to it since', async () => {
    const { verifyAudit } = await import('../../src/app/search-audit.ts');
    const { log, keys, r } = await legacyLog(4);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 4 });
    await log.append([ev({ type: 'auth_failed', data: { n: 'new' } }), ev({ type: 'auth_failed', data: { n: 'newer' } })]);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 6 });

    // A writer still on the older code (a rolling upgrade) appends after the new entries.
    const head = await r.hmget(keys.auditHead, 'seq', 'hash');
    const e = seal(ev({ type: 'auth_failed', data: { n: 'old writer' } }));
    const hash = legacyChainHash(head[1]!, 7, e.digest);
    await r.xadd(keys.audit, '*', 'seq', '7', 'at', e.at, 'type', e.type, 'proposal_id', '', 'agent', '', 'actor', e.actor, 'data', canonicalJson(e.data), 'digest', e.digest, 'prev_hash', head[1]!, 'hash', hash);
    await r.hset(keys.auditHead, 'seq', 7, 'hash', hash);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 7 });

    // Old entries are still checked, by their own step: an edit among them is named.
    const second = ((await r.xrange(keys.audit, '-', '+')) as [string, string[]][])[1]![0];
    await rewrite(r, keys.audit, (id, f) => (id === second ? f.map((v, i) => (f[i - 1] === 'data' ? canonicalJson({ n: 99 }) : v)) : f));
    expect(await verifyAudit(log)).toMatchObject({ ok: false, count: 1, seq: 2, id: second });
  });

  it('refuses an entry whose chain field was taken away: it does not pass as an older one', async () => {
    const { verifyAudit } = await import('../../src/app/search-audit.ts');
    const { log, keys, r } = await legacyLog(2);
    await log.append([ev({ type: 'auth_failed', data: { n: 'new' } })]);
    const third = ((await r.xrange(keys.audit, '-', '+')) as [string, string[]][])[2]![0];
    await rewrite(r, keys.audit, (id, f) => (id === third ? withoutChain(f) : f));
    const verdict = await verifyAudit(log);
    expect(verdict).toMatchObject({ ok: false, count: 2, seq: 3, id: third });
    expect(verdict.ok === false && verdict.reason).toBe('hash does not match');
  });
});
