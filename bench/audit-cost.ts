import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { auditIndexKeys, indexKeys, MAX_TOKENS_PER_EVENT, searchTokens, type AuditIndexKeys } from '../adapters/redis/audit-index.ts';
import { createRedisAuditIndex } from '../adapters/redis/audit-index-store.ts';
import { createRedisAuditLog } from '../adapters/redis/audit-log.ts';
import { createRedisAuditSeals } from '../adapters/redis/audit-seals.ts';
import { redisKeys } from '../adapters/redis/keys.ts';
import { eventArgs } from '../adapters/redis/scripts.ts';
import { canonicalJson, seal, type AuditEventInput, type SealedAuditEventInput } from '../src/core/audit.ts';
import { auditSearchText } from '../src/core/audit-words.ts';
import { syntheticEvent } from './audit-events.ts';
import { fmt, pool } from './lib.ts';
import { addDelta, emptySnapshot, redisSnapshot, scriptStat, snapshotDelta, unlinkPrefix, type RedisSnapshot } from './redis-stats.ts';

// What one audit event costs Redis, all of it, before and after, in the same run on the same
// Redis: the same synthetic events (audit-events.ts, phase 5's) appended on fresh keys
//   - before: the chain step 2 append script (SHA-256 chain step in Lua, index lists in the
//     script), a bench-only copy from git history in bench/fixtures/chain-step2/;
//   - index at commit: the chain step 3 append as it was before the search index left the
//     commit scripts (one LPUSH per event and list, the lists in KEYS), bench/fixtures/index-at-commit/;
//   - after: today's append (createRedisAuditLog(...).append: the events and nothing else), and
//     then the indexer over what it appended (createRedisAuditIndex(...).indexNext, in batches:
//     its read of the entries and its script), each in a window of its own, added up;
// and, to show where today's append spends, two cut-down runs with today's ARGV:
//   - call only: a script that returns at once;
//   - checks only: today's checks (arguments, key types, the head's seq), then nothing written.
// Run while nothing else uses this Redis (before countersign starts): the windows are read
// from INFO cpu and INFO commandstats, which count everything the server does. The variants
// take turns in rounds, so that a change of CPU speed during the run hits them alike.

const fixture = (dir: string, name: string) => readFileSync(new URL(`./fixtures/${dir}/${name}`, import.meta.url), 'utf8');
// Composed as lua-commands.ts composed them then: the library, then the script.
const STEP2_APPEND_EVENTS = [fixture('chain-step2', 'sha256.lua'), fixture('chain-step2', 'audit-append.lua'), fixture('chain-step2', 'append-events.lua')].join('\n');
const INDEXED_APPEND_EVENTS = [fixture('index-at-commit', 'audit-append.lua'), fixture('index-at-commit', 'append-events.lua')].join('\n');
const TODAY_LIB = readFileSync(new URL('../adapters/redis/lua/audit-append.lua', import.meta.url), 'utf8');
const SCRIPTS = {
  benchAppendEventsStep2: STEP2_APPEND_EVENTS,
  benchAppendEventsIndexedAtCommit: INDEXED_APPEND_EVENTS,
  benchAuditCallOnly: 'return 0',
  benchAuditChecksOnly: `${TODAY_LIB}
local bad = audit_events_error(1) or audit_keys_error(KEYS[1], KEYS[2])
if bad then return redis.error_reply(bad) end
return 0`,
};
/** The indexer's owner in the windows (it needs the sealer lease of each prefix). */
const OWNER = 'bench-indexer';

/** The chain step 2 script's last ARGV of an event: its index words, space-separated, `*` first when some were left out. */
function step2IndexArg(lowerText: string): string {
  const tokens = searchTokens(lowerText);
  if (tokens.length <= MAX_TOKENS_PER_EVENT) return tokens.join(' ');
  return ['*', ...tokens.slice(0, MAX_TOKENS_PER_EVENT)].join(' ');
}

/** ARGV for the chain step 2 script, as scripts.ts built it then. */
export function step2Args(events: readonly SealedAuditEventInput[]): string[] {
  const args: string[] = [];
  for (const e of events) {
    const data = canonicalJson(e.data);
    const text = auditSearchText(e.type, e.actor, e.proposal_id ?? '', e.agent ?? '', data);
    args.push(e.type, e.at, e.proposal_id ?? '', e.agent ?? '', e.actor, data, e.digest, step2IndexArg(text));
  }
  return args;
}

