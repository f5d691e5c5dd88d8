import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisAwayStore } from '../../adapters/redis/away-store.ts';
import { createRedisLimitNoticeStore } from '../../adapters/redis/limit-notices.ts';
import { runLua } from '../../adapters/redis/lua-commands.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { bump, event, proposal } from '../contracts/fixtures.ts';
import { testRedis } from '../helpers/redis.ts';

// Redis does not roll back a script that fails halfway: each script that writes must refuse a
// key of the wrong type before its first write. For the scripts changed since 228b216 (away,
// over-the-limit notices, pending prune, nudge reschedule), each key is given the wrong type
// in turn, and every key the script declares must read exactly as before (value and expiry),
// the audit stream included.

const { redis, newPrefix } = testRedis();
const node = redis as Redis;

/** Each key's type, content and whether it expires: what a script may have changed. */
async function snapshot(keys: readonly string[]): Promise<string[]> {
  return Promise.all(
    keys.map(async (k) => {
      const dump = await node.dumpBuffer(k);
      const ttl = await node.pttl(k);
      return `${k} ${await node.type(k)} ${dump === null ? '-' : dump.toString('hex')} ${ttl < 0 ? ttl : 'expires'}`;
    }),
  );
}

/** Runs `attempt` with `wrong` made a string; every key in `keys` must be left as it was. */
async function refusedUntouched(keys: readonly string[], wrong: string, attempt: () => Promise<unknown>): Promise<void> {
  await node.del(wrong);
  await node.set(wrong, 'wrong type');
  const before = await snapshot(keys);
  await expect(attempt(), `${wrong} of the wrong type`).rejects.toThrow(/WRONGTYPE|holds a string|not a (zset|hash)|STORE_REFUSED|cannot record/);
  expect(await snapshot(keys), `${wrong} of the wrong type`).toEqual(before);
  await node.del(wrong);
}

const NOW = Date.now();

describe('away-set / away-clear: a key of the wrong type writes nothing, no absence and no audit event', () => {
  it('away-set with the absences hash, the audit stream or the audit head of the wrong type', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const away = createRedisAwayStore(redis, { prefix: p });
    const keys = [k.away, k.audit, k.auditHead];
    const absence = { delegate: 'erin', until: NOW + 60_000, set_at: NOW };
    const ev = { type: 'away_set', proposal_id: null, agent: null, actor: 'alice', at: NOW, data: { delegate: 'erin' } };
    for (const wrong of keys) {
      // Something in place already, so "nothing written" is checked against real content.
      await away.set('bob', { delegate: 'carol', until: NOW + 60_000, set_at: NOW }, NOW, []);
      await refusedUntouched(keys, wrong, () => away.set('alice', absence, NOW, [ev as never]));
    }
  });

  it('away-clear with the absences hash, the audit stream or the audit head of the wrong type', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const away = createRedisAwayStore(redis, { prefix: p });
    const keys = [k.away, k.audit, k.auditHead];
    const absence = { delegate: 'erin', until: NOW + 60_000, set_at: NOW };
    const ev = { type: 'away_cleared', proposal_id: null, agent: null, actor: 'alice', at: NOW, data: {} };
    for (const wrong of keys) {
      await away.set('alice', absence, NOW, []);
      await refusedUntouched(keys, wrong, () => away.clear('alice', absence, [ev as never]));
    }
  });
});

describe('limit-notice-*: a key of the wrong type writes nothing', () => {
  const EVERY = 5_000;
  const WINDOW = 60_000;
  const T0 = Math.floor(NOW / 60_000) * 60_000 + 60_000;
  const member = 'billing-agent:finance';

  async function posted(p: string) {
    const store = createRedisLimitNoticeStore(redis, p);
    const refuse = (at: number) => store.refused({ agent: 'billing-agent', route: 'finance', limit: 'proposals_per_minute', max: 30, rule: 'default', at, windowMs: WINDOW, updateEveryMs: EVERY });
    const first = await refuse(T0);
    if (first.kind !== 'post') throw new Error('expected a post');
    await store.posted(first.notice, [{ platform: 'slack', conversation: 'C0FIN', message: '1.2' }], EVERY);
    return { store, refuse, notice: first.notice };
  }

  it('refused: a new window (notice hash, window-end set, due set) and a running one (due set)', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const keys = [k.limitNotice('billing-agent', 'finance'), k.limitNotices, k.limitNoticesDue];
    const { refuse } = await posted(p);
    // A refusal in a new window: it rewrites the notice, then adds to both sets.
    for (const wrong of keys.slice(1)) await refusedUntouched(keys, wrong, () => refuse(T0 + WINDOW + 1));
    // A refusal in the running window, before the throttle passed: it counts, then leaves the notice due.
    const q = newPrefix();
    const kq = redisKeys(q);
    const keysQ = [kq.limitNotice('billing-agent', 'finance'), kq.limitNotices, kq.limitNoticesDue];
    const { refuse: refuseQ } = await posted(q);
    await refusedUntouched(keysQ, kq.limitNoticesDue, () => refuseQ(T0 + 10));
  });

  it('posted and the failed-update retry, with the due set of the wrong type', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const keys = [k.limitNotice('billing-agent', 'finance'), k.limitNotices, k.limitNoticesDue];
    const store = createRedisLimitNoticeStore(redis, p);
    const first = await store.refused({ agent: 'billing-agent', route: 'finance', limit: 'proposals_per_minute', max: 30, rule: 'default', at: T0, windowMs: WINDOW, updateEveryMs: EVERY });
    if (first.kind !== 'post') throw new Error('expected a post');
    // A count that moved while it was being posted: posted() saves the refs, then makes it due.
    await store.refused({ agent: 'billing-agent', route: 'finance', limit: 'proposals_per_minute', max: 30, rule: 'default', at: T0 + 1, windowMs: WINDOW, updateEveryMs: EVERY });
    await refusedUntouched(keys, k.limitNoticesDue, () => store.posted(first.notice, [{ platform: 'slack', conversation: 'C0FIN', message: '1.2' }], EVERY));
    await store.posted(first.notice, [{ platform: 'slack', conversation: 'C0FIN', message: '1.2' }], EVERY);
    // A failed update of what the notice shows now.
    const shown = Number(await node.hget(k.limitNotice('billing-agent', 'finance'), 'shown'));
    await refusedUntouched(keys, k.limitNoticesDue, () => store.failed({ ...first.notice, count: shown }, T0 + EVERY, EVERY));
  });

  it('the sweep claim, with the due set of the wrong type (the script, called directly: the sweep reads the set first)', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const keys = [k.limitNotice('billing-agent', 'finance'), k.limitNotices, k.limitNoticesDue];
    const { refuse } = await posted(p);
    await refuse(T0 + 10);
    await refusedUntouched(keys, k.limitNoticesDue, () => runLua(redis, 'countersignLimitNoticeClaim', [keys[0]!, k.limitNoticesDue, String(T0 + EVERY), String(EVERY), member]));
  });
});

