import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, chainHash, legacyChainHash, seal } from '../../src/core/audit.ts';
import { verifyAudit } from '../../src/app/search-audit.ts';
import type { StoredAuditEvent } from '../../src/core/ports.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { ev, proposalAt as proposal, scanAll, verify } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// What is about Redis itself: writers on several connections, the stream's fields, logs begun
// with the older chain steps (1 and 2: hashes computed by the script) and continued with step 3. What any AuditLog must do (chain, verifyAudit, search) is
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
    const log = createRedisAuditLog(redis, { prefix });
    const verdict = await verify(log, 37);
    expect(verdict).toMatchObject({ ok: true, count: 480 });
    expect(await verifyAudit(log)).toEqual(verdict);
    expect(await log.head()).toEqual({ seq: 480, hash: null });
  });

  it('stores data exactly as canonical JSON, with no hashes (chain step 3)', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const data = { z: 1, a: 'x/y "q" ü 😀', nested: { b: [1.5, null, true], a: {} } };
    await log.append([ev({ type: 'channel_bound', actor: 'person:alice', data })]);
    const [first] = (await redis.xrange(redisKeys(prefix).audit, '-', '+')) as [string, string[]][];
    const fields = first![1];
    expect(fields[fields.indexOf('data') + 1]).toBe(canonicalJson(data));
    expect(fields).not.toContain('prev_hash');
    expect(fields).not.toContain('hash');
    expect(fields[fields.indexOf('chain') + 1]).toBe('3');
    expect(fields[fields.indexOf('seq') + 1]).toBe('1');
    const scanned: StoredAuditEvent[] = [];
    for await (const e of log.scan()) scanned.push(e);
    expect(scanned).toMatchObject([{ seq: 1, proposal_id: null, agent: null, actor: 'person:alice', data, chain: 3, prev_hash: null, hash: null }]);
    expect(await verifyAudit(log)).toEqual({ ok: true, count: 1, head: chainHash(GENESIS_HASH, 1, scanned[0]!.digest) });
  });
});

