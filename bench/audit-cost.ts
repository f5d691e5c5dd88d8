import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { auditIndexKeys, MAX_TOKENS_PER_EVENT, searchTokens } from '../adapters/redis/audit-index.ts';
import { createRedisAuditLog } from '../adapters/redis/audit-log.ts';
import { redisKeys } from '../adapters/redis/keys.ts';
import { runLua } from '../adapters/redis/lua-commands.ts';
import { EVENT_ARITY, eventArgs } from '../adapters/redis/scripts.ts';
import { canonicalJson, seal, type AuditEventInput, type SealedAuditEventInput } from '../src/core/audit.ts';
import { auditSearchText } from '../src/core/audit-words.ts';
import { syntheticEvent } from './audit-events.ts';
import { fmt, pool } from './lib.ts';
import { addDelta, emptySnapshot, redisSnapshot, scriptStat, snapshotDelta, unlinkPrefix, type RedisSnapshot } from './redis-stats.ts';

// What one audit event costs Redis, before and after issue 13, in the same run on the same
// Redis: the same synthetic events (audit-events.ts, phase 5's) appended on fresh keys
//   - before: the chain step 2 append script (SHA-256 chain step in Lua), a bench-only copy
//     from git history in bench/fixtures/chain-step2/, called as scripts.ts called it then;
//   - after: today's append (createRedisAuditLog(...).append: digest from Node, no hash in Redis);
// and, to show where today's script spends, three cut-down runs with today's ARGV but no index
// lists (each event's count of them 0, none in KEYS), each adding one part to the one before:
//   - call only: a script that returns at once;
//   - checks only: today's checks (arguments, key types, the head's seq), then nothing written;
//   - no index: today's append script; the full run adds the index lists to it.
// Run while nothing else uses this Redis (before countersign starts): the windows are read
// from INFO cpu and INFO commandstats, which count everything the server does. The variants
// take turns in rounds, so that a change of CPU speed during the run hits them alike.

const fixture = (name: string) => readFileSync(new URL(`./fixtures/chain-step2/${name}`, import.meta.url), 'utf8');
// Composed as lua-commands.ts composed it before issue 13: sha256.lua, audit-append.lua, append-events.lua.
const STEP2_APPEND_EVENTS = [fixture('sha256.lua'), fixture('audit-append.lua'), fixture('append-events.lua')].join('\n');
const STEP2_COMMAND = 'benchAppendEventsStep2';
const TODAY_LIB = readFileSync(new URL('../adapters/redis/lua/audit-append.lua', import.meta.url), 'utf8');
const PARTS = {
  benchAuditCallOnly: 'return 0',
  benchAuditChecksOnly: `${TODAY_LIB}
local bad = audit_events_error(1, 3) or audit_keys_error(KEYS[1], KEYS[2])
if bad then return redis.error_reply(bad) end
return 0`,
};

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

type Variant = 'before' | 'after' | 'call only' | 'checks only' | 'no index';
const VARIANTS: readonly Variant[] = ['after', 'before', 'call only', 'checks only', 'no index'];

export interface AppendCost {
  variant: Variant;
  batch: number;
  events: number;
  calls: number;
  /** EVALSHA time per event (the script, with the commands it called), µs. */
  scriptUs: number;
  /** redis-server CPU (user + sys) per event, µs: the script, the protocol, the network. */
  cpuUs: number;
  /** The commands the script called, per event: calls and µs (commandstats). */
  inner: { command: string; calls: number; us: number }[];
}

export interface AuditCostResult {
  costs: AppendCost[];
  /** Search index lists per event (today's script gets them in KEYS). */
  indexListsPerEvent: number;
}

const ROUNDS = 4;
const CONCURRENCY = 4;

/**
 * Appends `shapes` (events in batches of `batch`) with each variant on keys of its own, in
 * ROUNDS turns, and returns the Redis cost per event. Deletes its keys afterwards.
 */
