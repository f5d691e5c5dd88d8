import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisAuditIndex } from '../../adapters/redis/audit-index-store.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { createRedisAwayStore } from '../../adapters/redis/away-store.ts';
import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { MAX_TOKENS_PER_EVENT } from '../../adapters/redis/audit-index.ts';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import { createRedisLimitNoticeStore } from '../../adapters/redis/limit-notices.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { claimed } from '../contracts/card-ref-store.contract.ts';
import { bump, event, proposal } from '../contracts/fixtures.ts';

// Issue 13, item 3: on Redis Cluster a script may only touch the keys it declares in KEYS.
// Every key here shares one hash tag, so a cluster would not even notice an undeclared key
// of the same slot: the check has to look at what the scripts do. MONITOR shows each command a
// script runs ("[0 lua] ...") next to the EVALSHA that ran it with its KEYS; every command our
// scripts run takes one key, first. A private redis-server, so no other test's traffic mixes in.

let server: PrivateRedis;
let redis: Redis;
let monitor: Redis;
const lines: { source: string; args: string[] }[] = [];
let marks = 0;

beforeAll(async () => {
  server = await startPrivateRedis({ dir: mkdtempSync(join(tmpdir(), 'countersign-lua-keys-')), persist: false, searchPath: process.env['PATH'] ?? '' });
  redis = createRedisConnection({ url: server.url, role: 'command' }) as Redis;
  monitor = await (createRedisConnection({ url: server.url, role: 'command' }) as Redis).monitor();
  monitor.on('monitor', (_time: string, args: string[], source: string) => lines.push({ source, args }));
});

afterAll(async () => {
  monitor.disconnect();
  redis.disconnect();
  await server.stop();
});

/** Resolves once MONITOR has shown `ECHO text` (it shows commands in the order Redis ran them). */
function seen(text: string): Promise<number> {
  return new Promise((resolve) => {
    const look = () => {
      const at = lines.findIndex((l) => l.args[0]?.toLowerCase() === 'echo' && l.args[1] === text);
      if (at >= 0) {
        monitor.off('monitor', look);
        resolve(at);
      }
    };
    monitor.on('monitor', look);
    look();
  });
}

interface ScriptRun {
  keys: string[];
  /** Each command the script ran: its name and first argument (its key). */
  commands: { name: string; key: string }[];
}

/** The scripts `work` ran, each with its KEYS and the commands it ran. */
async function scriptsRunBy(work: () => Promise<unknown>): Promise<ScriptRun[]> {
  const mark = `mark-${++marks}`;
  await redis.echo(`${mark}-begin`);
  await work();
  await redis.echo(`${mark}-end`);
  const from = await seen(`${mark}-begin`);
  const to = await seen(`${mark}-end`);
  // Only scripts and what they ran; whether MONITOR shows a script's EVALSHA before or after
  // the commands it ran, the first line tells (this file runs one script at a time).
  const items = lines.slice(from + 1, to).filter((l) => l.source === 'lua' || /^eval(sha)?$/i.test(l.args[0] ?? ''));
  const evalFirst = items[0] !== undefined && items[0].source !== 'lua';
  const runs: ScriptRun[] = [];
  let ran: ScriptRun['commands'] = [];
  for (const line of items) {
    if (line.source === 'lua') {
      const command = { name: line.args[0]!.toLowerCase(), key: line.args[1]! };
      if (evalFirst) runs.at(-1)!.commands.push(command);
      else ran.push(command);
      continue;
    }
    const count = Number(line.args[2]);
    runs.push({ keys: line.args.slice(3, 3 + count), commands: evalFirst ? [] : ran });
    ran = [];
  }
  return runs;
}

function undeclared(runs: ScriptRun[]): string[] {
  return runs.flatMap((r) => r.commands.filter((c) => !r.keys.includes(c.key)).map((c) => `${c.name} ${c.key}`));
}

