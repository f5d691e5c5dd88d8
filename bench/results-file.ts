import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { startFlags } from './children.ts';
import { fmt } from './lib.ts';

// bench/results.md: what `npm run bench` measured, and what a reader needs to read it right.

export interface Row {
  metric: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
}

/** Writes bench/results.md (the table and how to read it) and prints it. */
export function writeResults(meta: { redisVersion: string; elapsed: number; scale: number; rows: readonly Row[] }): void {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '# countersign benchmark results',
    '',
    `Written by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString()}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, Redis ${meta.redisVersion}, BENCH_SCALE=${meta.scale}, run time ${fmt(meta.elapsed, 0)} s.`,
    '',
    'countersign runs as a child process (one Node process, its default queue workers) against a private',
    'redis-server; the fake Slack Web API and the executor run in a second child, the load generator and the',
    'BullMQ baselines in the parent, all on loopback. Latencies are measured by the client, except where a',
    'figure starts or ends inside countersign (approval counted, execute job enqueued, outcome recorded):',
    'those are timestamps the processes report over IPC, on the same machine clock.',
    '',
    '| metric | value | baseline | ratio | target |',
    '|---|---|---|---|---|',
    ...meta.rows.map((r) => `| ${esc(r.metric)} | ${esc(r.value)} | ${esc(r.baseline)} | ${esc(r.ratio)} | ${esc(r.target)} |`),
    '',
    '## Reading the figures',
    '',
    '- Everything shares the machine: redis-server, countersign, the fixtures and the load generator. On 2 cores',
    '  the figures move by 10-30% between runs, more when anything else runs.',
    '- countersign runs from the compiled build (dist/) with the Node flags of `npm start`',
    `  (${startFlags().join(' ') || 'none'}), as a deployment would.`,
    '- Intake does far more than a queue add, so half the raw Queue.add rate is out of reach by construction:',
    '  each pending proposal is an HTTP request with HMAC, schema and policy checks, one create script in Redis',
    '  (the proposal and two audit events, whose search index the indexer writes after it; since issue 13 the script stores each',
    '  event with the digest Node computed and a seq, and the chain is computed in Node by the sealer), two',
    '  BullMQ adds (card, expiry) and a publish, then the card job (a BullMQ job, a Slack Web API call and a',
    '  card_posted event): see the CPU per pending proposal above. On 2 cores the countersign process is',
    '  the bound; redis-server is what several countersign processes would share. `npm run bench:profile`',
    '  shows where the CPU goes. CPU figures move with the machine too (frequency, neighbours), less than rates.',
    '- 7. Redis per audit event, all of it: measured first, while nothing else uses the Redis, from INFO cpu',
    '  (redis-server CPU, user + sys) and INFO commandstats (EVALSHA time, and the commands the script called,',
    '  which Redis 7 also counts under their own names). The same synthetic events (phase 5\'s) are appended on',
    '  fresh keys with today\'s append (chain step 3, the events only) followed by the search indexer over them',
    '  (its reads and its script, in steps of 1000 entries under phase 5\'s load, of 300 at a proposal\'s pace:',
    '  about what its 500 ms poll gathers at this bench\'s intake), and, in the same rounds, with the append of',
    '  before issue 13 (chain step 2, SHA-256 and index lists in Lua) and the last release\'s (chain step 3 with',
    '  one LPUSH per event and index list in the script); both are bench-only copies from git history in',
    '  bench/fixtures/. 500 events per call is phase 5\'s load; 2 per call is the shape of a proposal\'s create',
    '  script and 1 that of card_posted, where the per-call costs (a round trip, parsing the arguments, script',
    '  start, the key-type checks) fall on fewer events. The second row of each says where today\'s append',
    '  spends (from cut-down runs of it) and what the indexer costs.',
    '- 8. Redis per proposal, by kind (denied: the create script only; pending: with its card job and card_posted',
    '  event), in windows of their own after intake (c=16, until the cards are posted): CPU and script time from',
    '  a plain window; the split by script from a second window under SLOWLOG (top-level calls of 10 µs or more:',
    '  every script run, whose time includes what it called; at threshold 0 Redis 7 would also record each',
    '  command a script calls, inside the script\'s time, and double it). The sealer and BullMQ\'s background',
    '  checks run meanwhile and count. Before/after: the create script of proposals made in the plain window is',
    '  replayed on fresh keys with today\'s script (and the indexer after it, 300 entries a step) and with the one',
    '  of before issue 13 (bench-only copy, same',
    '  documents and events read back from Redis), taking turns. "before, derived" for the whole proposal adds',
    '  the replay\'s difference and, per event appended later by another script (card_posted), the difference',
    '  measured in 7 at one event per call: derived from this run\'s measurements, not a run of the old code.',
    '  The CPU per pending proposal in 1 is set beside the same figure of an earlier run, on the machine as it',
    '  was then (compare the baselines of both runs before reading anything into it).',
    '- 9. Sealing lag: after intake, each entry\'s lag is the `at` of the first signed checkpoint whose seq covers',
    '  it minus the entry\'s `at`; the sealer runs in the countersign child with its default tuning (a checkpoint',
    '  every 1000 entries or 1 s after the first entry no checkpoint covers).',
    '- Server RSS: pending proposals live in Redis, not in the process; the live heap after a full GC shows',
    '  what the process holds. The rest is V8 heap headroom, which the heap limit governs (README, Running it for real).',
    '- Audit search uses the index the indexer writes after the commit (adapters/redis/audit-index.ts) and scans',
    '  what it has not indexed yet; "complete" means every query found all the events loaded for it in one call.',
    '  It is timed after the sealer and the indexer have caught up with the load (both run in the countersign',
    '  process, which also answers the searches). The',
    '  target (p99 <= 20 ms at 1M events) is issue 13\'s "as fast as today"; the common-word row reads the first',
    '  50 of many matches and has none.',
    '',
  ];
  const text = lines.join('\n');
  writeFileSync(new URL('./results.md', import.meta.url), text);
  process.stdout.write(`${text}\n`);
}
