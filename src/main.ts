// The composition root of the server: reads the environment once, builds one implementation
// of each port (src/wiring/app-deps.ts), the chat platforms (src/wiring/platforms.ts), the
// HTTP server and the queue workers, and starts them. Nothing here decides anything. What a
// committed change triggers is listed in src/wiring/after-commit.ts; the CLI's back ends are in
// src/wiring/cli-commands.ts. src/main.ts and src/wiring/ are the only files of src/ that
// import adapters/.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { startWorkers, type ActiveJob } from '../adapters/bullmq/queues.ts';
import { startExecutionWorkers, type ExecutionQueueTuning } from '../adapters/bullmq/execution-queues.ts';
import { consoleSignInLink } from '../adapters/console/platform.ts';
import { createAgentAuthenticator } from '../adapters/http/agent-auth.ts';
import { mountAuditApi } from '../adapters/http/audit-api.ts';
import { createRequestAuthenticator } from '../adapters/http/authenticate.ts';
import { mountExecutionApi } from '../adapters/http/execution-api.ts';
import { createMetrics } from '../adapters/http/metrics.ts';
import { createHttpServer, type CountersignServer, type RawHandler } from '../adapters/http/server.ts';
import { createRedisChannelBindingStore } from '../adapters/redis/channel-bindings.ts';
import { checkEvictionPolicy } from '../adapters/redis/eviction-policy.ts';
import { createRedisFailureLimiter } from '../adapters/redis/auth-failure-limiter.ts';
import { failFast } from '../adapters/redis/connection.ts';
import { createRedisLiveUpdates } from '../adapters/redis/live-updates.ts';
import { createRedisLimitNoticeStore } from '../adapters/redis/limit-notices.ts';
import { createLimitAlerts } from './app/limit-notices.ts';
import { createRedisSessionStore } from '../adapters/redis/sessions.ts';
import { readWithExecutionToken, returnExecutionToken } from './app/agent-execution.ts';
import { returnCredential } from './app/task-credentials.ts';
import type { CommitSubscriber } from './app/after-commit.ts';
import { startCardRelay } from './app/card-relay.ts';
import type { AppDeps } from './app/deps.ts';
import type { ExecutionTuning } from './app/execution-deps.ts';
import { loadConfig } from './config.ts';
import { ConfigError } from './core/errors.ts';
import { systemClock, type Clock } from './core/clock.ts';
import type { PlatformId } from './core/platform.ts';
import type { ChatChannel } from './core/ports.ts';
import { createLogger } from './logger.ts';
import { buildAppDeps, MCP_PICKUP_WINDOW_MS, openRedis } from './wiring/app-deps.ts';
import { mountMcpGatewayOnDemand } from './wiring/on-demand.ts';
import { loadAuditSigner, startAuditSealing, type AuditTuning } from './wiring/audit-sealer.ts';
import { checkPlatforms, createPlatforms, PLATFORMS } from './wiring/platforms.ts';
import { readPolicy } from './wiring/policy-source.ts';
import { signInLines } from './wiring/sign-in-lines.ts';
import { executionHandlers, notifyHandlers } from './wiring/workers.ts';

export { DEMO_SECRET_ENV, readPolicy } from './wiring/policy-source.ts';

const COUNTERSIGN_VERSION = '0.1.0';

/** What a shutdown left unfinished: requests whose connections were cut, jobs still running. */
export interface Unfinished {
  requests: number;
  jobs: ActiveJob[];
}

export interface Running {
  server: Server;
  url: string;
  deps: AppDeps;
  redis: Redis | Cluster;
  /** SHUTDOWN_TIMEOUT: stop() resolves within it; the CLI exits at it whatever happens. */
  shutdownTimeoutMs: number;
  /**
   * Readiness red, no new requests, requests and jobs in flight may finish, then the rest
   * closes; every step bounded so that it resolves within shutdownTimeoutMs whatever Redis does.
   * Resolves with what it gave up waiting for (nothing: a clean stop).
   */
  stop(): Promise<Unfinished>;
  /** In flight now (the CLI's line when it exits without waiting for stop()). */
  unfinished(): Unfinished;
}