export async function auditAppendCost(redis: Redis, shapes: { batch: number; events: number }[]): Promise<AuditCostResult> {
  redis.defineCommand(STEP2_COMMAND, { numberOfKeys: 2, lua: STEP2_APPEND_EVENTS });
  for (const [name, lua] of Object.entries(PARTS)) redis.defineCommand(name, { lua });
  const command = (name: string) => (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]!.bind(redis);
  const step2 = command(STEP2_COMMAND);
  const costs: AppendCost[] = [];
  let lists = 0;
  let listed = 0;
  for (const { batch, events } of shapes) {
    const prefix = (v: Variant) => `benchcost-${v.replace(/\W+/g, '-')}-x${batch}`;
    const today = createRedisAuditLog(redis, { prefix: prefix('after') });
    // Today's KEYS and ARGV for `list` on `v`'s keys, without index lists.
    const unindexed = (v: Variant, list: AuditEventInput[]) => {
      const k = redisKeys(prefix(v));
      const { args } = eventArgs(list.map(seal), auditIndexKeys(k.audit));
      for (let i = EVENT_ARITY - 1; i < args.length; i += EVENT_ARITY) args[i] = '0';
      return [2, k.audit, k.auditHead, ...args];
    };
    const append: Record<Variant, (list: AuditEventInput[]) => Promise<unknown>> = {
      before: (list) => {
        const k = redisKeys(prefix('before'));
        return step2(k.audit, k.auditHead, ...step2Args(list.map(seal)));
      },
      after: (list) => today.append(list),
      'call only': (list) => command('benchAuditCallOnly')(...unindexed('call only', list)),
      'checks only': (list) => command('benchAuditChecksOnly')(...unindexed('checks only', list)),
      'no index': (list) => runLua(redis, 'countersignAppendEvents', unindexed('no index', list)),
    };
    const sums = new Map<Variant, RedisSnapshot>(VARIANTS.map((v) => [v, emptySnapshot()]));
    const perRound = Math.ceil(events / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      const from = r * perRound;
      const to = Math.min(events, from + perRound);
      const calls = Math.ceil((to - from) / batch);
      for (const v of VARIANTS) {
        const s0 = await redisSnapshot(redis);
        const run = await pool(calls, CONCURRENCY, async (c) => {
          const list: AuditEventInput[] = [];
          for (let i = from + c * batch; i < Math.min(to, from + (c + 1) * batch); i++) list.push(syntheticEvent(i));
          await append[v](list);
        });
        if (run.errors > 0) throw new Error(`audit cost (${v}, batch ${batch}): ${String((run.firstError as Error)?.message ?? run.firstError)}`);
        addDelta(sums.get(v)!, snapshotDelta(s0, await redisSnapshot(redis)));
      }
    }
    for (const v of VARIANTS) {
      const d = sums.get(v)!;
      const script = scriptStat(d);
      const inner = [...d.commands]
        .filter(([name]) => name !== 'evalsha' && name !== 'eval' && name !== 'info')
        .map(([command, s]) => ({ command, calls: s.calls / events, us: s.usec / events }))
        .sort((a, b) => b.us - a.us);
      costs.push({ variant: v, batch, events, calls: script.calls, scriptUs: script.usec / events, cpuUs: (d.cpuMs * 1000) / events, inner });
    }
    const sample = Array.from({ length: 200 }, (_, i) => seal(syntheticEvent(i)));
    const { keys } = eventArgs(sample, auditIndexKeys('x'));
    lists += keys.length;
    listed += sample.length;
    for (const v of VARIANTS) await unlinkPrefix(redis, prefix(v));
  }
  return { costs, indexListsPerEvent: lists / listed };
}

type RowFn = (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void;

/** The rows of the cost phase: per batch size, before and after, and where today's script spends. */
export function auditCostRows(result: AuditCostResult, row: RowFn): void {
  const find = (v: Variant, batch: number) => result.costs.find((c) => c.variant === v && c.batch === batch);
  const batches = [...new Set(result.costs.map((c) => c.batch))];
  for (const batch of batches) {
    const before = find('before', batch);
    const after = find('after', batch);
    const part = (v: Variant) => find(v, batch);
    const call = part('call only');
    const checks = part('checks only');
    const bare = part('no index');
    if (before === undefined || after === undefined || call === undefined || checks === undefined || bare === undefined) continue;
    const per = (c: AppendCost) => `redis-server CPU ${fmt(c.cpuUs, 1)} µs, script ${fmt(c.scriptUs, 1)} µs`;
    row(
      `7. Redis per audit event, ${batch} per script call (${after.events} events, fresh keys)`,
      `after (chain step 3): ${per(after)}`,
      `before (chain step 2, SHA-256 in Lua): ${per(before)}`,
      `${fmt(before.cpuUs / after.cpuUs, 2)}x less CPU, ${fmt(before.scriptUs / after.scriptUs, 2)}x less script time`,
      `${after.cpuUs <= 30 ? 'met' : 'MISSED'}: CPU <= 30 µs per event`,
    );
    // Each step's share: the difference between two cut-down runs (CPU; script time in brackets).
    const step = (a: AppendCost, b: AppendCost | null) => `${fmt(a.cpuUs - (b?.cpuUs ?? 0), 1)} (${fmt(a.scriptUs - (b?.scriptUs ?? 0), 1)})`;
    const top = after.inner.slice(0, 5).map((c) => `${c.command.toUpperCase()} ${fmt(c.calls, 1)}x ${fmt(c.us, 1)}`).join(', ');
    row(
      `7. where today's script spends per event, ${batch} per call (${fmt(result.indexListsPerEvent, 1)} index lists per event), µs CPU (script)`,
      `calling a script with the events' ARGV ${step(call, null)}; its checks ${step(checks, call)}; the append (XADD, seq) ${step(bare, checks)}; the index lists (in KEYS, one LPUSH each) ${step(after, bare)}`,
      `commands called, per event: ${top}`,
    );
  }
}
