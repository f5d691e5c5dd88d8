import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

// What redis-server says it spent, for the cost figures: its CPU (INFO cpu) and its time per
// command (INFO commandstats), read before and after a window, and the time of each top-level
// command (SLOWLOG) with the countersign scripts named.
//
// To know when reading either (Redis 7): a script's EVALSHA time includes the commands it calls,
// and those commands are counted again under their own names (in commandstats, and in SLOWLOG
// from the client "?:0"). So the EVALSHA line is what the scripts cost, and the XADD, LPUSH...
// lines inside a window where only scripts ran say where a script's time goes.

export interface CommandStat {
  calls: number;
  usec: number;
}

export interface RedisSnapshot {
  /** used_cpu_user + used_cpu_sys, ms. */
  cpuMs: number;
  commands: Map<string, CommandStat>;
}

export async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const info = String(await redis.call('INFO', 'cpu', 'commandstats'));
  const num = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  const commands = new Map<string, CommandStat>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) commands.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return { cpuMs: (num('used_cpu_user') + num('used_cpu_sys')) * 1000, commands };
}

/** What happened between two snapshots: CPU (ms) and per command (calls, µs), commands that ran only. */
export function snapshotDelta(a: RedisSnapshot, b: RedisSnapshot): RedisSnapshot {
  const commands = new Map<string, CommandStat>();
  for (const [name, s] of b.commands) {
    const before = a.commands.get(name) ?? { calls: 0, usec: 0 };
    if (s.calls > before.calls) commands.set(name, { calls: s.calls - before.calls, usec: s.usec - before.usec });
  }
  return { cpuMs: b.cpuMs - a.cpuMs, commands };
}

/** Adds `d` into `into` (windows measured in rounds). */
export function addDelta(into: RedisSnapshot, d: RedisSnapshot): void {
  into.cpuMs += d.cpuMs;
  for (const [name, s] of d.commands) {
    const e = into.commands.get(name) ?? { calls: 0, usec: 0 };
    into.commands.set(name, { calls: e.calls + s.calls, usec: e.usec + s.usec });
  }
}

export const emptySnapshot = (): RedisSnapshot => ({ cpuMs: 0, commands: new Map() });

/** EVALSHA + EVAL: the time of every script run in a window (with the commands they called). */
export function scriptStat(d: RedisSnapshot): CommandStat {
  const a = d.commands.get('evalsha') ?? { calls: 0, usec: 0 };
  const b = d.commands.get('eval') ?? { calls: 0, usec: 0 };
  return { calls: a.calls + b.calls, usec: a.usec + b.usec };
}

// ---------- SLOWLOG: each top-level command's time, scripts by name ----------

const lua = (name: string) => readFileSync(new URL(`../adapters/redis/lua/${name}`, import.meta.url), 'utf8');
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

/**
 * The SHA1 of each countersign script as adapters/redis/lua-commands.ts composes it (the audit
 * library in front of the scripts that append events, the allow-oom line on the WhenFull
 * ones). A script composed otherwise shows under its first key instead of its name.
 */
function countersignScripts(): Map<string, string> {
  const names = new Map<string, string>();
  const audit = lua('audit-append.lua');
  const withAudit = ['create-proposal', 'commit-proposal', 'append-events'];
  const plain = ['token-save', 'token-redeem', 'token-revoke', 'token-restore', 'agent-revoke', 'agent-restore', 'count-in-window', 'audit-seal'];
  for (const n of withAudit) {
    const src = `${audit}\n${lua(`${n}.lua`)}`;
    names.set(sha1(src), `${n}.lua`);
    names.set(sha1(`#!lua flags=allow-oom\n${src}`), `${n}.lua (when full)`);
  }
  for (const n of plain) {
    names.set(sha1(lua(`${n}.lua`)), `${n}.lua`);
    names.set(sha1(`#!lua flags=allow-oom\n${lua(`${n}.lua`)}`), `${n}.lua (when full)`);
  }
  return names;
}

export interface SlowlogLine {
  what: string;
  calls: number;
  usec: number;
}

/**
 * Starts recording every command that takes `thresholdUs` or more, with room for `room`
 * entries. Redis 7 also records the commands a script calls, inside the script's own time:
 * at threshold 0 that doubles the time of a script with many calls (measured: the create
 * script 185 -> 384 µs). A threshold of a few µs keeps the scripts' times true.
 */
export async function slowlogStart(redis: Redis, room: number, thresholdUs: number): Promise<void> {
  await redis.config('SET', 'slowlog-max-len', String(room));
  await redis.config('SET', 'slowlog-log-slower-than', String(thresholdUs));
  await redis.slowlog('RESET');
}

/**
 * Stops recording and groups what was recorded: countersign scripts by name, BullMQ's and
 * other scripts by their first key (ids blanked), other commands by name; the bench's own
 * reads (INFO, CONFIG, SLOWLOG) left out.
 */
export async function slowlogStop(redis: Redis): Promise<{ lines: SlowlogLine[]; totalUsec: number; entries: number; full: boolean }> {
  await redis.config('SET', 'slowlog-log-slower-than', '10000');
  const room = Number((await redis.config('GET', 'slowlog-max-len'))[1]);
  const log = (await redis.slowlog('GET', -1)) as [number, number, number, string[], string, ...unknown[]][];
  await redis.slowlog('RESET');
  await redis.config('SET', 'slowlog-max-len', '128');
  const names = countersignScripts();
  const by = new Map<string, SlowlogLine>();
  let totalUsec = 0;
  for (const [, , usec, args, client] of log) {
    // Called by a script: already in the script's time.
    if (client === '?:0') continue;
    const cmd = String(args[0]).toUpperCase();
    if (cmd === 'INFO' || cmd === 'CONFIG' || cmd === 'SLOWLOG') continue;
    let what = cmd;
    if (cmd === 'EVALSHA' || cmd === 'EVAL') {
      const sha = cmd === 'EVAL' ? sha1(String(args[1])) : String(args[1]);
      const key = String(args[3] ?? '').replace(/[0-9a-f]{8,}|p_[\w-]+|\d+/g, '*');
      what = names.get(sha) ?? (key.includes(':bull:') ? `BullMQ script on ${key.slice(key.indexOf(':bull:') + 6).replace(/:$/, '')}` : `script ${sha.slice(0, 8)} on ${key}`);
    }
    const e = by.get(what) ?? { what, calls: 0, usec: 0 };
    e.calls += 1;
    e.usec += usec;
    by.set(what, e);
    totalUsec += usec;
  }
  return { lines: [...by.values()].sort((a, b) => b.usec - a.usec), totalUsec, entries: log.length, full: log.length >= room };
}

/** Deletes every key of `prefix` (its `{prefix}` hash tag): the bench's scratch keys. */
export async function unlinkPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
