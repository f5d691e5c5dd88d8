import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { redisKeys } from '../adapters/redis/keys.ts';
import { spawnChild, startFlags, type Child } from './children.ts';
import { waitFollowUps, type FollowUpCounts } from './follow-ups.ts';
import { HttpClient, pool, redisCpuMs, summarize, wallNow, type Summary } from './lib.ts';
import { sealingLag, waitIndexed, waitSealed, type SealingLag } from './sealing-lag.ts';
import { benchPolicy, countersignEnv, deleteBody, paymentBody, propose, tagBody } from './workload.ts';

// 1./6./9. The hot path (issue 16): the round trip of an allowed, a denied and a pending
// proposal at c=1 and c=16, each beside a bare Node HTTP server doing what any agent request
// needs first (bare-child.js: body, HMAC check as countersign's agent auth does it, JSON.parse,
// 201), in the same run: ROUNDS rounds of a bare chunk and a countersign chunk, which goes first
// alternating, after a warm-up. After each countersign chunk the bench waits for the chunk's
// follow-ups where they land (cards at the fake Slack, requests at the executor, the audit log
// quiet: follow-ups.ts) and for the audit sealer and search indexer to catch up, so a bare chunk
// never shares the machine with countersign's leftovers, and CPU read around chunk + follow-ups
// is what each proposal costs in all. Then pending
// proposals at c=64 until `pendingTarget` are pending, the RSS of both servers there, and the
// audit sealing lag over everything this phase appended.
// countersign runs in a child of its own (prefix benchhot, no timing observer: nothing but the
// request in what the client times), with fixtures of its own; both are stopped after.

const HOT_PREFIX = 'benchhot';

export type Kind = 'allowed' | 'denied' | 'pending';
type Side = 'bare' | 'countersign';

/** What each kind submits and the status its 201 must carry (the bench policy's rules, workload.ts). */
const KINDS: Record<Kind, { body: () => string; status: string }> = {
  allowed: { body: tagBody, status: 'approved' },
  denied: { body: deleteBody, status: 'rejected' },
  pending: { body: paymentBody, status: 'pending' },
};

export interface HotpathPlan {
  /** Requests per side at c=1 and at c=16, for each kind. */
  c1: number;
  c16: number;
  /** Rounds of (bare chunk, countersign chunk) per kind and concurrency. */
  rounds: number;
  /** Unmeasured requests per side and kind before anything is measured. */
  warmup: number;
  /** Pending proposals to reach, at c=64, before RSS is read. */
  pendingTarget: number;
}

export interface SideFigures {
  lat: Summary;
  done: number;
  errors: number;
  /** Answers (201s) per second over this side's chunks. */
  rps: number;
  /** Proposals per second until the last follow-up of each chunk landed (the bare side: rps). */
  sustained: number;
  /** CPU of the measured process (countersign child or bare server) per request, µs, follow-ups included. */
  nodeUs: number;
  /** redis-server CPU per request, µs, follow-ups included. */
  redisUs: number;
}

export interface SeriesResult {
  kind: Kind;
  concurrency: number;
  /** Rounds run (fewer than planned when the cap was reached). */
  rounds: number;
  bare: SideFigures;
  countersign: SideFigures;
}

export interface HotpathResult {
  series: SeriesResult[];
  /** The bare server over every chunk at c=1 (all kinds): a baseline for figures measured elsewhere. */
  bareC1: Summary;
  rss: { pending: number; rss: number; heapUsed: number; heapAfterGc: number; idle: number; bare: number };
  sealing: SealingLag;
}

interface Acc {
  lat: number[];
  done: number;
  errors: number;
  firstError: unknown;
  ms: number;
  msToLast: number;
  nodeMs: number;
  redisMs: number;
}

const newAcc = (): Acc => ({ lat: [], done: 0, errors: 0, firstError: null, ms: 0, msToLast: 0, nodeMs: 0, redisMs: 0 });

const stopChild = (c: Child) =>
  new Promise<void>((resolve) => {
    if (c.proc.exitCode !== null) return resolve();
    c.proc.once('exit', () => resolve());
    c.proc.disconnect?.();
  });