export interface StartOptions {
  clock?: Clock;
  /** Lines for a person at the terminal (sign-in links, the demo secret). */
  say?: (line: string) => void;
  /** Where the JSON log lines go (default stdout); tests read them to check for leaks. */
  logStream?: NodeJS.WritableStream;
  /** Replace a platform's chat channel (tests use a scripted one to exercise the notify queue). */
  chatChannels?: Readonly<Record<PlatformId, ChatChannel>>;
  /** Queue timings, shortened by tests. */
  tuning?: { notifyAttempts?: number; notifyBackoffMs?: number };
  /** The Redis tried before starting a private one, when REDIS_URL is unset (tests point it at a closed port). */
  localRedisUrl?: string;
  /** Execution timings (leases, retries, sweeps), shortened by tests. */
  execution?: Partial<ExecutionTuning & ExecutionQueueTuning>;
  /** Subscribers to every commit, after the standard ones (the benchmark times approvals with one). */
  observers?: readonly CommitSubscriber[];
  /** Audit sealer timings (checkpoint every N entries / T ms, heartbeat, lease) and witness retries, shortened by tests. */
  audit?: AuditTuning;
  /** How often a Redis outage that lasts is reported (default a minute), shortened by tests. */
  outageReportEveryMs?: number;
  /** The shortest time between two updates of one over-the-limit notice (default 5 s), shortened by tests. */
  limitNotices?: { updateEveryMs?: number };
  /** With a policy file, say where it runs and print one-time console links (src/wiring/sign-in-lines.ts): `countersign start` does. */
  signInLinks?: boolean;
  /** Adapter options by platform id (tests shorten Slack's Socket Mode timings: SlackOptions). */
  platformOptions?: Readonly<Record<PlatformId, unknown>>;
}

// Of SHUTDOWN_TIMEOUT, what is kept for closing the queues, the sealer and the connections
// after requests and jobs had their time (a few Redis round trips; nothing when Redis is away).
const closeReserveMs = (timeoutMs: number) => Math.min(2000, Math.floor(timeoutMs / 4));
// And what is left for the exit itself.
const EXIT_MARGIN_MS = 100;

/** `promise`, or nothing once `until` (ms since the epoch) has passed: a close that hangs on Redis is left behind. */
async function within(promise: Promise<unknown>, until: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, Math.max(0, until - Date.now()))))]);
  clearTimeout(timer);
}

/** The one line for a port countersign cannot listen on, instead of a stack trace. */
function listenError(e: unknown, port: number, host: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ConfigError(`port ${port} is in use on ${host}; set PORT to a free port (PORT=${port + 1} npm start), or stop what listens there`);
  if (code === 'EACCES') return new ConfigError(`port ${port} on ${host} needs privileges this process does not have; set PORT to 1024 or above`);
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`HOST ${host} is not an address of this machine; set HOST (default 127.0.0.1)`);
  return e;
}

function listen(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolveListen, reject) => {
    server.once('error', (e) => reject(listenError(e, port, host)));
    server.listen(port, host, () => resolveListen());
  });
}

/** Throws listenError's line when the port is taken (checked by listening on it for a moment). */
async function portIsFree(port: number, host: string): Promise<void> {
  const probe = createNetServer();
  await listen(probe, port, host);
  await new Promise((r) => probe.close(r));
}

