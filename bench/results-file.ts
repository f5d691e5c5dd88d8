import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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

// How to read phase 10 (bench/mcp-gateway.ts), and where its time went in the profile it was last
// read with: a run of `PROFILE_KIND=mcp npm run bench:profile`, not of this benchmark.
const MCP_NOTES = [
  '- 10. MCP gateway, issue 14: the SDK Client (StreamableHTTPClientTransport, one per caller, calls one after',
  '  another) calling `echo` on a real SDK McpServer over Streamable HTTP (bench/mcp-upstream-child.js, a process',
  '  of its own), directly and through countersign\'s POST /mcp with an agent key (`bench__echo`; the policy',
  '  allows echo, so each call runs at once in the agent\'s request). Both sides in the same run, in 6 rounds',
  '  of a direct chunk and a through chunk (which goes first alternates), after a warm-up; added = through',
  '  minus direct at the same percentile. This phase has a countersign child of its own (prefix benchmcp,',
  '  no timing observer), run first and stopped before the rest. CPU per call is each process\'s CPU over its',
  '  side\'s chunks divided by the calls; redis-server and the countersign child also do background work',
  '  (sealer, indexer, queue checks), which falls on the through side; "commands" is INFO stats',
  '  total_commands_processed, which counts the commands the scripts call too.',
  '- 10. What an allowed call does in countersign (dist/, the code `npm start` runs): hashes the key, builds an',
  '  SDK Server, its Ajv validator and a Streamable HTTP transport for the request (the SDK\'s Node transport',
  '  converts the request and the response with @hono/node-server), decides by policy, then waits on Redis',
  '  five times in a row, not twice: the create script together with the tracking ZADD, the PUBLISH of the',
  '  new status (wake-waiters, awaited by dispatch), [the upstream call], the commit script, its PUBLISH, the',
  '  ZREM that untracks it. The answer goes back as an SSE stream (headers, one event, end).',
  '- 10. Why c=16 misses by so much: countersign is one Node thread, and a call costs it milliseconds of CPU',
  '  (the CPU rows), so 16 calls in flight queue behind one another: the added p50 is about 16 x that CPU',
  '  (16 x the countersign figure of the c=16 CPU row comes close to the added p50). The target (+1 ms) needs about',
  '  60 µs of countersign CPU per call, or calls spread over processes; removing every cost named below',
  '  would about halve the CPU, not take it there. At c=1 the added latency is the CPU of one call plus its',
  '  five sequential Redis round trips.',
  '- 10. Where countersign\'s time goes (PROFILE_KIND=mcp npm run bench:profile on 2026-12-01: 3000 calls a',
  '  side at c=16, countersign under --cpu-prof, busy samples of the measured window split by the innermost',
  '  package frame; load average about 10 on the 2 cores from other work, so samples count time spent',
  '  runnable but descheduled too: read the shares, not the µs). Top costs and what would remove each:',
  '  (1) the Redis client, 24%: nearly all of it the kernel side of one socket write per command (writeUtf8String',
  '  under ioredis\'s sendCommand), about 6 top-level commands a call. Folding the tracking into the create script',
  '  and the untracking into the commit script, and publishing the status from inside both scripts (or not',
  '  awaiting the publish), leaves 2 writes and 2 sequential round trips.',
  '  (2) fetch (undici) for the call to the upstream, 15%, and the SDK Client around it, 3%: the price of',
  '  Streamable HTTP to the upstream, which the agent also pays when it calls directly (see the load generator\'s',
  '  CPU per call); an upstream answering JSON instead of SSE costs less to read. Not countersign\'s to remove.',
  '  (3) the per-request SDK Server, about 25% in all: Ajv 7% (new Server() builds a new Ajv with its',
  '  meta-schemas when no jsonSchemaValidator is given: pass one shared AjvJsonSchemaValidator), @hono/node-server',
  '  9% (Node request -> web Request -> SSE Response -> Node response: `enableJsonResponse: true` on the',
  '  per-request transport when the call carries no progress token writes one JSON body instead; or the',
  '  web-standard transport with a thin Node bridge, or one long-lived Server with the agent taken from',
  '  extra.authInfo), the SDK\'s Server/Protocol/transport 6% and most of zod 3% (the SDK parsing each',
  '  message).',
  '  (4) garbage collection 10%, much of it the per-request Server and Ajv. Left: countersign\'s own code',
  '  (HTTP layer, call-tool, stores, commit flow) 11%, Node internals 8%, audit sealer, indexer and digests 3%,',
  '  the policy decision 1%. redis-server spends about 1 ms CPU per call (two scripts, 12 TYPE checks, index',
  '  LPUSHes), off the request\'s CPU but on its path.',
];