/** ARGV and index KEYS for the index-at-commit script, as scripts.ts built them then. */
function indexedAtCommitArgs(events: readonly SealedAuditEventInput[], index: AuditIndexKeys): { args: string[]; keys: string[] } {
  const args: string[] = [];
  const keys: string[] = [];
  for (const e of events) {
    const data = canonicalJson(e.data);
    const lists = indexKeys(index, e, auditSearchText(e.type, e.actor, e.proposal_id ?? '', e.agent ?? '', data));
    args.push(e.type, e.at, e.proposal_id ?? '', e.agent ?? '', e.actor, data, e.digest, String(lists.length));
    keys.push(...lists);
  }
  return { args, keys };
}

/** `after` is `append` + `index` (windows of their own, added up). */
type Variant = 'before' | 'index at commit' | 'after' | 'append' | 'index' | 'call only' | 'checks only';
const WINDOWS: readonly Exclude<Variant, 'after'>[] = ['append', 'index', 'before', 'index at commit', 'call only', 'checks only'];

export interface AppendCost {
  variant: Variant;
  batch: number;
  /** Entries per indexer step (the indexer's own windows and `after`). */
  indexBatch: number;
  events: number;
  calls: number;
  /** Script time per event (EVALSHA with the commands it called), µs. */
  scriptUs: number;
  /** redis-server CPU (user + sys) per event, µs: the scripts, the reads, the protocol, the network. */
  cpuUs: number;
  /** The commands called (by scripts, and the indexer's reads), per event: calls and µs (commandstats). */
  inner: { command: string; calls: number; us: number }[];
}

export interface AuditCostResult {
  costs: AppendCost[];
  /** Search index lists per event (each event's own). */
  indexListsPerEvent: number;
}

const ROUNDS = 4;
const CONCURRENCY = 4;

function costOf(variant: Variant, shape: { batch: number; indexBatch: number }, events: number, d: RedisSnapshot): AppendCost {
  const script = scriptStat(d);
  const inner = [...d.commands]
    .filter(([name]) => name !== 'evalsha' && name !== 'eval' && name !== 'info')
    .map(([command, s]) => ({ command, calls: s.calls / events, us: s.usec / events }))
    .sort((a, b) => b.us - a.us);
  return { variant, ...shape, events, calls: script.calls, scriptUs: script.usec / events, cpuUs: (d.cpuMs * 1000) / events, inner };
}

/**
 * Appends `shapes` (events in batches of `batch`, indexed in steps of `indexBatch`) with each
 * variant on keys of its own, in ROUNDS turns, and returns the Redis cost per event. Deletes
 * its keys afterwards.
 */
export async function auditAppendCost(redis: Redis, shapes: { batch: number; indexBatch: number; events: number }[]): Promise<AuditCostResult> {
  for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
  const command = (name: keyof typeof SCRIPTS) => (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]!.bind(redis);
  const costs: AppendCost[] = [];
  let lists = 0;
  let listed = 0;
  for (const shape of shapes) {
    const { batch, events } = shape;
    const prefix = (v: Variant) => `benchcost-${v.replace(/\W+/g, '-')}-x${batch}`;
    // The indexer indexes what today's append wrote.
    const todayPrefix = prefix('append');
    const today = createRedisAuditLog(redis, { prefix: todayPrefix });
    const seals = createRedisAuditSeals(redis, { prefix: todayPrefix });
    const indexer = createRedisAuditIndex(redis, { prefix: todayPrefix });
    const fixed = (v: Variant, list: AuditEventInput[]) => {
      const k = redisKeys(prefix(v));
      return [2, k.audit, k.auditHead, ...eventArgs(list.map(seal))];
    };
    const append: Record<Exclude<Variant, 'after' | 'index'>, (list: AuditEventInput[]) => Promise<unknown>> = {
      before: (list) => {
        const k = redisKeys(prefix('before'));
        return command('benchAppendEventsStep2')(2, k.audit, k.auditHead, ...step2Args(list.map(seal)));
      },
      'index at commit': (list) => {
        const k = redisKeys(prefix('index at commit'));
        const { args, keys } = indexedAtCommitArgs(list.map(seal), auditIndexKeys(k.audit));
        return command('benchAppendEventsIndexedAtCommit')(2 + keys.length, k.audit, k.auditHead, ...keys, ...args);
      },
      append: (list) => today.append(list),
      'call only': (list) => command('benchAuditCallOnly')(...fixed('call only', list)),
      'checks only': (list) => command('benchAuditChecksOnly')(...fixed('checks only', list)),
    };
    const sums = new Map<Variant, RedisSnapshot>(WINDOWS.map((v) => [v, emptySnapshot()]));
    const perRound = Math.ceil(events / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      const from = r * perRound;
      const to = Math.min(events, from + perRound);
      const calls = Math.ceil((to - from) / batch);
      for (const v of WINDOWS) {
        // Outside the window: the lease the indexer writes under (a lease of 10 minutes outlasts the run).
        if (v === 'index') await seals.acquireLease(OWNER, 600_000);
        const s0 = await redisSnapshot(redis);
        if (v === 'index') {
          // What the append of this round wrote, as the indexer takes it: one step after another.
          for (;;) {
            const step = await indexer.indexNext(OWNER, shape.indexBatch);
            if (typeof step !== 'object') throw new Error(`audit cost (index, batch ${batch}): the indexer step was ${step}`);
            if (step.indexed === 0) break;
          }
        } else {
          const run = await pool(calls, CONCURRENCY, async (c) => {
            const list: AuditEventInput[] = [];
            for (let i = from + c * batch; i < Math.min(to, from + (c + 1) * batch); i++) list.push(syntheticEvent(i));
            await append[v](list);
          });
          if (run.errors > 0) throw new Error(`audit cost (${v}, batch ${batch}): ${String((run.firstError as Error)?.message ?? run.firstError)}`);
        }
        addDelta(sums.get(v)!, snapshotDelta(s0, await redisSnapshot(redis)));
      }
    }
    const total = emptySnapshot();
    addDelta(total, sums.get('append')!);
    addDelta(total, sums.get('index')!);
    costs.push(costOf('after', shape, events, total));
    for (const v of WINDOWS) costs.push(costOf(v, shape, events, sums.get(v)!));
    const sample = Array.from({ length: 200 }, (_, i) => seal(syntheticEvent(i)));
    lists += indexedAtCommitArgs(sample, auditIndexKeys('x')).keys.length;
    listed += sample.length;
    for (const v of WINDOWS) await unlinkPrefix(redis, prefix(v));
  }
  return { costs, indexListsPerEvent: lists / listed };
}

