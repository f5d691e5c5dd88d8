import { describe, expect, it } from 'vitest';
import { ChainVerifier, GENESIS_HASH, canonicalJson, legacyChainHash, seal } from '../../src/core/audit.ts';
import type { AuditEventInput, ChainVerdict } from '../../src/core/audit.ts';
import type { AuditLog, AuditQuery, StoredAuditEvent } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { testRedis } from '../helpers/redis.ts';

const { redis, newPrefix, connect } = testRedis();

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

function ev(over: Partial<AuditEventInput> & { type: AuditEventInput['type'] }): AuditEventInput {
  return { at: new Date(T0).toISOString(), proposal_id: null, agent: null, actor: 'system', data: {}, ...over };
}

async function verify(log: AuditLog, batch = 50): Promise<ChainVerdict> {
  const verifier = new ChainVerifier();
  for await (const e of log.scan(batch)) {
    const reason = verifier.check(e);
    if (reason !== null) return { ok: false, count: verifier.count, seq: e.seq, id: e.id, reason };
  }
  return { ok: true, count: verifier.count, head: verifier.head };
}

function proposal(id: string, agent: string, status: Proposal['status']): Proposal {
  return {
    id, agent, idempotency_key: null, intent: 'test', status,
    action: { tool: 'payments', operation: 'refund', target: 't', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision: { effect: 'approve', risk: 'low', rule: 'default', reasons: [], route: 'r', approvers: 'g', approvals_required: 1, ttl_ms: 1000 },
    created_at: T0, expires_at: status === 'pending' ? T0 + 1000 : null, approvals: [], resolution: null, version: 1,
  };
}

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

  it('names exactly the entry whose data was edited', async () => {
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    for (let i = 0; i < 30; i++) await log.append([ev({ type: 'token_redeemed', data: { i } })]);
    expect(await verify(log)).toMatchObject({ ok: true, count: 30 });

    // Streams cannot be edited in place: rewrite the stream with the same ids, one entry changed.
    const stream = redisKeys(prefix).audit;
    const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
    const victim = entries[17]!;
    await redis.del(stream);
    for (const [id, fields] of entries) {
      const copy = [...fields];
      if (id === victim[0]) copy[copy.indexOf('data') + 1] = canonicalJson({ i: 1700 });
      await redis.xadd(stream, id, ...copy);
    }
    const verdict = await verify(log, 7);
    expect(verdict).toMatchObject({ ok: false, count: 17, seq: 18, id: victim[0] });
    expect(verdict.ok === false && verdict.reason).toMatch(/digest/);
  });
});