// How to read the hot path phase (bench/hotpath.ts): rows 1., 6. and 9.
const HOTPATH_NOTES = [
  '- 1. Hot path, issue 16: signed POST /v1/proposals of three kinds the bench policy decides differently',
  '  (bench/workload.ts): allowed (crm tag, reversible, internal: runs at once, the executor receives it),',
  '  denied (crm delete: nothing follows) and pending (payments refund: a card in Slack, waiting for a person).',
  '  The baseline is a bare node:http server in a child of its own (bench/bare-child.js) that does what any',
  '  agent request needs before a decision: reads the body, checks the HMAC signature with countersign\'s own',
  '  compiled code and steps (agent looked up by its header, verifySignature, the request\'s name hashed from',
  '  the signature), JSON.parse, answers 201 with a small JSON. Same client (a keep-alive node:http Agent in',
  '  the bench process), same signed bodies. For each kind at c=1 and c=16: a warm-up on both, then 6 rounds',
  '  of a bare chunk and a countersign chunk, which goes first alternating; the ratios are countersign over',
  '  bare at the same percentile, from the same rounds (a series starts no round after 30 s; its row says how',
  '  many ran and how many requests a side). countersign runs in a child of its own (prefix',
  '  benchhot, its own fixtures, no timing observer, so only the request is in what the client times).',
  '- 1. Follow-ups: after each countersign chunk the bench waits until the chunk\'s cards have reached the fake',
  '  Slack (chat.postMessage answered ok outside a thread, counted by the fixtures child) or its allowed',
  '  proposals have reached the executor, then until the audit stream\'s length holds still (XLEN, 20 ms apart:',
  '  card_posted, the outcome), then until the audit sealer and search indexer (both in the countersign child)',
  '  have caught up with the chunk\'s entries (sealed seq and index position, HGET; the sealer checkpoints at',
  '  most 1 s after an entry). Only counts and positions are read, never queue contents, so the bench costs',
  '  Redis next to nothing per proposal and does not depend on how countersign moves the work (BullMQ, an',
  '  outbox). The next bare chunk therefore never shares the machine with countersign\'s leftovers.',
  '- 1. Pending intake is the 201s per second over the countersign chunks; sustained divides the same',
  '  proposals by the time from each chunk\'s start until its last card was counted at the fake Slack (10 ms',
  '  polls). The c=64 series fills countersign up to 10k pending (2 rounds, so its bare figure is thinner).',
  '- 1. CPU per proposal: the countersign child\'s process.cpuUsage() and redis-server\'s INFO cpu',
  '  (used_cpu_user + used_cpu_sys), read before each countersign chunk and after its follow-ups, summed over',
  '  the chunks and divided by the proposals: the card (pending) or the execution and outcome (allowed) are',
  '  included, and so are sealing and indexing its audit entries, and the background work that ran meanwhile',
  '  (queue checks, the waits for the sealer; at c=1, which lasts longer per proposal, it weighs more). The',
  '  baseline is the bare server\'s own CPU per request over its c=16 chunks.',
  '- 6. RSS: both processes\' process.memoryUsage().rss read at the same moment, once countersign holds the',
  '  pending proposals (ZCARD of its pending set) and the bare server has answered as many requests; idle is',
  '  countersign before its first request. The live heap after a full GC (--expose-gc) shows what the process',
  '  holds; the rest is V8 heap headroom, which the heap limit governs (README, Running it for real).',
  '- 1. Why the hot path targets are missed (PROFILE_KIND=denied PROFILE_CONCURRENCY=16 npm run bench:profile',
  '  on 2026-12-01, 3000 denied proposals under --cpu-prof, load average about 6 from other work; read the',
  '  shares). A denied proposal is one Redis round trip (the create script) between reading the request and',
  '  answering it: 14% of the process\'s samples are that one EVALSHA\'s socket write (writeUtf8String, nearly',
  '  all of it the kernel\'s loopback TCP send, which wakes redis-server on the other core), 4% the answer\'s',
  '  writev, 9% garbage collection; parsing and zod 3%, the draft with its event digests 3%, HMAC 1.4%, the',
  '  policy 0.6%; the audit sealer and indexer (chain hashes, index lists) about 6% in the background. The',
  '  bare server makes no Redis call at all, so "3x bare" leaves less than a loopback round trip on this VM.',
  '  Allowed at c=1: the 201 no longer waits for the token, but its follow-ups (token signed and recorded,',
  '  execute job, the executor\'s HTTP call, the outcome) run on the same Node thread right after it and the',
  '  next request queues behind them: the c=1 p50 is close to the allowed proposal\'s whole CPU (the CPU',
  '  row), not to its request\'s. Getting there needs the follow-ups off the request\'s thread (queue workers',
  '  in a process of their own) or far less CPU per execution. Pending intake: the card relay posts in the',
  '  same process, so intake shares the core with card work (about 300-400 µs of Node per card after the',
  '  Slack client change). RSS: the idle process is most of it (modules and V8\'s young generation); the',
  '  10k pending add about 40 MB of heap headroom. Redis per pending proposal: 264-383 µs across the rows,',
  '  of which the sealer\'s checkpoint script (reading entries to chain) is 70-136 µs.',
];