describe('every key a script touches is one of its KEYS', () => {
  const prefix = 'lua-keys';
  const store = () => createRedisProposalStore(redis, { prefix });
  const audit = () => createRedisAuditLog(redis, { prefix });
  const ledger = () => createRedisTokenLedger(redis, { prefix });

  it('create and commit, with their audit events', async () => {
    const p = proposal({ idempotency_key: 'k-1' });
    const runs = await scriptsRunBy(async () => {
      await store().create(p, [event(p, 'proposal_received', { intent: 'Refund invoice 4711 twice' }), event(p, 'policy_decided', { rule: 'payments' })]);
      await store().commit(bump(p, { status: 'approved', expires_at: null }), 1, [event(p, 'approval_recorded', { person: 'alice' }), event(p, 'decided', { status: 'approved' })]);
    });
    expect(runs).toHaveLength(2);
    // Four audit events, and the new pending proposal's entry in the card outbox.
    expect(runs.flatMap((r) => r.commands).filter((c) => c.name === 'xadd')).toHaveLength(5);
    // The search index is the indexer's (below), not the commit's.
    expect(runs.flatMap((r) => r.commands).filter((c) => c.name === 'lpush')).toEqual([]);
    expect(undeclared(runs)).toEqual([]);
  });

  it('an escalating proposal: its create, a reminder commit, a reschedule and its end, each touching the escalations set it declares', async () => {
    const p = proposal({ decision: { ...proposal().decision, escalate: [{ after_ms: 1_000, route: 'oncall', approvers: 'oncall' }], remind_ms: 500 } });
    const runs = await scriptsRunBy(async () => {
      await store().create(p, [event(p, 'proposal_received')]);
      const reminded = bump(p, { reminders: { count: 1, at: p.created_at + 500 } });
      await store().commit(reminded, 1, [event(p, 'reminded')]);
      await store().rescheduleNudge(p.id, 2, p.created_at + 1_000);
      await store().rescheduleNudge('p_gone', 1, null);
      await store().commit(bump(reminded, { status: 'denied', expires_at: null }), 2, []);
    });
    expect(runs).toHaveLength(5);
    expect(runs.flatMap((r) => r.commands).filter((c) => c.name === 'zadd' || c.name === 'zrem').map((c) => c.key)).toContain('{lua-keys}:escalations');
    expect(undeclared(runs)).toEqual([]);
  });

  it("a delegate's vote, its commit reading the absence it was cast under, and the absence set and cleared", async () => {
    const p = proposal();
    const absence = { delegate: 'erin', until: Date.now() + 60_000, set_at: Date.now() };
    const away = createRedisAwayStore(redis, { prefix });
    const runs = await scriptsRunBy(async () => {
      await store().create(p, []);
      await away.set('alice', absence, Date.now(), []);
      await store().commit(bump(p, {}), 1, [event(p, 'approval_recorded')], { delegation: { person: 'alice', delegate: 'erin', at: Date.now() } });
      await away.clear('alice', absence, []);
    });
    expect(runs).toHaveLength(4);
    expect(runs[2]!.commands.filter((c) => c.name === 'hget').map((c) => c.key)).toContain('{lua-keys}:away');
    expect(undeclared(runs)).toEqual([]);
  });

  it("a revision's commit moving it between aggregate groups: the groups and their versions it declares", async () => {
    const p = proposal();
    const window_ms = 60_000;
    const runs = await scriptsRunBy(async () => {
      await store().create(p, [], undefined, undefined, { aggregate: { group: 'g-from', version: '0', amount: 300, window_ms } });
      const move = { from: { group: 'g-from', member: `${p.id}|300` }, to: { group: 'g-to', member: `${p.id}|900`, score: p.created_at, version: '0' }, window_ms };
      await store().commit(bump(p, {}), 1, [event(p, 'revised')], { aggregate: move });
    });
    expect(runs).toHaveLength(2);
    const writes = runs[1]!.commands.filter((c) => c.key.includes(':agg:') && ['zrem', 'zadd', 'incr'].includes(c.name)).map((c) => c.name);
    expect(writes.sort()).toEqual(['incr', 'incr', 'zadd', 'zrem']);
    expect(undeclared(runs)).toEqual([]);
  });

  it('a commit taking a proposal that stopped counting out of its aggregate group: the group it declares, no version move', async () => {
    const p = proposal();
    const window_ms = 60_000;
    const runs = await scriptsRunBy(async () => {
      await store().create(p, [], undefined, undefined, { aggregate: { group: 'g-left', version: '0', amount: 300, window_ms } });
      await store().commit(bump(p, { status: 'denied', expires_at: null }), 1, [event(p, 'decided')], { counted: { group: 'g-left', member: `${p.id}|300` } });
    });
    expect(runs).toHaveLength(2);
    const writes = runs[1]!.commands.filter((c) => c.key.includes(':agg:') && ['zrem', 'zadd', 'incr'].includes(c.name)).map((c) => `${c.name} ${c.key}`);
    expect(writes).toEqual([`zrem ${redisKeys(prefix).aggregate('g-left')}`]);
    expect(undeclared(runs)).toEqual([]);
  });

  it("the prune of an agent's pending set: the set and the proposals it checks", async () => {
    const [live, decided] = [proposal(), proposal()];
    const limits = { per_minute: 0, pending: 10, rule_per_minute: 0, rule_pending: 0, rule: 'payments' };
    for (const p of [live, decided]) await store().create(p, [], undefined, undefined, { limits });
    await redis.hset(redisKeys(prefix).proposal(decided.id), 'status', 'denied');
    let dropped = 0;
    const runs = await scriptsRunBy(async () => {
      dropped = await store().prunePending!(live.agent, null, Date.now());
    });
    expect(dropped).toBe(1);
    expect(runs).toHaveLength(1);
    expect(undeclared(runs)).toEqual([]);
  });

  it('a create checked against a revoked and restored agent, and one with no idempotency key', async () => {

    const p = proposal();
    await ledger().markAgentRevoked(p.agent, p.created_at - 10_000);
    await ledger().markAgentRestored(p.agent, p.created_at - 5_000);
    const runs = await scriptsRunBy(() => store().create(p, [event(p, 'proposal_received')]));
    expect(runs.flatMap((r) => r.commands).some((c) => c.name === 'get')).toBe(true);
    expect(undeclared(runs)).toEqual([]);
  });

  it('plain appends, one with more words than are indexed', async () => {
    const many = Array.from({ length: MAX_TOKENS_PER_EVENT + 20 }, (_, i) => `word${i}`).join(' ');
    const p = proposal();
    const runs = await scriptsRunBy(() => audit().append([event(p, 'auth_failed', { words: many }), { ...event(p, 'card_posted'), proposal_id: null, agent: null }]));
    expect(undeclared(runs)).toEqual([]);
  });

  it('the search indexer: a batch with every list of its entries, one with more words than are indexed', async () => {
    const many = Array.from({ length: MAX_TOKENS_PER_EVENT + 20 }, (_, i) => `word${i}`).join(' ');
    const p = proposal();
    const prefix = 'lua-keys-index';
    await createRedisAuditLog(redis, { prefix }).append([event(p, 'proposal_received', { intent: 'Refund invoice 4711', words: many }), event(p, 'decided', { status: 'denied' })]);
    expect(await createRedisAuditSeals(redis, { prefix }).acquireLease('a', 60_000)).toBe(true);
    const runs = await scriptsRunBy(async () => expect(await createRedisAuditIndex(redis, { prefix }).indexNext('a', 10)).toEqual({ indexed: 2 }));
    expect(runs).toHaveLength(1);
    expect(runs.flatMap((r) => r.commands).filter((c) => c.name === 'lpush').length).toBeGreaterThan(MAX_TOKENS_PER_EVENT);
    expect(undeclared(runs)).toEqual([]);
  });

  it('audit retention: the cut, the trim with the index lists and the index position, the checkpoint trim', async () => {
    const seals = createRedisAuditSeals(redis, { prefix: 'lua-keys-retention' });
    const p = proposal();
    await createRedisAuditLog(redis, { prefix: 'lua-keys-retention' }).append([event(p, 'proposal_received', { intent: 'Refund invoice 4711' }), event(p, 'decided', { status: 'denied' })]);
    const [first] = await seals.entriesAfter('0-0', 1);
    expect(await seals.acquireLease('a', 60_000)).toBe(true);
    expect(await createRedisAuditIndex(redis, { prefix: 'lua-keys-retention' }).indexNext('a', 1)).toEqual({ indexed: 1 });
    const state = { seq: 1, hash: '1'.repeat(64), id: first!.id, at: '2030-01-01T00:00:00.000Z', legacyHash: '0'.repeat(64) };
    const checkpoint = { v: 1 as const, log: 'lua-keys', kind: 'seal' as const, seq: 1, hash: state.hash, at: state.at, kid: 'k', sig: 's' };
    expect(await seals.seal('a', 60_000, 0, state, checkpoint)).toBe('ok');
    const runs = await scriptsRunBy(async () => {
      expect(await seals.writeCut('a', { ...checkpoint, kind: 'cut' })).toBe('ok');
      expect(await seals.trimToCut('a', 10)).toBe(1);
      expect(await seals.trimCheckpointsToCut('a')).toBe(0);
    });
    expect(runs).toHaveLength(3);
    expect(runs.flatMap((r) => r.commands).filter((c) => c.name === 'rpop').length).toBeGreaterThan(3);
    expect(runs.flatMap((r) => r.commands).some((c) => c.name === 'hget' && c.key.endsWith(':audit:head'))).toBe(true);
    expect(undeclared(runs)).toEqual([]);
  });

  it('a card post: the claim, the finish with its card_posted event, a release', async () => {
    const p = proposal();
    await store().create(p, []);
    const cards = createRedisCardRefStore(redis, { prefix });
    const runs = await scriptsRunBy(async () => {
      const slack = claimed(await cards.claimPost(p.id, 'slack', 60));
      const ref = { platform: 'slack', conversation: 'C1', message: '1.1' };
      expect(await cards.finishPost(slack, ref, [event(p, 'card_posted', ref)])).toBe(p.version);
      await cards.releasePost(claimed(await cards.claimPost(p.id, 'teams', 60)));
    });
    expect(runs).toHaveLength(4);
    expect(runs.flatMap((r) => r.commands).filter((c) => c.name === 'xadd')).toHaveLength(1);
    expect(undeclared(runs)).toEqual([]);
  });

  it('the token ledger and kill switch scripts', async () => {
    const p = proposal();
    const runs = await scriptsRunBy(async () => {
      const l = ledger();
      await l.save({ jti: 't_1', proposal_id: p.id, agent: p.agent, expires_at: Date.now() + 60_000, token: 'a.b.c', pickup: true, replace: false });
      await l.takePickup(p.id, 't_1');
      await l.restorePickup(p.id, 't_1', 'a.b.c');
      await l.redeem('t_1');
      await l.revoke('t_1');
      await l.markAgentRevoked(p.agent, Date.now());
      await l.markAgentRestored(p.agent, Date.now() + 1);
    });
    expect(runs.length).toBeGreaterThanOrEqual(5);
    expect(undeclared(runs)).toEqual([]);
  });

  it('the over-the-limit notice scripts: refused, posted, a due claim, a failed update, and a roll-over to a new window', async () => {
    const notices = createRedisLimitNoticeStore(redis, prefix);
    const at = Date.now();
    const refuse = (t: number) => notices.refused({ agent: 'billing-agent', route: 'finance', limit: 'pending', max: 5, rule: 'default', at: t, windowMs: 1_000, updateEveryMs: 100 });
    const runs = await scriptsRunBy(async () => {
      const first = await refuse(at);
      if (first.kind !== 'post') throw new Error('expected a post');
      await notices.posted(first.notice, [{ platform: 'slack', conversation: 'C1', message: '1.1' }], 100);
      await refuse(at + 1);
      const [claimed] = await notices.due(at + 100, 100, 10);
      await notices.failed(claimed!.notice, at + 100, 100);
      await refuse(at + 150);
      await refuse(at + 200);
      await refuse(at + 1_000);
    });
    expect(runs).toHaveLength(8);
    expect(undeclared(runs)).toEqual([]);
  });
});