describe('limit-pending-prune and nudge-reschedule: a key of the wrong type writes nothing', () => {
  it("the prune, with the agent's pending set or a proposal of the wrong type", async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const set = k.limitPending('billing-agent', null);
    const a = k.proposal('p_a');
    const b = k.proposal('p_b');
    const prune = () => runLua(redis, 'countersignLimitPendingPrune', [3, set, a, b, 'p_a', 'p_b']);
    for (const wrong of [set, b]) {
      await node.zadd(set, 1, 'p_a', 2, 'p_b');
      await node.hset(a, 'status', 'approved');
      if (wrong !== b) await node.hset(b, 'status', 'pending');
      await refusedUntouched([set, a, b], wrong, prune);
    }
    // With right types, the settled one leaves.
    await node.zadd(set, 1, 'p_a', 2, 'p_b');
    await node.hset(b, 'status', 'pending');
    expect(await prune()).toBe(1);
    expect(await node.zrange(set, '0', '-1')).toEqual(['p_b']);
  });

  it('the reschedule, with the escalations set or the proposal of the wrong type', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const store = createRedisProposalStore(redis, { prefix: p });
    const x = proposal({ decision: { ...proposal().decision, escalate: [{ after_ms: 1_000, route: 'oncall', approvers: 'oncall' }], remind_ms: 500 } });
    await store.create(x, []);
    const keys = [k.proposal(x.id), k.escalations];
    await refusedUntouched(keys, k.escalations, () => store.rescheduleNudge(x.id, 1, NOW + 9_000));
    // A proposal key of the wrong type: the read fails before the set is touched.
    await node.zadd(k.escalations, 5, x.id);
    await refusedUntouched(keys, k.proposal(x.id), () => store.rescheduleNudge(x.id, 1, null));
  });
});

/** Every key under the prefix, as `snapshot` reads it. */
async function everything(prefix: string): Promise<string[]> {
  const keys = (await node.keys(`{${prefix}}:*`)).sort();
  return snapshot(keys);
}

describe('create-proposal / commit-proposal: the escalations set and the absences key of the wrong type write nothing', () => {
  const escalating = () => proposal({ decision: { ...proposal().decision, escalate: [{ after_ms: 1_000, route: 'oncall', approvers: 'oncall' }], remind_ms: 500 } });

  it('a create of an escalating proposal with the escalations set of the wrong type: no proposal, no audit event, no outbox entry', async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const store = createRedisProposalStore(redis, { prefix: p });
    await store.create(proposal(), [event(proposal(), 'proposal_received')]);
    await node.set(k.escalations, 'wrong type');
    const before = await everything(p);
    const x = escalating();
    await expect(store.create(x, [event(x, 'proposal_received')])).rejects.toThrow(/escalations set holds a string/);
    expect(await everything(p)).toEqual(before);
  });

  it("a delegate's vote committed with the absences key, or a commit with the escalations set, of the wrong type: the proposal, its sets and the log unchanged", async () => {
    const p = newPrefix();
    const k = redisKeys(p);
    const store = createRedisProposalStore(redis, { prefix: p });
    const x = escalating();
    await store.create(x, [event(x, 'proposal_received')]);
    const delegation = { delegation: { person: 'alice', delegate: 'erin', at: NOW } };
    for (const [wrong, options] of [[k.away, delegation], [k.escalations, {}]] as const) {
      const saved = await node.dumpBuffer(wrong);
      const ttl = await node.pttl(wrong);
      await node.del(wrong);
      await node.set(wrong, 'wrong type');
      const before = await everything(p);
      await expect(store.commit(bump(x, { status: 'denied', expires_at: null }), 1, [event(x, 'approval_recorded'), event(x, 'decided')], options), wrong).rejects.toThrow(/holds a string/);
      expect(await everything(p), wrong).toEqual(before);
      await node.del(wrong);
      if (saved !== null) await node.restore(wrong, ttl > 0 ? ttl : 0, saved);
    }
    // With right types the same commit goes through.
    expect(await store.commit(bump(x, { status: 'denied', expires_at: null }), 1, [])).toBe('ok');
  });
});