// How to read phase 11 (bench/credentials.ts).
const CREDENTIAL_NOTES = [
  '- 11. Just-in-time credentials, issue 15: time from the approval to the agent holding its task\'s login. The',
  '  agent is the real CountersignClient in wait() (poll mode), in its long poll before a person clicks Approve',
  '  in Slack (signed block_actions, the card posted beforehand); "in hand" is wait() returning the read with the',
  '  execution token and the credential, after which the agent runs one SET with the login (untimed). Between',
  '  the approval and that read, countersign commits the approval, mints and records the token, reserves the',
  '  login in its ledger, makes the ACL user on a downstream redis-server of its own (ACL SETUSER as a',
  '  least-privilege admin user) and seals the secret for the pick-up (AES-GCM); from then on a read takes',
  '  token and login, once (credential_issued and the thread reply follow). The client polls for the token after',
  '  it sees "approved" (10 ms, then doubling), so the figures include up to one such pause. The baseline is',
  '  the same flow for a rule without credentials, alternating with it in the same run (same client, same',
  '  pauses): the difference is what the login costs. "approval committed" starts at the observer in the',
  '  countersign child (same machine clock). The outcome report revokes the login inside its request (ACL',
  '  SETUSER off, CLIENT KILL USER, ACL DELUSER, the ledger, credential_revoked): its row is that round trip.',
  '  One task at a time; countersign in a child of its own (prefix benchcred), stopped before the rest. A long',
  '  poll that ran its full length would mean an approval that landed between two of the client\'s polls',
  '  (the server\'s long poll compares with the status at its start); the click waits until the poll is sent.',
];