const cpuMs = async (c: Child) => Number((await c.ask('cpu'))['ms']);
// A countersign chunk's follow-ups must land within this; past it the bench stops (FollowUpsMissingError).
const FOLLOW_UP_TIMEOUT_MS = 120_000;

/** `capMs` bounds each series (kind and concurrency): no round starts after it; the run says how many ran. */
export async function hotpathPhase(o: { redisUrl: string; redis: Redis; dir: string; plan: HotpathPlan; capMs: number; log: (line: string) => void }): Promise<HotpathResult> {
  const dir = join(o.dir, 'hotpath');
  mkdirSync(dir, { recursive: true });
  const { redis, plan, log } = o;
  const keys = redisKeys(HOT_PREFIX);
  const children: Child[] = [];
  const clients: HttpClient[] = [];
  try {
    const secret = randomBytes(24).toString('hex');
    const fixtures = await spawnChild('./fixtures-child.ts', {});
    children.push(fixtures);
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, benchPolicy(String(fixtures.ready['executorUrl'])));
    const server = await spawnChild(
      './server-child.js',
      {
        ...countersignEnv({
          redisUrl: o.redisUrl,
          prefix: HOT_PREFIX,
          dataDir: join(dir, 'data'),
          policyFile,
          adminToken: randomBytes(24).toString('hex'),
          agentSecret: secret,
          slackSigningSecret: randomBytes(16).toString('hex'),
          slackApiUrl: String(fixtures.ready['slackApiUrl']),
        }),
        BENCH_TIMING: '0',
      },
      [...startFlags(), '--expose-gc'],
    );
    children.push(server);
    const bare = await spawnChild('./bare-child.js', { BARE_AGENT_ID: 'bench-agent', BARE_AGENT_SECRET: secret });
    children.push(bare);
    const sides: Record<Side, { client: HttpClient; child: Child }> = {
      bare: { client: new HttpClient(String(bare.ready['url'])), child: bare },
      countersign: { client: new HttpClient(String(server.ready['url'])), child: server },
    };
    clients.push(sides.bare.client, sides.countersign.client);
    const idle = Number((await server.ask('rss'))['rss']);

    // Follow-ups owed by countersign so far (totals, as the fixtures count them).
    const owed: FollowUpCounts = { cards: 0, replies: 0, executed: 0 };
    const audit = { redis, key: keys.audit };

    /** One chunk of `n` requests of `kind` at `c` on one side; added to `acc` unless warming up. */
    const chunk = async (side: Side, kind: Kind, c: number, n: number, acc: Acc | null) => {
      const { client, child } = sides[side];
      const node0 = await cpuMs(child);
      const redis0 = await redisCpuMs(redis);
      const lat: number[] = [];
      const t0 = wallNow();
      const r = await pool(n, c, async () => {
        const t = wallNow();
        const res = await propose(client, secret, KINDS[kind].body());
        const ms = wallNow() - t;
        if (side === 'countersign') {
          if (res.status === 'pending') owed.cards += 1;
          if (res.status === 'approved') owed.executed += 1;
          if (res.status !== KINDS[kind].status) throw new Error(`a ${kind} proposal answered status ${res.status}`);
        }
        lat.push(ms);
      });
      const t1 = wallNow();
      // Denied proposals owe nothing but their audit entries; the others a card or an execution.
      // Then the sealer and the search indexer (in the countersign child) catch up with the chunk's
      // entries: their work is per proposal too, and must not run into the next bare chunk.
      let tLast = t1;
      if (side === 'countersign') {
        tLast = await waitFollowUps(fixtures, { cards: owed.cards, executed: owed.executed }, audit, FOLLOW_UP_TIMEOUT_MS);
        const sealed = await waitSealed(redis, HOT_PREFIX, FOLLOW_UP_TIMEOUT_MS);
        const indexed = await waitIndexed(redis, HOT_PREFIX, FOLLOW_UP_TIMEOUT_MS);
        if (sealed.seq < sealed.head || !indexed.caught) throw new Error(`hot path: the sealer (${sealed.seq} of ${sealed.head}) or the indexer did not catch up within ${FOLLOW_UP_TIMEOUT_MS} ms`);
      }
      const node1 = await cpuMs(child);
      const redis1 = await redisCpuMs(redis);
      if (acc === null) {
        if (r.errors > 0) throw new Error(`hot path warm-up, ${side} ${kind} c=${c}: ${r.errors} errors, first: ${String((r.firstError as Error)?.message ?? r.firstError)}`);
        return;
      }
      acc.lat.push(...lat);
      acc.done += r.done;
      acc.errors += r.errors;
      acc.firstError ??= r.firstError;
      acc.ms += t1 - t0;
      acc.msToLast += Math.max(t1, tLast) - t0;
      acc.nodeMs += node1 - node0;
      acc.redisMs += redis1 - redis0;
    };

    const figures = (a: Acc, what: string): SideFigures => {
      if (a.errors > 0) log(`  ${what}: ${a.errors} errors, first: ${String((a.firstError as Error)?.message ?? a.firstError)}`);
      const n = Math.max(1, a.done);
      return {
        lat: summarize(a.lat),
        done: a.done,
        errors: a.errors,
        rps: (a.done / a.ms) * 1000,
        sustained: (a.done / a.msToLast) * 1000,
        nodeUs: (a.nodeMs / n) * 1000,
        redisUs: (a.redisMs / n) * 1000,
      };
    };

    const bareC1: number[] = [];
    /**
     * `total` requests per side in `rounds` rounds after `warm` unmeasured ones (the concurrency's
     * sockets opened, the JIT at this pace); whole rounds only, until `capMs` has passed.
     */
    const series = async (kind: Kind, c: number, total: number, rounds: number, warm = Math.max(32, c * 8)): Promise<SeriesResult> => {
      await chunk('bare', kind, c, warm, null);
      await chunk('countersign', kind, c, warm, null);
      const accs: Record<Side, Acc> = { bare: newAcc(), countersign: newAcc() };
      const per = Math.max(c, Math.round(total / rounds));
      const deadline = wallNow() + o.capMs;
      let round = 0;
      for (; round < rounds; round++) {
        if (wallNow() > deadline) {
          log(`  hot path ${kind} c=${c}: ${round} of ${rounds} rounds within ${Math.round(o.capMs / 1000)} s`);
          break;
        }
        const order: Side[] = round % 2 === 0 ? ['bare', 'countersign'] : ['countersign', 'bare'];
        for (const side of order) await chunk(side, kind, c, per, accs[side]);
      }
      if (c === 1) bareC1.push(...accs.bare.lat);
      return { kind, concurrency: c, rounds: round, bare: figures(accs.bare, `bare ${kind} c=${c}`), countersign: figures(accs.countersign, `countersign ${kind} c=${c}`) };
    };

    // Warm-up: connections, the JIT, scripts loaded, on both servers.
    for (const kind of ['allowed', 'denied', 'pending'] as const) {
      await chunk('bare', kind, 4, plan.warmup, null);
      await chunk('countersign', kind, 4, plan.warmup, null);
    }
    const out: SeriesResult[] = [];
    for (const kind of ['allowed', 'denied', 'pending'] as const) {
      for (const [c, n] of [[1, plan.c1], [16, plan.c16]] as const) {
        log(`hot path: ${kind} proposals, c=${c}, ${n} a side in ${plan.rounds} alternating rounds`);
        out.push(await series(kind, c, n, plan.rounds));
      }
    }

    // Filled up to the target at c=64 (measured too, two rounds, after one request per socket),
    // then RSS on both sides.
    const left = plan.pendingTarget - (await redis.zcard(keys.pending)) - 64;
    if (left >= 128) {
      log(`hot path: ${left + 64} pending proposals at c=64, to ${plan.pendingTarget} pending`);
      out.push(await series('pending', 64, left, 2, 64));
    }
    const pending = await redis.zcard(keys.pending);
    const m = await server.ask('rss');
    const bareRss = Number((await bare.ask('rss'))['rss']);
    const rss = { pending, rss: Number(m['rss']), heapUsed: Number(m['heapUsed']), heapAfterGc: Number(m['heapAfterGc']), idle, bare: bareRss };

    // The sealer runs in this countersign child: measured before it stops.
    const sealing = await sealingLag(redis, HOT_PREFIX, 10_000);
    return { series: out, bareC1: summarize(bareC1), rss, sealing };
  } finally {
    for (const c of clients) c.close();
    for (const c of children.reverse()) await stopChild(c);
  }
}
