import type { Redis } from 'ioredis';
import { fmt, pool } from './lib.ts';
import { redisSnapshot, scriptStat, slowlogStart, slowlogStop, snapshotDelta, type SlowlogLine } from './redis-stats.ts';

// What one proposal costs Redis, by kind (denied: the create script and nothing else; pending:
// the create script, its card job through BullMQ and the card_posted event), in two windows of
// its own after the intake phase: one plain (redis-server CPU from INFO cpu, script time from
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
}

export interface ProposalCostRun {
  kind: string;
  count: number;
  concurrency: number;
  auditKey: string;
  submit: () => Promise<void>;
  drain: () => Promise<void>;
  /** Proposals in the SLOWLOG window (it records every command, scripts' own included). */
  splitCount: number;
  deadlineMs: number;
}

export async function proposalCost(redis: Redis, run: ProposalCostRun): Promise<ProposalCost> {
  const window = async (count: number) => {
    const r = await pool(count, run.concurrency, run.submit, run.deadlineMs);
    if (r.errors > 0) throw new Error(`${run.kind} proposals: ${r.errors} errors, first: ${String((r.firstError as Error)?.message ?? r.firstError)}`);
    await run.drain();
    return r.done;
  };
  const x0 = await redis.xlen(run.auditKey);
  const s0 = await redisSnapshot(redis);
  const done = await window(run.count);
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
  };
}

type RowFn = (metric: string, value: string, baseline?: string, ratio?: string, target?: string) => void;

/**
 * The rows for one kind. `beforeDeltaUs`: how much more script time an event cost before issue 13
 * (chain step 2 minus step 3, 2 events per call, measured in this run by audit-cost.ts), for an
 * estimate of the same proposal before.
 */
export function proposalCostRows(c: ProposalCost, row: RowFn, beforeDeltaUs: number): void {
  const scripts = c.split
    .slice(0, 5)
    .map((l) => `${l.what} ${fmt(l.calls, 2)}x ${fmt(l.usec, 0)} µs`)
    .join('; ');
  const estimate = c.scriptUs + c.eventsPerProposal * beforeDeltaUs;
  row(
    `8. Redis per ${c.kind} proposal (${c.count}, ${fmt(c.eventsPerProposal, 2)} audit events each)`,
    `redis-server CPU ${fmt(c.cpuUs, 0)} µs; script time (all scripts, commandstats) ${fmt(c.scriptUs, 0)} µs`,
    `before, estimated: script time ${fmt(estimate, 0)} µs (this run's scripts + ${fmt(c.eventsPerProposal, 2)} events x ${fmt(beforeDeltaUs, 0)} µs more per event in step 2)`,
    `${fmt(estimate / c.scriptUs, 2)}x less script time (estimate)`,
  );
  row(`8. Redis per ${c.kind} proposal: top-level calls of ${SLOWLOG_US} µs or more (SLOWLOG, ${c.splitCount} more proposals)`, `${fmt(c.commandUs, 0)} µs in all: ${scripts}`);
}
