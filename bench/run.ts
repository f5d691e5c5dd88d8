import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedisAuditLog } from '../adapters/redis/audit-log.ts';
import { createRedisConnection } from '../adapters/redis/connection.ts';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import type { AuditEventInput } from '../src/core/audit.ts';
import { auditAppendCost, auditCostRows } from './audit-cost.ts';
import { NEEDLE_EVERY, needleWord, RARE_AGENTS, rareActor, rareAgent, rareCount, syntheticEvent } from './audit-events.ts';
import { blockActionsPayload, payloadBody, slackSignature } from '../test/helpers/fake-slack.ts';
import { buildCountersign, spawnChild, startFlags, Timeline, type Child } from './children.ts';
import { waitFollowUps } from './follow-ups.ts';
import { hotpathPhase, type HotpathResult } from './hotpath.ts';
import { hotpathRows } from './hotpath-rows.ts';
import { fmt, HttpClient, pool, summarize, wallNow, type Summary } from './lib.ts';
import { INDEX_BATCH, replayCreates } from './create-replay.ts';
import { credentialsPhase, credentialsRows } from './credentials.ts';
import { mcpGatewayPhase, mcpGatewayRows } from './mcp-gateway.ts';
import { proposalCost, proposalCostRows } from './proposal-cost.ts';
import { benchCommand, targetLines, writeResults, type Row } from './results-file.ts';
import { waitIndexed, waitSealed } from './sealing-lag.ts';
import { benchPolicy, countersignEnv, deleteBody, nextSeq, paymentBody, propose as submit, tagBody } from './workload.ts';

// `npm run bench`: countersign end to end on this machine, against a private redis-server,
// the fake Slack Web API and a local executor, with raw BullMQ and a bare Node HTTP server
// (HMAC check + JSON.parse) measured in the same run as baselines. Prints a table and writes
// bench/results.md. BENCH_SCALE (default 1) scales every count, e.g. BENCH_SCALE=0.1 for a
// quick run. BENCH_ONLY=hotpath runs only the hot path phase (1., 6., 9.: round trips against
// the bare server, intake, CPU per proposal, RSS at 10k pending), BENCH_ONLY=mcp only the MCP
// gateway phase (10.), BENCH_ONLY=credentials only the just-in-time credentials phase (11.),
// and prints its rows; bench/results.md, which holds a whole run, is left as it is.

const SCALE = Math.max(0.001, Number(process.env['BENCH_SCALE'] ?? '1') || 1);
const scaled = (n: number, min = 1) => Math.max(min, Math.round(n * SCALE));
const RUN_STARTED = wallNow();
const LOAD_AT_START = loadavg();
// Every phase is bounded in count and in time; the whole run stays under 10 minutes.
const PHASE_CAP_MS = Number(process.env['BENCH_PHASE_CAP_MS'] ?? '90000');

// The hot path phase (hotpath.ts): requests per side for each kind (allowed, denied, pending)
// at c=1 and c=16, in 6 alternating rounds; then pending at c=64 up to 10k pending.
const HOT_PLAN = { c1: scaled(1_200, 60), c16: scaled(4_800, 192), rounds: 6, warmup: scaled(300, 40), pendingTarget: scaled(10_000, 200) };
const CLICKS = scaled(300, 20);
const AUTO = scaled(5_000, 100);
const AUDIT_EVENTS = scaled(1_000_000, 10_000);
// Queries per search series: enough that p99 is not simply the slowest of a handful.
const AUDIT_QUERIES = 200;
const BULL_JOBS = scaled(20_000, 200);
// Events per variant in the audit cost phase: in batches of 500 (phase 5's), of 2 (a proposal's
// create script) and of 1 (card_posted and the other events appended on their own).
const COST_EVENTS = scaled(50_000, 2_000);
const COST_EVENTS_X2 = scaled(20_000, 1_000);
const COST_EVENTS_X1 = scaled(10_000, 500);
// Proposals whose create script is replayed before and after (create-replay.ts).
const COST_REPLAYS = scaled(2_000, 100);
const COST_PROPOSALS = scaled(3_000, 100);
// MCP tools/call per side (direct, through countersign) and concurrency.
const MCP_PLAN: [concurrency: number, count: number][] = [
  [1, scaled(2_000, 120)],
  [16, scaled(8_000, 480)],
];
// Tasks per series (with a login, token only) in the credentials phase, one at a time.
const CRED_TASKS = scaled(150, 20);
const ONLY = process.env['BENCH_ONLY'];
if (ONLY !== undefined && ONLY !== 'mcp' && ONLY !== 'credentials' && ONLY !== 'hotpath') throw new Error(`BENCH_ONLY=${ONLY}: only "hotpath", "mcp" and "credentials" are known`);