type RowFn = (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void;

/** The rows of the cost phase: per batch size, before and after, and where today's append and indexer spend. */
export function auditCostRows(result: AuditCostResult, row: RowFn): void {
  const find = (v: Variant, batch: number) => result.costs.find((c) => c.variant === v && c.batch === batch);
  const batches = [...new Set(result.costs.map((c) => c.batch))];
  for (const batch of batches) {
    const [before, atCommit, after, append, index, call, checks] = (['before', 'index at commit', 'after', 'append', 'index', 'call only', 'checks only'] as const).map((v) => find(v, batch));
    if (before === undefined || atCommit === undefined || after === undefined || append === undefined || index === undefined || call === undefined || checks === undefined) continue;
    const per = (c: AppendCost) => `redis-server CPU ${fmt(c.cpuUs, 1)} µs, script ${fmt(c.scriptUs, 1)} µs`;
    row(
      `7. Redis per audit event, ${batch} per script call, indexed ${after.indexBatch} per indexer step (${after.events} events, fresh keys)`,
      `after (append, then the indexer): ${per(after)} = append ${fmt(append.cpuUs, 1)} + indexer ${fmt(index.cpuUs, 1)}`,
      `before (chain step 2, SHA-256 in Lua): ${per(before)}; index at commit (chain step 3, last release): ${per(atCommit)}`,
      `${fmt(before.cpuUs / after.cpuUs, 2)}x less CPU than before, ${fmt(atCommit.cpuUs / after.cpuUs, 2)}x less than index at commit`,
      `${after.cpuUs <= 30 ? 'met' : 'MISSED'}: CPU <= 30 µs per event`,
    );
    // Each step's share: the difference between two cut-down runs (CPU; script time in brackets).
    const step = (a: AppendCost, b: AppendCost | null) => `${fmt(a.cpuUs - (b?.cpuUs ?? 0), 1)} (${fmt(a.scriptUs - (b?.scriptUs ?? 0), 1)})`;
    const used = (c: AppendCost, name: string) => c.inner.find((x) => x.command === name);
    const read = used(index, 'xrange');
    const top = (c: AppendCost) => c.inner.slice(0, 4).map((x) => `${x.command.toUpperCase()} ${fmt(x.calls, 2)}x ${fmt(x.us, 1)}`).join(', ');
    row(
      `7. where it spends per event, ${batch} per call (${fmt(result.indexListsPerEvent, 1)} index lists per event), µs CPU (script)`,
      `calling a script with the events' ARGV ${step(call, null)}; its checks ${step(checks, call)}; the append (XADD, seq) ${step(append, checks)}; the indexer ${step(index, null)}, of which reading the entries (XRANGE) ${fmt(read?.us ?? 0, 1)}`,
      `commands called per event: append ${top(append)}; indexer ${top(index)}`,
    );
  }
}