/** The command line of this run, with the BENCH_* settings it was given. */
export function benchCommand(): string {
  const env = Object.entries(process.env)
    .filter(([k, v]) => k.startsWith('BENCH_') && v !== undefined && v !== '')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${String(v)} `)
    .join('');
  return `${env}npm run bench`;
}

/** The rows that carry a target, as a short table (metric, figure, target): the summary of a run. */
export function targetLines(rows: readonly Row[]): string[] {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const withTarget = rows.filter((r) => r.target !== '');
  return [
    '| metric | figure | target |',
    '|---|---|---|',
    ...withTarget.map((r) => `| ${esc(r.metric)} | ${esc(r.ratio !== '' ? `${r.ratio} (${r.value})` : r.value)} | ${esc(r.target)} |`),
  ];
}

/** Writes bench/results.md (the table and how to read it) and prints it. */
export function writeResults(meta: { redisVersion: string; elapsed: number; scale: number; rows: readonly Row[]; loadAtStart: readonly number[] }): void {
  const load = (l: readonly number[]) => l.map((x) => fmt(x, 1)).join(' / ');
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '# countersign benchmark results',
    '',
    `Every figure below was produced by one run of \`${benchCommand()}\` (bench/run.ts) on ${new Date().toISOString()}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, Redis ${meta.redisVersion}, BENCH_SCALE=${meta.scale}, run time ${fmt(meta.elapsed, 0)} s; load average (1 / 5 / 15 min) ${load(meta.loadAtStart)} at the start, ${load(loadavg())} at the end.`,
    '',
    'countersign runs as a child process (one Node process, its default queue workers) against a private',
    'redis-server; the fake Slack Web API and the executor run in a second child, the load generator and the',
    'BullMQ baselines in the parent, all on loopback. Latencies are measured by the client, except where a',
    'figure starts or ends inside countersign (approval counted, execute job enqueued, outcome recorded):',
    'those are timestamps the processes report over IPC, on the same machine clock.',
    '',
    '## Targets',
    '',
    'Every figure that has a target, from the table below (issue 16\'s hot path ratios are to the bare HMAC',
    'server measured in the same run).',
    '',
    ...targetLines(meta.rows),
    '',
    '## All figures',
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
    ...HOTPATH_NOTES,
    '- Intake does far more than a queue add, so half the raw Queue.add rate is out of reach by construction:',
    '  each pending proposal is an HTTP request with HMAC, schema and policy checks, one create script in Redis',
    '  (the proposal and its audit events, whose search index the indexer writes after it), its expiry and',
    '  card scheduled, then the card posted through the Slack Web API and a card_posted event: see the CPU per',
    '  pending proposal above. On 2 cores the countersign process is the bound; redis-server is what several',
    '  countersign processes would share. `npm run bench:profile` shows where the CPU goes. CPU figures move',
    '  with the machine too (frequency, neighbours), less than rates.',
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
    '- 8. Redis per proposal, by kind (denied: the create script only; pending: with posting its card and card_posted',
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
    '- 9. Sealing lag: over every entry the hot path phase appended, read at its end, each entry\'s lag is the',
    '  `at` of the first signed checkpoint whose seq covers it minus the entry\'s `at`; the sealer runs in that',
    '  phase\'s countersign child with its default tuning (a checkpoint every 1000 entries or 1 s after the first',
    '  entry no checkpoint covers).',
    '- Audit search uses the index the indexer writes after the commit (adapters/redis/audit-index.ts) and scans',
    '  what it has not indexed yet; "complete" means every query found all the events loaded for it in one call.',
    '  It is timed after the sealer and the indexer have caught up with the load (both run in the countersign',
    '  process, which also answers the searches). The',
    '  target (p99 <= 20 ms at 1M events) is issue 13\'s "as fast as today"; the common-word row reads the first',
    '  50 of many matches and has none.',
    ...MCP_NOTES,
    ...CREDENTIAL_NOTES,
    '',
  ];
  const text = lines.join('\n');
  writeFileSync(new URL('./results.md', import.meta.url), text);
  process.stdout.write(`${text}\n`);
}