const SECRET = randomBytes(24).toString('hex');
const SLACK_SECRET = randomBytes(16).toString('hex');
const ADMIN = randomBytes(24).toString('hex');
const PREFIX = 'bench';
const log = (line: string) => process.stderr.write(`[bench ${((wallNow() - RUN_STARTED) / 1000).toFixed(0).padStart(3)}s] ${line}\n`);

// ---------- requests ----------

// Cards owed by the main countersign child: one per pending proposal, waited for at the fake Slack.
let cardsOwed = 0;
const propose = async (client: HttpClient, body: string) => {
  const r = await submit(client, SECRET, body);
  if (r.status === 'pending') cardsOwed += 1;
  return r;
};

interface LoadResult {
  concurrency: number;
  done: number;
  errors: number;
  rps: number;
  lat: Summary;
}

async function load(concurrency: number, count: number, task: () => Promise<void>): Promise<LoadResult> {
  const lat: number[] = [];
  const r = await pool(
    count,
    concurrency,
    async () => {
      const t0 = wallNow();
      await task();
      lat.push(wallNow() - t0);
    },
    wallNow() + PHASE_CAP_MS,
  );
  if (r.errors > 0) log(`  ${r.errors} errors, first: ${String((r.firstError as Error)?.message ?? r.firstError)}`);
  return { concurrency, done: r.done, errors: r.errors, rps: (r.done / r.elapsedMs) * 1000, lat: summarize(lat) };
}

// ---------- results ----------

const rows: Row[] = [];
const row = (metric: string, value: string, baseline = '', ratio = '', target = '') => {
  rows.push({ metric, value, baseline, ratio, target });
  log(`${metric}: ${value}${baseline ? ` | baseline ${baseline}` : ''}${ratio ? ` | ratio ${ratio}` : ''}${target ? ` | ${target}` : ''}`);
};
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
const lat = (s: Summary) => `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} / p99.9 ${fmt(s.p999, 2)} ms`;
const lat2 = (s: Summary) => `p50 ${fmt(s.p50, 2)} / p99 ${fmt(s.p99, 2)} ms`;
const verdict = (ok: boolean, text: string) => `${ok ? 'met' : 'MISSED'}: ${text}`;

// ---------- the run ----------