describe('RedisAuditLog search', () => {
  const prefix = newPrefix();
  const log = createRedisAuditLog(redis, { prefix });
  const store = createRedisProposalStore(redis, { prefix });
  const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
  const base = (q: Partial<AuditQuery>): AuditQuery => ({ words: [], limit: 100, ...q });
  const seqs = (r: { events: StoredAuditEvent[] }) => r.events.map((e) => e.seq);
  let ready: Promise<void> | null = null;

  // seq n is at minute n-1; p_a (seq 1, 4, 5, 8) ends approved, p_b (seq 2, 6, 7) stays pending.
  function seed(): Promise<void> {
    ready ??= (async () => {
      const pa = proposal('p_a', 'billing-agent', 'pending');
      const pb = proposal('p_b', 'support-agent', 'pending');
      await store.create(pa, [ev({ type: 'proposal_received', at: at(0), proposal_id: 'p_a', agent: 'billing-agent', actor: 'agent:billing-agent', data: { intent: 'Refund invoice 4711' } })]);
      await store.create(pb, [ev({ type: 'proposal_received', at: at(1), proposal_id: 'p_b', agent: 'support-agent', actor: 'agent:support-agent', data: { intent: 'Close ticket 99' } })]);
      await log.append([ev({ type: 'auth_failed', at: at(2), actor: 'ip:10.1.2.3', data: { reason: 'Bad Signature' } })]);
      await store.commit({ ...pa, status: 'approved', version: 2 }, 1, [
        ev({ type: 'approval_recorded', at: at(3), proposal_id: 'p_a', agent: 'billing-agent', actor: 'person:alice', data: { vote: 'approve' } }),
        ev({ type: 'decided', at: at(4), proposal_id: 'p_a', agent: 'billing-agent', actor: 'person:alice', data: { status: 'approved' } }),
      ]);
      await log.append([
        ev({ type: 'approval_refused', at: at(5), proposal_id: 'p_b', agent: 'support-agent', actor: 'person:mallory', data: { why: 'not_an_approver' } }),
        ev({ type: 'card_posted', at: at(6), proposal_id: 'p_b', agent: 'support-agent', actor: 'system', data: { platform: 'slack', invoice: 4711 } }),
        ev({ type: 'token_issued', at: at(7), proposal_id: 'p_a', agent: 'billing-agent', actor: 'system', data: {} }),
      ]);
    })();
    return ready;
  }

  it('returns everything newest first', async () => {
    await seed();
    expect(seqs(await log.search(base({})))).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('needs every word, case-insensitively, anywhere in type, actor, ids, agent or data', async () => {
    await seed();
    expect(seqs(await log.search(base({ words: ['4711'] })))).toEqual([7, 1]);
    expect(seqs(await log.search(base({ words: ['REFUND', '4711'] })))).toEqual([1]);
    expect(seqs(await log.search(base({ words: ['bad', 'signature'] })))).toEqual([3]);
    expect(seqs(await log.search(base({ words: ['mallory'] })))).toEqual([6]);
    expect(seqs(await log.search(base({ words: ['p_b', 'slack'] })))).toEqual([7]);
    expect(seqs(await log.search(base({ words: ['4711', 'nothing-like-this'] })))).toEqual([]);
  });

  it('filters by agent, actor and proposal', async () => {
    await seed();
    expect(seqs(await log.search(base({ agent: 'billing-agent' })))).toEqual([8, 5, 4, 1]);
    expect(seqs(await log.search(base({ actor: 'person:alice' })))).toEqual([5, 4]);
    expect(seqs(await log.search(base({ proposalId: 'p_b' })))).toEqual([7, 6, 2]);
    expect(seqs(await log.search(base({ agent: 'support-agent', words: ['refused'] })))).toEqual([6]);
  });

  it('filters by time, inclusive at both ends', async () => {
    await seed();
    expect(seqs(await log.search(base({ since: T0 + 5 * 60_000 })))).toEqual([8, 7, 6]);
    expect(seqs(await log.search(base({ until: T0 + 60_000 })))).toEqual([2, 1]);
    expect(seqs(await log.search(base({ since: T0 + 2 * 60_000, until: T0 + 4 * 60_000 })))).toEqual([5, 4, 3]);
  });

  it("filters by the proposal's current status", async () => {
    await seed();
    expect(seqs(await log.search(base({ status: 'approved' })))).toEqual([8, 5, 4, 1]);
    expect(seqs(await log.search(base({ status: 'pending' })))).toEqual([7, 6, 2]);
    expect(seqs(await log.search(base({ status: 'denied' })))).toEqual([]);
  });

  it('pages with a cursor without gaps or repeats', async () => {
    await seed();
    const pages: number[][] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await log.search(base({ limit: 3, ...(cursor === undefined ? {} : { cursor }) }));
      pages.push(seqs(page));
      if (page.next === null) break;
      expect(page.next).toBe(page.events.at(-1)!.id);
      cursor = page.next;
    }
    expect(pages).toEqual([[8, 7, 6], [5, 4, 3], [2, 1]]);

    const filtered = await log.search(base({ agent: 'billing-agent', limit: 2 }));
    expect(seqs(filtered)).toEqual([8, 5]);
    const rest = await log.search(base({ agent: 'billing-agent', limit: 2, cursor: filtered.next! }));
    expect(seqs(rest)).toEqual([4, 1]);
  });
});

describe('verifyAudit', () => {
  it('names a cut tail: the newest entries deleted leave a valid chain but a longer head', async () => {
    const { verifyAudit } = await import('../../src/app/search-audit.ts');
    const prefix = newPrefix();
    const log = createRedisAuditLog(redis, { prefix });
    await log.append([1, 2, 3, 4, 5].map((n) => ev({ type: 'auth_failed', data: { n } })));
    expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 5 });
    const entries = (await (redis as import('ioredis').Redis).xrange(redisKeys(prefix).audit, '-', '+')) as [string, string[]][];
    await (redis as import('ioredis').Redis).xdel(redisKeys(prefix).audit, entries[3]![0], entries[4]![0]);
    const verdict = await verifyAudit(log);
    expect(verdict).toMatchObject({ ok: false, count: 3, seq: 4, id: entries[2]![0] });
    expect(verdict.ok === false && verdict.reason).toContain('head records seq 5');
  });

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
