import type { Redis } from 'ioredis';
import type { ReplayCost } from './create-replay.ts';
import { fmt, pool } from './lib.ts';
import { redisSnapshot, scriptStat, slowlogStart, slowlogStop, snapshotDelta, type SlowlogLine } from './redis-stats.ts';

// What one proposal costs Redis, by kind (denied: the create script and nothing else; pending:
// the create script, posting its card, however countersign schedules it, and the card_posted
// event), in two windows of its own after the intake phase: one plain (redis-server CPU from INFO cpu, script time from
// INFO commandstats, audit entries per proposal from XLEN), then one under SLOWLOG that names
// the script or command of each top-level call of SLOWLOG_US or more: every script run, not
// the quickest plain commands (HGET, PUBLISH: a few µs per proposal in all). Recording costs
// Redis CPU of its own, so the CPU figure comes from the plain window. Both windows last until
// the follow-up work is done (`drain`). The sealer and BullMQ's background checks run meanwhile
// and count.
const SLOWLOG_US = 10;

export interface ProposalCost {
  kind: string;
  count: number;
  /** redis-server CPU per proposal, µs (plain window). */
  cpuUs: number;
  /** EVALSHA + EVAL time per proposal, µs (plain window, commandstats). */
  scriptUs: number;
  eventsPerProposal: number;
  /** Top-level calls per proposal (SLOWLOG window): what, calls and µs per proposal. */
  split: SlowlogLine[];
  splitCount: number;
  /** Top-level command time per proposal in the SLOWLOG window (calls of SLOWLOG_US or more), µs. */
  commandUs: number;
  /** The proposals of the plain window. */
  ids: string[];
}

export interface ProposalCostRun {
  kind: string;
  count: number;
  concurrency: number;
  auditKey: string;
  /** Submits one proposal; its id. */
  submit: () => Promise<string>;
  drain: () => Promise<void>;
  /** Proposals in the SLOWLOG window (it records every command, scripts' own included). */
  splitCount: number;
  deadlineMs: number;
}

export async function proposalCost(redis: Redis, run: ProposalCostRun): Promise<ProposalCost> {
  const ids: string[] = [];
  const window = async (count: number) => {
    const r = await pool(count, run.concurrency, async () => void ids.push(await run.submit()), run.deadlineMs);
    if (r.errors > 0) throw new Error(`${run.kind} proposals: ${r.errors} errors, first: ${String((r.firstError as Error)?.message ?? r.firstError)}`);
    await run.drain();
    return r.done;
  };
  const x0 = await redis.xlen(run.auditKey);
  const s0 = await redisSnapshot(redis);
  const done = await window(run.count);
  const plainIds = ids.splice(0);
  const d = snapshotDelta(s0, await redisSnapshot(redis));
  const events = (await redis.xlen(run.auditKey)) - x0;
  // Room for every call (a pending proposal makes ~200 with what its scripts call, few of them slow).
  await slowlogStart(redis, run.splitCount * 400 + 20_000, SLOWLOG_US);
  const splitDone = await window(run.splitCount);
  const log = await slowlogStop(redis);
  if (log.full) throw new Error(`${run.kind} proposals: SLOWLOG overflowed (${log.entries} entries); the split would miss calls`);
  return {
    kind: run.kind,
    count: done,
    cpuUs: (d.cpuMs * 1000) / done,
    scriptUs: scriptStat(d).usec / done,
    eventsPerProposal: events / done,
    split: log.lines.map((l) => ({ what: l.what, calls: l.calls / splitDone, usec: l.usec / splitDone })),
    splitCount: splitDone,
    commandUs: log.totalUsec / splitDone,
    ids: plainIds,
  };
}

type RowFn = (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void;

/**
 * The rows for one kind: the create script before and after (replayed, create-replay.ts), the
 * whole proposal after and, derived, before: this run's CPU plus the replay's difference plus,
 * for events appended by other scripts (card_posted), `appendDeltaCpuUs` each (audit-cost.ts,
 * one event per call), and the split by script.
 */
export function proposalCostRows(c: ProposalCost, replay: ReplayCost, appendDeltaCpuUs: number, row: RowFn): void {
  const { before, after } = replay;
  row(
    `8. create script per ${c.kind} proposal, replayed on fresh keys (${replay.proposals} proposals, ${fmt(replay.eventsPerProposal, 2)} audit events each)`,
    `after: redis-server CPU ${fmt(after.cpuUs, 0)} µs, script ${fmt(after.scriptUs, 0)} µs`,
    `before (chain step 2): redis-server CPU ${fmt(before.cpuUs, 0)} µs, script ${fmt(before.scriptUs, 0)} µs`,
    `${fmt(before.cpuUs / after.cpuUs, 2)}x less CPU, ${fmt(before.scriptUs / after.scriptUs, 2)}x less script time`,
  );
  const later = Math.max(0, c.eventsPerProposal - replay.eventsPerProposal);
  const derived = c.cpuUs + (before.cpuUs - after.cpuUs) + later * appendDeltaCpuUs;
  row(
    `8. Redis per ${c.kind} proposal, all of it (${c.count} at c=16, ${fmt(c.eventsPerProposal, 2)} audit events each)`,
    `redis-server CPU ${fmt(c.cpuUs, 0)} µs; script time (all scripts, commandstats) ${fmt(c.scriptUs, 0)} µs`,
    `before, derived: CPU ${fmt(derived, 0)} µs (+ the replay's difference${later > 0 ? ` + ${fmt(later, 2)} later event x ${fmt(appendDeltaCpuUs, 0)} µs from 7` : ''})`,
    `${ratio(derived, c.cpuUs)} less CPU`,
  );
  const scripts = c.split
    .slice(0, 5)
    .map((l) => `${l.what} ${fmt(l.calls, 2)}x ${fmt(l.usec, 0)} µs`)
    .join('; ');
  row(`8. Redis per ${c.kind} proposal: top-level calls of ${SLOWLOG_US} µs or more (SLOWLOG, ${c.splitCount} more proposals)`, `${fmt(c.commandUs, 0)} µs in all: ${scripts}`);
}

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${fmt(a / b, 2)}x` : 'n/a');