export async function start(env: Readonly<Record<string, string | undefined>>, options: StartOptions = {}): Promise<Running> {
  const config = loadConfig(env, PLATFORMS);
  const logger = createLogger(config.logLevel, options.logStream);
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const clock = options.clock ?? systemClock;
  const source = readPolicy(config);
  const { policy } = source;
  // A route to a platform this process cannot serve stops the start before anything runs.
  checkPlatforms(config, policy);
  // So does a port in use: one line, before Redis, workers or a private redis-server start.
  if (config.port !== 0) await portIsFree(config.port, config.host);

  // A wrong AUDIT_SIGNING_KEY stops the start before anything connects.
  const auditSigner = await loadAuditSigner(config, logger);
  const conns = await openRedis(config, logger, {
    workers: true,
    say,
    ...(options.localRedisUrl === undefined ? {} : { localRedisUrl: options.localRedisUrl }),
    ...(options.outageReportEveryMs === undefined ? {} : { outageReportEveryMs: options.outageReportEveryMs }),
  });
  const { redis } = conns;
  // What retries on its own (queues, workers, the sealer, requests answered 503) logs each
  // failure at debug while Redis is away: the outage log says it once.
  const quiet = conns.outage.quiet(logger);
  const app = await buildAppDeps(config, policy, conns, {
    clock,
    logger: quiet,
    metrics: createMetrics,
    ...(options.tuning === undefined ? {} : { tuning: options.tuning }),
    ...(options.execution === undefined ? {} : { execution: options.execution }),
    ...(options.observers === undefined ? {} : { observers: options.observers }),
  });
  const { deps, x } = app;
  const failureLimiter = createRedisFailureLimiter(redis, config.prefix, clock);
  // The console's live updates share the change feed's subscriber connection.
  const live = await createRedisLiveUpdates(redis, conns.subscriber, config.prefix);
  const sessions = createRedisSessionStore(redis, config.prefix);
  let url = '';
  const platforms = await createPlatforms(config, policy, {
    deps,
    cards: app.cards,
    bindings: createRedisChannelBindingStore(redis, config.prefix),
    sessions,
    live,
    failureLimiter,
    logger,
    urls: () => [deps.publicUrl, url],
    ...(options.platformOptions === undefined ? {} : { options: options.platformOptions }),
  });
  const channels = new Map<PlatformId, ChatChannel>([...platforms].map(([id, p]) => [id, p.channel]));
  for (const [id, channel] of Object.entries(options.chatChannels ?? {})) channels.set(id, channel);
  deps.limitAlerts = createLimitAlerts({
    store: createRedisLimitNoticeStore(redis, config.prefix),
    policy: () => deps.policy,
    channels: () => channels,
    clock,
    logger,
    ...(options.limitNotices?.updateEveryMs === undefined ? {} : { updateEveryMs: options.limitNotices.updateEveryMs }),
  });
  const mounts: Record<string, RawHandler> = Object.assign({}, ...[...platforms.values()].map((p) => p.mounts));

  const notify = { ...deps, cards: app.cards, channels };
  const workers = await startWorkers(app.queueConfig, notifyHandlers(deps, notify, app.queues), quiet, app.queues);
  const relay = startCardRelay({ ...notify, jobs: app.queues }, app.cardOutbox, { consumer: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}` });
  const executionWorkers = await startExecutionWorkers(app.queueConfig, app.executionQueueTuning, executionHandlers(x), quiet, app.executionQueues);

  const auth = createAgentAuthenticator({ policy, adminToken: config.adminToken, now: () => clock.now() });
  const authenticate = createRequestAuthenticator(deps, auth, failureLimiter);
  const gateway = {
    app: deps,
    upstreams: app.upstreams,
    results: x.results!,
    ledger: x.ledger,
    holdMs: config.mcp.holdMs,
    leaseMarginMs: x.tuning.leaseMarginMs,
    pickupWindowMs: MCP_PICKUP_WINDOW_MS,
  };
  const server: CountersignServer = createHttpServer({
    deps,
    authenticate,
    registry: app.metrics.registry,
    extend: [mountExecutionApi(x, authenticate), mountAuditApi(auditSigner), (router) => mountMcpGatewayOnDemand(router, { gateway, authenticate, version: COUNTERSIGN_VERSION })],
    takeToken: (p, viewer) => readWithExecutionToken(x, p, viewer),
    returnToken: async (p, token, credential) => {
      await returnExecutionToken(x, p.id, token);
      if (credential !== undefined) await returnCredential(x, p, credential);
    },
    mounts,
    requestScope: failFast,
    // Redis answers, and still keeps every key: a maxmemory-policy changed to evict after start is not ready either.
    ready: async () => {
      const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
      await Promise.race([checkEvictionPolicy(redis, config.redis.allowEviction, quiet), new Promise((_r, reject) => setTimeout(() => reject(new Error('timeout')), 1000))]);
    },
  });
  try {
    await listen(server, config.port, config.host);
  } catch (e) {
    // Taken between the check above and now: what started stops again, so the process exits with the one line.
    const until = Date.now() + 2000;
    await Promise.all([workers.close(until), executionWorkers.close(until), within(relay.stop(), until)]);
    await within(app.close(), until);
    await within(live.close(), until);
    await conns.close(until);
    throw e;
  }
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  // PORT=0 (tests, ephemeral runs) without PUBLIC_URL: the address is known only now (token `iss`, links).
  if (config.port === 0 && (env['PUBLIC_URL'] ?? '').trim() === '') deps.publicUrl = url;
  if (source.builtIn) {
    say(`countersign is running at ${url} with the built-in example policy (no ${config.policyFile ?? 'policy.yaml'} found).`);
    if (source.generatedDemoSecret !== null) say(`demo agent "demo-agent" signs requests with the secret in ${resolve(config.dataDir, 'demo-agent-secret')}`);
    const demoSecret = policy.agentById('demo-agent')?.secret;
    if (demoSecret) say(`demo agent secret: ${demoSecret}`);
    say(`sign in to the console as "demo" (one-time link, valid 15 minutes): ${await consoleSignInLink(sessions, deps.publicUrl, 'demo')}`);
    say('then, in a second terminal: npm run demo');
  } else if (options.signInLinks === true) {
    say(`countersign is running at ${url} with ${policy.file}.`);
    for (const line of await signInLines(config, policy, sessions, platforms.has('console'), deps.publicUrl)) say(line);
  }
  if (config.tokens.signingKey === null) logger.warn({}, 'TOKEN_SIGNING_KEY is not set: using a development key; production must set it');
  // Every replica runs the sealer; the one holding the lease seals.
  const sealing = startAuditSealing(config, redis, auditSigner, { clock, logger: quiet, metrics: app.metrics.audit }, options.audit);

  const timeoutMs = config.shutdownTimeoutMs;
  let stopping: Promise<Unfinished> | null = null;
  const running: Running = {
    server,
    url,
    deps,
    redis,
    shutdownTimeoutMs: timeoutMs,
    unfinished: () => ({ requests: server.inFlight(), jobs: [...workers.active(), ...executionWorkers.active()] }),
    stop() {
      stopping ??= (async () => {
        // Wall-clock time, not `clock`: a test's fake clock does not move the deadline.
        const end = Date.now() + timeoutMs - EXIT_MARGIN_MS;
        const inFlightUntil = end - closeReserveMs(timeoutMs);
        // Requests and jobs at the same time: readiness is red and no job is taken from the first moment.
        // A job still running at the bound keeps its lock until it runs out; an execution it
        // claimed stays tracked, and the sweep settles it (failed / unknown) after its deadline.
        // With Redis away and no job running, closing the workers only waits for Redis: not worth waiting for.
        const jobsUntil = (w: typeof workers) => (conns.outage.down() && w.active().length === 0 ? Date.now() : inFlightUntil);
        // Connections a platform opened itself (Slack's Socket Mode) take no more clicks either.
        const closing = Promise.all([...platforms.values()].map((p) => within(p.stop?.() ?? Promise.resolve(), inFlightUntil)));
        const [requests, jobs, executionJobs] = await Promise.all([
          server.drain(inFlightUntil),
          workers.close(jobsUntil(workers)),
          executionWorkers.close(jobsUntil(executionWorkers)),
          // Cards in hand are posted; an entry not finished is reclaimed by another replica (or this one after a restart).
          within(relay.stop(), inFlightUntil),
        ]);
        await closing;
        // With Redis away, nothing below can be acknowledged: do not wait for it.
        const until = conns.outage.down() ? Date.now() : end;
        // Follow-ups the requests left running (a new proposal's, answered before them).
        await deps.commits.idle(until);
        // After requests and workers, so that what they recorded last is signed before the lease is handed over.
        await within(sealing.stop(), until);
        await within(app.close(), until);
        await within(live.close(), until);
        await conns.close(until);
        return { requests, jobs: [...jobs, ...executionJobs] };
      })();
      return stopping;
    },
  };
  // Once everything is up: an envelope that arrives on Slack's socket finds the workers running.
  // One that cannot start at all (a refused SLACK_APP_TOKEN) stops what started, and the start.
  try {
    for (const p of platforms.values()) await p.start?.();
  } catch (e) {
    await running.stop();
    throw e;
  }
  // The last line of a start (after the sign-in links, which read Redis, and the platforms'
  // sockets): process managers and tests take it for "started", and the CLI handles SIGTERM from
  // the moment start() returns, right after it.
  logger.info({ url, policy: policy.file, prefix: config.prefix, routes: [...policy.channels.keys()], platforms: [...platforms.keys()] }, 'countersign is listening');
  return running;
}