describe('verifyAudit', () => {
  // A log begun with an older chain step: entries written as the scripts of that release did
  // (step 1, the text "prev:seq:digest", no `chain` field; step 2, chainHash, `chain` 2), each
  // storing prev_hash and hash and moving the head's hash. Then this release appends to it.
  async function olderLog(count: number, chain: 1 | 2 = 1) {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const keys = redisKeys(prefix);
    const r = redis as import('ioredis').Redis;
    for (let n = 0; n < count; n++) await writeOlder(r, keys, ev({ type: 'auth_failed', data: { n } }), chain);
    return { log, keys, r };
  }
  // As an older release's script appends: seq from the head, prev_hash = the head's hash.
  async function writeOlder(r: import('ioredis').Redis, keys: ReturnType<typeof redisKeys>, event: ReturnType<typeof ev>, chain: 1 | 2) {
    const e = seal(event);
    const seq = await r.hincrby(keys.auditHead, 'seq', 1);
    const prev = (await r.hget(keys.auditHead, 'hash')) ?? GENESIS_HASH;
    const hash = (chain === 2 ? chainHash : legacyChainHash)(prev, seq, e.digest);
    const fields = ['seq', String(seq), 'at', e.at, 'type', e.type, 'proposal_id', '', 'agent', '', 'actor', e.actor, 'data', canonicalJson(e.data), 'digest', e.digest, 'prev_hash', prev, 'hash', hash];
    await r.xadd(keys.audit, '*', ...(chain === 2 ? [...fields, 'chain', '2'] : fields));
    await r.hset(keys.auditHead, 'hash', hash);
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
    const { log, keys, r } = await olderLog(4);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 4 });
    await log.append([ev({ type: 'auth_failed', data: { n: 'new' } }), ev({ type: 'auth_failed', data: { n: 'newer' } })]);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 6 });

    // A writer still on the older code (a rolling upgrade) appends after the new entries: it
    // chains from the head's hash, which new writers leave alone.
    await writeOlder(r, keys, ev({ type: 'auth_failed', data: { n: 'old writer' } }), 1);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 7 });
    await log.append([ev({ type: 'auth_failed', data: { n: 'new again' } })]);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 8 });

    // Old entries are still checked, by their own step: an edit among them is named.
    const second = ((await r.xrange(keys.audit, '-', '+')) as [string, string[]][])[1]![0];
    await rewrite(r, keys.audit, (id, f) => (id === second ? f.map((v, i) => (f[i - 1] === 'data' ? canonicalJson({ n: 99 }) : v)) : f));
    expect(await verifyAudit(log)).toMatchObject({ ok: false, count: 1, seq: 2, id: second });
  });

  it('verifies a log that mixes all three steps, and computes the same chain as the steps say', async () => {
    const { log, keys, r } = await olderLog(2, 1);
    for (let n = 0; n < 2; n++) await writeOlder(r, keys, ev({ type: 'auth_failed', data: { step: 2, n } }), 2);
    await log.append([ev({ type: 'auth_failed', data: { step: 3 } }), ev({ type: 'card_posted', data: { step: 3 } })]);
    const entries = await scanAll(log);
    expect(entries.map((e) => e.chain)).toEqual([1, 1, 2, 2, 3, 3]);
    let prev = GENESIS_HASH;
    for (const e of entries) prev = e.chain === 3 ? chainHash(prev, e.seq, e.digest) : e.hash!;
    expect(await verifyAudit(log)).toEqual({ ok: true, count: 6, head: prev });
    // The head's hash is the last one a step-2 writer stored; step 3 did not move it.
    expect(await log.head()).toEqual({ seq: 6, hash: entries[3]!.hash });
  });

  it('refuses an entry whose chain field was taken away: it does not pass as an older one', async () => {
    const { log, keys, r } = await olderLog(2, 2);
    await log.append([ev({ type: 'auth_failed', data: { n: 'new' } })]);
    const [, second, third] = ((await r.xrange(keys.audit, '-', '+')) as [string, string[]][]).map(([id]) => id);
    // A step 2 entry taken for step 1: its hash does not match.
    await rewrite(r, keys.audit, (id, f) => (id === second ? withoutChain(f) : f));
    expect(await verifyAudit(log)).toMatchObject({ ok: false, count: 1, seq: 2, id: second, reason: 'hash does not match' });
    // A step 3 entry taken for step 1: it has no stored hashes to match.
    await rewrite(r, keys.audit, (id, f) => (id === second ? [...f, 'chain', '2'] : id === third ? withoutChain(f) : f));
    expect(await verifyAudit(log)).toMatchObject({ ok: false, count: 2, seq: 3, id: third, reason: 'prev_hash does not match the previous entry' });
  });

  it("names a head whose hash an older writer set but the last entry does not carry", async () => {
    const { log, keys, r } = await olderLog(3, 2);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 3 });
    await r.hset(keys.auditHead, 'hash', 'f'.repeat(64));
    const last = ((await r.xrevrange(keys.audit, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]![0];
    expect(await verifyAudit(log)).toMatchObject({ ok: false, seq: 3, id: last });
    // Once a step 3 entry is last, the head's hash is no longer what its writers keep.
    await log.append([ev({ type: 'auth_failed', data: { n: 'new' } })]);
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 4 });
  });

  it('names a head record moved back, and one that is missing', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    const keys = redisKeys(prefix);
    await log.append([1, 2, 3].map((n) => ev({ type: 'auth_failed', data: { n } })));
    await redis.hset(keys.auditHead, 'seq', '2');
    expect(await verifyAudit(log)).toMatchObject({ ok: false, reason: expect.stringContaining('head records seq 2') });
    await redis.del(keys.auditHead);
    expect(await verifyAudit(log)).toMatchObject({ ok: false, reason: expect.stringContaining('head record is missing') });
  });
});