async function main(): Promise<void> {
  buildCountersign();
  const dir = mkdtempSync(join(tmpdir(), 'countersign-bench-'));
  const children: Child[] = [];
  const redisServer = await startPrivateRedis({ dir: join(dir, 'redis'), persist: false, searchPath: process.env['PATH'] ?? '' });
  const redis = createRedisConnection({ url: redisServer.url, role: 'command' }) as Redis;
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const info = await redis.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    log(`scale ${SCALE}; redis ${redisVersion} at ${redisServer.url}; ${cpus().length} cores; node ${process.version}`);

    // ---- 11. just-in-time credentials: its own countersign, fixtures and downstream, stopped before the rest ----
    const runs = (phase: string) => ONLY === undefined || ONLY === phase;
    if (runs('credentials')) log(`credentials: ${CRED_TASKS} Slack approvals of tasks with a redis-acl login and ${CRED_TASKS} without, one at a time, to the agent's wait()`);
    const credentials = runs('credentials') ? await credentialsPhase({ redisUrl: redisServer.url, dir, count: CRED_TASKS, capMs: PHASE_CAP_MS, log }) : null;
    const credentialRows = () => credentials !== null && credentialsRows(credentials, row);
    if (ONLY === 'credentials') {
      credentialRows();
      log('BENCH_ONLY=credentials: bench/results.md left as it is');
      return;
    }

    // ---- 10. MCP gateway: its own countersign and upstream children, stopped before the rest ----
    if (runs('mcp')) log(`MCP gateway: tools/call direct vs through countersign, ${MCP_PLAN.map(([c, n]) => `${n} each at c=${c}`).join(', ')}`);
    const mcp = runs('mcp') ? await mcpGatewayPhase({ redisUrl: redisServer.url, dir, redis, plan: MCP_PLAN, capMs: PHASE_CAP_MS, log }) : null;
    const mcpRows = () => mcp !== null && mcpGatewayRows(mcp, row);
    if (ONLY === 'mcp') {
      mcpRows();
      log('BENCH_ONLY=mcp: bench/results.md left as it is');
      return;
    }

    // ---- 1./6./9. the hot path against the bare HMAC server: its own countersign, fixtures and bare server, stopped before the rest ----
    log(`hot path: allowed, denied and pending proposals at c=1 (${HOT_PLAN.c1} a side) and c=16 (${HOT_PLAN.c16}) against the bare HMAC server, then ${HOT_PLAN.pendingTarget} pending`);
    // Seven series: each stops starting rounds after a third of a phase's cap, so the phase stays a few minutes at most.
    const hot: HotpathResult = await hotpathPhase({ redisUrl: redisServer.url, redis, dir, plan: HOT_PLAN, capMs: PHASE_CAP_MS / 3, log });
    if (ONLY === 'hotpath') {
      hotpathRows(hot, row);
      process.stdout.write(`\nTargets (${benchCommand()}):\n${targetLines(rows).join('\n')}\n`);
      log('BENCH_ONLY=hotpath: bench/results.md left as it is');
      return;
    }

    // ---- 7. Redis per audit event, before and after, while nothing else uses this Redis ----
    log(`audit cost: ${COST_EVENTS} events in batches of 500, ${COST_EVENTS_X2} of 2, ${COST_EVENTS_X1} of 1; chain step 2 and step 3`);
    // Indexed as the indexer takes them: under phase 5's load a full batch (1000) at a time; at a
    // proposal's pace, what its 500 ms poll gathers (INDEX_BATCH).
    const cost = await auditAppendCost(redis, [
      { batch: 500, indexBatch: 1000, events: COST_EVENTS },
      { batch: 2, indexBatch: INDEX_BATCH, events: COST_EVENTS_X2 },
      { batch: 1, indexBatch: INDEX_BATCH, events: COST_EVENTS_X1 },
    ]);
    auditCostRows(cost, row);

    // The world around countersign, then countersign (phases 2-5, 8).
    const fixtures = await spawnChild('./fixtures-child.ts', {});
    children.push(fixtures);
    const executed = new Timeline();
    fixtures.on('executed', (m) => executed.record(String(m['id']), Number(m['t'])));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, benchPolicy(String(fixtures.ready['executorUrl'])));
    const server = await spawnChild(
      './server-child.js',
      countersignEnv({
        redisUrl: redisServer.url,
        prefix: PREFIX,
        dataDir: join(dir, 'data'),
        policyFile,
        adminToken: ADMIN,
        agentSecret: SECRET,
        slackSigningSecret: SLACK_SECRET,
        slackApiUrl: String(fixtures.ready['slackApiUrl']),
      }),
      startFlags(),
    );
    children.push(server);
    const approved = new Timeline();
    const enqueued = new Timeline();
    const finished = new Timeline();
    server.on('approved', (m) => approved.record(String(m['id']), Number(m['t'])));
    server.on('enqueued', (m) => enqueued.record(String(m['id']), Number(m['t'])));
    server.on('succeeded', (m) => finished.record(String(m['id']), Number(m['t'])));
    server.on('failed', (m) => finished.record(String(m['id']), Number(m['t'])));
    const api = new HttpClient(String(server.ready['url']));
    closers.push(async () => api.close());
    // Until every pending proposal's card has reached the fake Slack, and the audit log is quiet.
    const drainCards = () => waitFollowUps(fixtures, { cards: cardsOwed }, { redis, key: `{${PREFIX}}:audit` }, PHASE_CAP_MS).then(() => undefined);

    // ---- baselines ----
    log('baseline: raw BullMQ');
    const bullConn = createRedisConnection({ url: redisServer.url, role: 'worker' });
    closers.push(() => bullConn.quit());
    const rawQueue = new Queue('raw', { connection: bullConn, prefix: '{benchbase}:bull' });
    closers.push(() => rawQueue.close());
    await rawQueue.waitUntilReady();
    const addRun = await load(64, BULL_JOBS, () => rawQueue.add('job', { proposal_id: `p_${nextSeq()}` }, { removeOnComplete: { count: 10_000 } }).then(() => undefined));
    const addC1 = await load(1, scaled(2_000, 100), () => rawQueue.add('job', { proposal_id: `p_${nextSeq()}` }, { removeOnComplete: { count: 10_000 } }).then(() => undefined));
    const totalRaw = addRun.done + addC1.done;
    let processed = 0;
    let workerDone!: () => void;
    const allProcessed = new Promise<void>((r) => (workerDone = r));
    const pickup = new Map<string, number>();
    const workerConn = createRedisConnection({ url: redisServer.url, role: 'worker' });
    closers.push(() => workerConn.quit());
    const workerStarted = wallNow();
    let workerEnded = 0;
    const worker = new Worker(
      'raw',
      async (job) => {
        pickup.set(String(job.id), wallNow());
        processed += 1;
        if (processed === totalRaw) {
          workerEnded = wallNow();
          workerDone();
        }
      },
      { connection: workerConn, prefix: '{benchbase}:bull', concurrency: 16 },
    );
    closers.push(() => worker.close());
    await Promise.race([allProcessed, new Promise((r) => setTimeout(r, PHASE_CAP_MS))]);
    const workerRate = (processed / ((workerEnded || wallNow()) - workerStarted)) * 1000;
    // add -> worker pickup latency, one job at a time (the analogue of approve -> executed).
    const pickupLat: number[] = [];
    for (let i = 0; i < scaled(500, 50); i++) {
      const t0 = wallNow();
      const job = await rawQueue.add('job', { i }, { removeOnComplete: { count: 1000 } });
      for (let spin = 0; spin < 2000 && !pickup.has(String(job.id)); spin++) await new Promise((r) => setImmediate(r));
      const t1 = pickup.get(String(job.id));
      if (t1 !== undefined) pickupLat.push(t1 - t0);
    }
    const pickupSum = summarize(pickupLat);
    await worker.close();
    row('baseline: BullMQ Queue.add, c=64', `${fmt(addRun.rps, 0)} jobs/s, ${lat2(addRun.lat)}`);
    row('baseline: BullMQ Queue.add, c=1', `${fmt(addC1.rps, 0)} jobs/s, ${lat2(addC1.lat)}`);
    row('baseline: BullMQ worker (concurrency 16, no-op)', `${fmt(workerRate, 0)} jobs/s (${processed} jobs)`);
    row('baseline: BullMQ add -> worker pickup, one at a time', lat2(pickupSum));

    // ---- 1. (from the hot path phase) beside the BullMQ baselines ----
    hotpathRows(hot, row);
    const c64 = hot.series.find((r) => r.kind === 'pending' && r.concurrency === 64) ?? hot.series.find((r) => r.kind === 'pending' && r.concurrency === 16);
    if (c64 !== undefined) {
      const rps = c64.countersign.rps;
      row(`1. pending intake c=${c64.concurrency} vs BullMQ add (c=64)`, `${fmt(rps, 0)} req/s`, `${fmt(addRun.rps, 0)} jobs/s`, ratio(rps, addRun.rps), verdict(rps >= addRun.rps / 2, '>= 0.5x BullMQ add'));
      row(`1. pending c=${c64.concurrency} sustained (until the last card is posted) vs BullMQ add`, `${fmt(c64.countersign.sustained, 0)} proposals/s`, `${fmt(addRun.rps, 0)} jobs/s BullMQ add`, ratio(c64.countersign.sustained, addRun.rps));
    }

    // Warm-up of this countersign child (JIT, connections, scripts) before phase 8 times it.
    await load(4, scaled(500, 50), () => propose(api, paymentBody()).then(() => undefined));
    await drainCards();

    // ---- 8. Redis per denied and per pending proposal ----
    // What one event appended on its own (card_posted) cost more before, CPU (7, one per call).
    const at1 = (v: string) => cost.costs.find((c) => c.batch === 1 && c.variant === v)?.cpuUs ?? NaN;
    const appendDelta = at1('before') - at1('after');
    for (const [kind, body] of [['denied', deleteBody], ['pending', paymentBody]] as const) {
      log(`proposal cost: ${COST_PROPOSALS} ${kind} proposals at c=16, twice (plain, then SLOWLOG)`);
      const c = await proposalCost(redis, {
        kind,
        count: COST_PROPOSALS,
        concurrency: 16,
        auditKey: `{${PREFIX}}:audit`,
        submit: () => propose(api, body()).then((r) => r.id),
        drain: drainCards,
        splitCount: Math.min(COST_PROPOSALS, 500),
        deadlineMs: wallNow() + PHASE_CAP_MS,
      });
      // The replay reads each proposal's events through the search index.
      await waitIndexed(redis, PREFIX, PHASE_CAP_MS);
      const replay = await replayCreates(redis, PREFIX, c.ids.slice(0, COST_REPLAYS), kind);
      proposalCostRows(c, replay, appendDelta, row);
    }

    // ---- 2./3. click -> ack, -> enqueued, approval -> executed ----
    log(`click: ${CLICKS} Slack approvals, one at a time`);
    const ids: string[] = [];
    await pool(CLICKS, 8, async () => void ids.push((await propose(api, paymentBody())).id));
    await drainCards();
    const ack: number[] = [];
    const toEnqueued: number[] = [];
    const approveToExec: number[] = [];
    const slackUrl = new URL(String(server.ready['url']));
    const slackClient = new HttpClient(slackUrl.origin, 4);
    closers.push(async () => slackClient.close());
    let missing = 0;
    const clickDeadline = wallNow() + PHASE_CAP_MS;
    for (const id of ids) {
      if (wallNow() > clickDeadline) break;
      const body = payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve' }));
      const ts = Math.floor(Date.now() / 1000);
      const t0 = wallNow();
      const res = await slackClient.send('POST', '/slack/events', { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(ts), 'x-slack-signature': slackSignature(SLACK_SECRET, ts, body) }, body);
      const t1 = wallNow();
      if (res.status !== 200) throw new Error(`click: ${res.status} ${res.body}`);
      ack.push(t1 - t0);
      const tExec = await executed.wait(id, 10_000);
      const tEnq = await enqueued.wait(id, 1_000);
      const tApproved = approved.get(id);
      if (tExec === null || tEnq === null || tApproved === undefined) {
        missing += 1;
        continue;
      }
      toEnqueued.push(tEnq - t0);
      approveToExec.push(tExec - tApproved);
    }
    const ackS = summarize(ack);
    const enqS = summarize(toEnqueued);
    const a2e = summarize(approveToExec);
    const bare1 = hot.bareC1;
    if (missing > 0) log(`  ${missing} clicks without a recorded execution`);
    row(`2. click: HTTP ack (${ackS.count} clicks)`, lat2(ackS), `bare HMAC server c=1 p99 ${fmt(bare1.p99, 2)} ms`, `${ratio(ackS.p99, bare1.p99)} p99`, verdict(ackS.p99 < 50, 'p99 < 50 ms'));
    row(`2. click: until the execute job is enqueued`, lat2(enqS), `BullMQ add c=1 p99 ${fmt(addC1.lat.p99, 2)} ms`, `${ratio(enqS.p99, addC1.lat.p99)} p99`);
    row(`3. approval counted -> executor receives the request`, lat2(a2e), `BullMQ add->pickup p99 ${fmt(pickupSum.p99, 2)} ms`, `${ratio(a2e.p99, pickupSum.p99)} p99`, verdict(a2e.p99 < 100, 'p99 < 100 ms'));

    // ---- 4. auto-allowed end to end ----
    log(`auto-allowed: ${AUTO} low-risk proposals at c=64, submission -> outcome recorded`);
    let autoMissing = 0;
    const auto = await load(64, AUTO, async () => {
      const { id, status } = await propose(api, tagBody());
      if (status !== 'approved') throw new Error(`auto-allowed proposal is ${status}`);
      if ((await finished.wait(id, 30_000)) === null) autoMissing += 1;
    });
    if (autoMissing > 0) log(`  ${autoMissing} auto-allowed proposals without a recorded outcome`);
    row(`4. auto-allowed end to end, c=64 (${auto.done - autoMissing} proposals)`, `${fmt(auto.rps, 0)} /s, ${lat2(auto.lat)}`, `BullMQ worker ${fmt(workerRate, 0)} jobs/s`, `${ratio(auto.rps, workerRate)} thr`);

    // ---- 5. audit search at AUDIT_EVENTS events ----
    log(`audit: loading ${AUDIT_EVENTS} events (appendEvents batches of 500)`);
    const auditLog = createRedisAuditLog(redis, { prefix: PREFIX });
    const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? NaN);
    const memBefore = await usedMemory();
    const t0 = wallNow();
    const BATCH = 500;
    const batches = Math.ceil(AUDIT_EVENTS / BATCH);
    let nextBatch = 0;
    await pool(batches, 4, async () => {
      const b = nextBatch++;
      const events: AuditEventInput[] = [];
      for (let i = b * BATCH; i < Math.min(AUDIT_EVENTS, (b + 1) * BATCH); i++) events.push(syntheticEvent(i));
      await auditLog.append(events);
    });
    const loadMs = wallNow() - t0;
    // The sealer (in the countersign child) chains what was just loaded; search is timed once it
    // has caught up, not while it competes for the same process.
    const sealed = await waitSealed(redis, PREFIX, PHASE_CAP_MS * 2);
    // And once the indexer (same child) has too: search scans what it has not reached yet.
    const indexed = await waitIndexed(redis, PREFIX, PHASE_CAP_MS * 2);
    const total = await redis.xlen(`{${PREFIX}}:audit`);
    const memAfter = await usedMemory();
    // The stream's own share (MEMORY USAGE samples a few nodes), the rest is mostly the index.
    const streamBytes = Number(await redis.call('MEMORY', 'USAGE', `{${PREFIX}}:audit`));
    const perEvent = (memAfter - memBefore) / AUDIT_EVENTS;
    const streamPerEvent = streamBytes / total;
    row(
      `5. audit load (${AUDIT_EVENTS} events, appendEvents x500)`,
      `${fmt((AUDIT_EVENTS / loadMs) * 1000, 0)} events/s; stream holds ${total}; Redis used_memory +${fmt((memAfter - memBefore) / 1048576, 0)} MB = ${fmt(perEvent, 0)} B/event (stream ~${fmt(streamPerEvent, 0)}, index ~${fmt(perEvent - streamPerEvent, 0)})`,
    );
    row(
      `5. sealer catching up with the load (countersign child, default tuning)`,
      sealed.seq >= sealed.head ? `sealed up to seq ${sealed.head} ${fmt(sealed.ms / 1000, 1)} s after the load ended` : `MISSED: sealed ${sealed.seq} of ${sealed.head} after ${fmt(sealed.ms / 1000, 0)} s (search timed anyway)`,
    );
    row(
      `5. search indexer catching up with the load (countersign child, default tuning)`,
      indexed.caught ? `indexed up to the newest entry ${fmt((sealed.ms + indexed.ms) / 1000, 1)} s after the load ended` : `MISSED: not caught up ${fmt((sealed.ms + indexed.ms) / 1000, 0)} s after the load ended (search timed anyway, scanning what is not indexed)`,
    );
    const auditGet = async (query: string) => {
      const t = wallNow();
      const res = await api.send('GET', `/v1/audit?${query}`, { authorization: `Bearer ${ADMIN}` });
      const ms = wallNow() - t;
      if (res.status !== 200) throw new Error(`GET /v1/audit?${query}: ${res.status} ${res.body.slice(0, 200)}`);
      const body = JSON.parse(res.body) as { events: unknown[]; next: string | null };
      return { ms, found: body.events.length, next: body.next };
    };
    const series = async (name: string, make: (i: number) => string, expect: (i: number) => number) => {
      const times: number[] = [];
      let wrong = 0;
      const deadline = wallNow() + PHASE_CAP_MS / 2;
      for (let i = 0; i < AUDIT_QUERIES && wallNow() < deadline; i++) {
        const r = await auditGet(make(i));
        times.push(r.ms);
        if (r.found !== expect(i)) wrong += 1;
      }
      if (wrong > 0) log(`  ${name}: ${wrong} of ${times.length} queries found fewer events than loaded (the scan gave up and returned a cursor)`);
      return { s: summarize(times), wrong };
    };
    const base = wallNow();
    for (let i = 0; i < 200; i++) await redis.xrevrange(`{${PREFIX}}:audit`, '+', '-', 'COUNT', 50);
    const xrev = (wallNow() - base) / 200;
    const needles = Math.max(1, Math.floor(AUDIT_EVENTS / NEEDLE_EVERY));
    const word = await series('word', (i) => `q=${needleWord(i % needles)}&limit=50`, () => 1);
    const filtered = await series('filtered', (i) => `agent=${rareAgent(i % RARE_AGENTS)}&actor=${encodeURIComponent(rareActor(i % RARE_AGENTS))}&limit=50`, (i) => rareCount(i % RARE_AGENTS, AUDIT_EVENTS));
    const common = await series('common', (i) => `q=refund&agent=agent-${i % 50}&limit=50`, () => 50);
    row(`5. audit word search, 1 match in ${total} (${word.s.count} queries)`, lat2(word.s), `XREVRANGE 50 ${fmt(xrev, 2)} ms`, `${ratio(word.s.p99, xrev)} p99`, verdict(word.s.p99 <= 20 && word.wrong === 0, 'p99 <= 20 ms, complete'));
    row(`5. audit filtered search (agent+actor, rare) (${filtered.s.count} queries)`, lat2(filtered.s), `XREVRANGE 50 ${fmt(xrev, 2)} ms`, `${ratio(filtered.s.p99, xrev)} p99`, verdict(filtered.s.p99 <= 20 && filtered.wrong === 0, 'p99 <= 20 ms, complete'));
    row(`5. audit common word + agent, first 50 (${common.s.count} queries)`, lat2(common.s), `XREVRANGE 50 ${fmt(xrev, 2)} ms`, `${ratio(common.s.p99, xrev)} p99`);

    mcpRows();
    credentialRows();

    const elapsed = (wallNow() - RUN_STARTED) / 1000;
    writeResults({ redisVersion, elapsed, scale: SCALE, rows, loadAtStart: LOAD_AT_START });
    log(`done in ${fmt(elapsed, 0)} s`);
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    for (const c of children) {
      c.proc.disconnect?.();
    }
    await Promise.all(children.map((c) => new Promise<void>((r) => (c.proc.exitCode !== null ? r() : c.proc.once('exit', () => r())))));
    await redis.quit().catch(() => undefined);
    await redisServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
