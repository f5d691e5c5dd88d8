// The composition root: the only file in src/ that imports adapters. It reads the
// environment once, builds one implementation of each port, and starts the server and the
// queue workers. Nothing here decides anything; it only wires.
export { DEMO_SECRET_ENV, readPolicy } from './wiring/policy-source.ts';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { createAgentAuthenticator } from '../adapters/http/agent-auth.ts';
import { createRequestAuthenticator } from '../adapters/http/authenticate.ts';
import { createRedisFailureLimiter } from '../adapters/redis/auth-failure-limiter.ts';
import { createMetrics } from '../adapters/http/metrics.ts';
import { createHttpServer, type RawHandler } from '../adapters/http/server.ts';
import { createConsoleChannel, createRedisHub } from '../adapters/console/console-channel.ts';
import { createConsole } from '../adapters/console/console-app.ts';
import { consoleProposalUrl } from '../adapters/console/platform.ts';
import { createSessionStore } from '../adapters/console/sessions.ts';
import { createSlackAdapter } from '../adapters/slack/slack-adapter.ts';
import { createQueues, startWorkers, type QueueConfig } from '../adapters/bullmq/queues.ts';
import {
  createExecutionQueues,
  startExecutionWorkers,
  DEFAULT_EXECUTION_QUEUE_TUNING,
  type ExecutionHandlers,
  type ExecutionQueues,
  type ExecutionQueueTuning,
} from '../adapters/bullmq/execution-queues.ts';
import { createHttpCallbackSender, createWebhookExecutor } from '../adapters/executors/webhook.ts';
import { mountExecutionApi } from '../adapters/http/execution-api.ts';
import { createRedisTokenLedger } from '../adapters/redis/token-ledger.ts';
import { createJwtSigner, generateSigningKey } from '../adapters/tokens/jwt-signer.ts';
import { createRedisAuditLog } from '../adapters/redis/audit-log.ts';
import { createRedisCardRefStore } from '../adapters/redis/card-ref-store.ts';
import { createRedisChangeFeed } from '../adapters/redis/change-feed.ts';
import { createRedisConnection } from '../adapters/redis/connection.ts';
import { connectionOptions, discoverRedis } from '../adapters/redis/discover.ts';
import type { PrivateRedis } from '../adapters/redis/private-server.ts';
import { createRedisProposalStore } from '../adapters/redis/proposal-store.ts';
import type { AppDeps } from './app/deps.ts';
import { deliverNotification, recordCardFailure, type NotifyDeps } from './app/deliver-notification.ts';
import { expireOverdue, expireProposal } from './app/proposals.ts';
import { repairMissingCards } from './app/repair-cards.ts';
import { verifyAudit } from './app/search-audit.ts';
import { callbackGaveUp, CallbackImpossibleError, deliverCallback } from './app/agent-callbacks.ts';
import { createCommitFlow } from './app/after-commit.ts';
import { afterCommitSubscribers } from './wiring/after-commit.ts';
import { returnExecutionToken, takeExecutionToken } from './app/agent-execution.ts';
import {
  checkTokenExpiry,
  executionGaveUp,
  reissueMissingTokens,
  RetryBeforeSendError,
  runExecution,
  sweepExecutions,
} from './app/execute-approved.ts';
import { DEFAULT_EXECUTION_TUNING, type ExecutionDeps, type ExecutionTuning } from './app/execution-deps.ts';
import { revokeAgent as revokeAgentUseCase, type RevocationResult } from './app/revoke-agent.ts';
import { loadConfig, type Config } from './config.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { ConfigError, PolicyError, UnavailableError } from './core/errors.ts';
import type { Policy } from './core/policy/model.ts';
import { readPolicy } from './wiring/policy-source.ts';
import type { AuditLog, CardRefStore, ChatChannel, Logger } from './core/ports.ts';
import type { PlatformId } from './core/platform.ts';
import { createLogger } from './logger.ts';

/** What chat request handlers need once the store is up. */
interface ChatServices {
  deps: AppDeps;
  cards: CardRefStore;
  /** Caps audited auth failures per address (shared with the agent API through Redis). */
  failureLimiter: { allow(address: string): Promise<boolean> };
  /** For adapters that keep their own state (Teams channel bindings), under the key prefix. */
  redis: Redis | Cluster;
  prefix: string;
}

interface ChatSetup {
  channels: Map<PlatformId, ChatChannel>;
  /** HTTP handlers by path prefix (Slack's `/slack/`). */
  mounts: Record<string, RawHandler>;
  connect(services: ChatServices): void;
}

/** Chat channels this process can serve; a policy that routes elsewhere is refused at start. */
async function chatChannels(config: Config, policy: Policy, logger: Logger): Promise<ChatSetup> {
  const channels = new Map<PlatformId, ChatChannel>([['console', createConsoleChannel()]]);
  const mounts: Record<string, RawHandler> = {};
  const connectors: ((services: ChatServices) => void)[] = [];
  const needed = new Set<PlatformId>();
  for (const channel of policy.channels.values()) for (const platform of channel.targets.keys()) if (platform !== 'console') needed.add(platform);
  if (needed.has('slack') && config.slack === null) {
    throw new PolicyError(policy.file, undefined, 'a route posts to Slack, but SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set');
  }
  // Configured Slack is served even when no route posts there: the slash command still works.
  if (config.slack !== null) {
    const slack = createSlackAdapter({ ...config.slack, logger });
    channels.set('slack', slack.channel);
    mounts['/slack/'] = slack.handle;
    connectors.push(slack.connect);
  }
  // Teams is on when a route posts there or an app id is configured. Without an app id the
  // Bot Framework tokens are not checked: fine for local tests, never for production.
  if (needed.has('teams') || config.teams.appId !== null) {
    if (config.production && config.teams.appId === null) {
      throw new ConfigError('NODE_ENV=production refuses unsafe defaults: MICROSOFT_APP_ID is required when a route posts to Teams (without it requests are not authenticated)');
    }
    // Loaded only when Teams is on: botbuilder and its auth stack are the largest code in the heap.
    const { createTeamsAdapter } = await import('../adapters/teams/teams-adapter.ts');
    const { createTeamsBindingStore } = await import('../adapters/teams/bindings.ts');
    const teams = createTeamsAdapter({ ...config.teams, logger });
    channels.set('teams', teams.channel);
    mounts['/api/messages'] = teams.handle;
    connectors.push((s) =>
      teams.connect({ deps: s.deps, failureLimiter: s.failureLimiter, bindings: createTeamsBindingStore(s.redis, s.prefix, () => s.deps.policy) }),
    );
  }
  for (const platform of needed) {
    if (!channels.has(platform)) throw new PolicyError(policy.file, undefined, `a route posts to ${platform}, which this build of countersign does not support yet`);
  }
  return { channels, mounts, connect: (services) => connectors.forEach((c) => c(services)) };
}

export interface Running {
  server: Server;
  url: string;
  deps: AppDeps;
  redis: Redis | Cluster;
  stop(): Promise<void>;
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
}

interface ExecutionSetup {
  x: ExecutionDeps;
  queues: ExecutionQueues;
  queueTuning: ExecutionQueueTuning;
}

/** Execution around the app's deps: token signer and ledger, execute / callback queues, executors. */
async function buildExecution(config: Config, deps: AppDeps, redis: Redis | Cluster, queueConfig: QueueConfig, tuning: StartOptions['execution'] = {}): Promise<ExecutionSetup> {
  const ledger = createRedisTokenLedger(redis, { prefix: config.prefix });
  // Without TOKEN_SIGNING_KEY (development only: config refuses it in production) every
  // replica shares one generated key kept in Redis.
  const signer = await createJwtSigner(config.tokens.signingKey ?? (await ledger.sharedDevKey(generateSigningKey)), () => deps.publicUrl);
  const queueTuning = { ...DEFAULT_EXECUTION_QUEUE_TUNING, ...tuning };
  const queues = createExecutionQueues(queueConfig, queueTuning, () => deps.clock.now());
  const x: ExecutionDeps = {
    app: deps,
    signer,
    ledger,
    queue: queues,
    executor: createWebhookExecutor(),
    callbacks: createHttpCallbackSender(),
    tokenTtlMs: config.tokens.ttlMs,
    tuning: { ...DEFAULT_EXECUTION_TUNING, ...tuning },
  };
  return { x, queues, queueTuning };
}

function executionHandlers(x: ExecutionDeps): ExecutionHandlers {
  return {
    execute: (id) => runExecution(x, id),
    isRetryable: (e) => e instanceof RetryBeforeSendError,
    executeGaveUp: (id, error) => executionGaveUp(x, id, error),
    tokenExpiry: (id) => checkTokenExpiry(x, id),
    sweep: async () => void (await sweepExecutions(x)),
    reconcile: async () => void (await reissueMissingTokens(x)),
    callback: (id, status) => deliverCallback(x, id, status),
    isCallbackRetryable: (e) => !(e instanceof CallbackImpossibleError),
    callbackGaveUp: (id, status, attempts, e) => callbackGaveUp(x, id, status, attempts, e),
  };
}

export async function start(env: Readonly<Record<string, string | undefined>>, options: StartOptions = {}): Promise<Running> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, options.logStream);
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const clock = options.clock ?? systemClock;
  const source = readPolicy(config);
  const { policy } = source;
  const chat = await chatChannels(config, policy, logger);
  const { channels } = chat;
  for (const [platform, channel] of Object.entries(options.chatChannels ?? {})) channels.set(platform as PlatformId, channel);

  const { url: redisUrl, privateRedis } = await discoverRedis(config.redis, config.dataDir, say, options.localRedisUrl);
  const conn = connectionOptions(config.redis, redisUrl);
  const redis = createRedisConnection({ ...conn, role: 'command' });
  const subscriber = createRedisConnection({ ...conn, role: 'worker' });
  const queueConnection = createRedisConnection({ ...conn, role: 'queue' });
  const workerConnection = createRedisConnection({ ...conn, role: 'worker' });
  for (const c of [redis, subscriber, queueConnection, workerConnection]) c.on('error', (e: Error) => logger.warn({ error: e.message }, 'redis connection error'));

  const storeOptions = { prefix: config.prefix };
  const store = createRedisProposalStore(redis, storeOptions);
  const audit = createRedisAuditLog(redis, storeOptions);
  const cards = createRedisCardRefStore(redis, storeOptions);
  const changes = await createRedisChangeFeed(redis, subscriber, config.prefix);
  // The console's live updates share the change feed's subscriber connection.
  const consoleHub = await createRedisHub(redis, subscriber, config.prefix);
  if (options.chatChannels?.console === undefined) channels.set('console', createConsoleChannel(consoleHub));
  const queueConfig = { prefix: config.prefix, queueConnection, workerConnection, ...options.tuning };
  const queues = createQueues(queueConfig, () => clock.now());
  // Lazy: the execution queues are built below, and counts are read only at scrape time.
  const metrics = createMetrics({ store, queueCounts: async () => ({ ...(await queues.counts()), ...(await execution.queues.counts()) }) });

  const commits = createCommitFlow(logger);
  const deps: AppDeps = {
    clock,
    policy,
    store,
    audit,
    jobs: queues,
    changes,
    logger,
    metrics,
    publicUrl: config.publicUrl,
    proposalUrl: (id) => consoleProposalUrl(deps.publicUrl, id),
    commits,
  };
  const execution = await buildExecution(config, deps, redis, queueConfig, options.execution);
  commits.subscribe(afterCommitSubscribers(deps, execution.x));
  const notifyDeps: NotifyDeps = { ...deps, cards, channels };
  chat.connect({ deps, cards, failureLimiter: createRedisFailureLimiter(redis, config.prefix), redis, prefix: config.prefix });
  const workers = await startWorkers(
    queueConfig,
    {
      notify: (job) => deliverNotification(notifyDeps, job),
      notifyGaveUp: (job, error) => recordCardFailure(notifyDeps, job, error),
      expire: async (id) => void (await expireProposal(deps, id)),
      sweep: async () => {
        await expireOverdue(deps);
        await repairMissingCards({ ...notifyDeps, jobs: queues });
      },
    },
    logger,
    queues,
  );
  const executionWorkers = await startExecutionWorkers(queueConfig, execution.queueTuning, executionHandlers(execution.x), logger, execution.queues);

  const auth = createAgentAuthenticator({
    policy,
    adminToken: config.adminToken,
    now: () => clock.now(),
  });
  const authenticate = createRequestAuthenticator(deps, auth, createRedisFailureLimiter(redis, config.prefix));
  const consoleApp = createConsole({
    deps,
    sessions: createSessionStore(redis, config.prefix),
    hub: consoleHub,
    urls: () => [deps.publicUrl, url],
    secureCookies: config.publicUrl.startsWith('https:'),
    failureLimiter: createRedisFailureLimiter(redis, config.prefix),
  });
  const server = createHttpServer({
    deps,
    authenticate,
    registry: metrics.registry,
    extend: [mountExecutionApi(execution.x, authenticate)],
    takeToken: (p, viewer) => takeExecutionToken(execution.x, p, viewer),
    returnToken: (p, token) => returnExecutionToken(execution.x, p.id, token),
    mounts: { ...chat.mounts, '/console': consoleApp.handle },
    ready: async () => {
      await Promise.race([redis.ping(), new Promise((_r, reject) => setTimeout(() => reject(new Error('timeout')), 1000))]);
    },
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolveListen());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  // PORT=0 (tests, ephemeral runs) without PUBLIC_URL: the address is known only now (token `iss`, links).
  if (config.port === 0 && (env['PUBLIC_URL'] ?? '').trim() === '') deps.publicUrl = url;
  logger.info({ url, policy: policy.file, prefix: config.prefix, routes: [...policy.channels.keys()] }, 'countersign is listening');
  if (source.builtIn) {
    say(`countersign is running at ${url} with the built-in example policy (no ${config.policyFile ?? 'policy.yaml'} found).`);
    if (source.generatedDemoSecret !== null) say(`demo agent "demo-agent" signs requests with the secret in ${resolve(config.dataDir, 'demo-agent-secret')}`);
    const demoSecret = policy.agentById('demo-agent')?.secret;
    if (demoSecret) say(`demo agent secret: ${demoSecret}`);
    say(`sign in to the console as "demo" (one-time link, valid 15 minutes): ${await consoleApp.signInLink('demo', deps.publicUrl)}`);
    say('then, in a second terminal: npm run demo');
  }
  if (config.tokens.signingKey === null) logger.warn({}, 'TOKEN_SIGNING_KEY is not set: using a development key; production must set it');

  let stopping: Promise<void> | null = null;
  return {
    server,
    url,
    deps,
    redis,
    stop() {
      stopping ??= (async () => {
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        await workers.close();
        await executionWorkers.close();
        await queues.close();
        await execution.queues.close();
        await consoleHub.close();
        await changes.close();
        for (const c of [subscriber, queueConnection, workerConnection, redis]) await c.quit().catch(() => undefined);
        if (privateRedis !== null) await privateRedis.stop();
      })();
      return stopping;
    },
  };
}

/** A command connection to the configured Redis for a CLI command, and how to let go of it. */
async function openForCommand(config: Config): Promise<{ redis: Redis | Cluster; privateRedis: PrivateRedis | null; close(): Promise<void> }> {
  const { url, privateRedis } = await discoverRedis(config.redis, config.dataDir, () => undefined);
  const redis = createRedisConnection({ ...connectionOptions(config.redis, url), role: 'command' });
  return {
    redis,
    privateRedis,
    async close() {
      await redis.quit().catch(() => undefined);
      await privateRedis?.stop();
    },
  };
}

/** The configured Redis's audit log, for CLI commands that read it (`audit search`, `policy replay`). */
export async function openAuditLog(env: Readonly<Record<string, string | undefined>>): Promise<{ audit: AuditLog; close(): Promise<void> }> {
  const config = loadConfig(env);
  const opened = await openForCommand(config);
  return { audit: createRedisAuditLog(opened.redis, { prefix: config.prefix }), close: opened.close };
}

/** `countersign console link PERSON`: a one-time console sign-in link, for a running countersign. */
export async function consoleSignInLink(env: Readonly<Record<string, string | undefined>>, person: string): Promise<string> {
  const config = loadConfig(env);
  const { policy } = readPolicy(config);
  if (!policy.people.has(person)) throw new PolicyError(policy.file, undefined, `no person "${person}" under people`);
  const opened = await openForCommand(config);
  try {
    // A private Redis started just for this command would take the token with it when it stops.
    if (opened.privateRedis !== null) throw new UnavailableError('countersign is not running (no Redis with its data answers): start it first with `countersign start`');
    const token = await createSessionStore(opened.redis, config.prefix).issueOneTime(person);
    return `${config.publicUrl}/console/login/once?token=${token}`;
  } finally {
    await opened.close();
  }
}

/** `countersign audit verify`: recomputes the chain against the configured Redis. */
export async function auditVerify(env: Readonly<Record<string, string | undefined>>, say: (line: string) => void) {
  const config = loadConfig(env);
  const opened = await openForCommand(config);
  try {
    return await verifyAudit(createRedisAuditLog(opened.redis, { prefix: config.prefix }), (n) => say(`verified ${n} entries…`));
  } finally {
    await opened.close();
  }
}

/**
 * `countersign revoke --agent ID`, the kill switch from a terminal: revokes the agent's
 * outstanding tokens, removes its queued executions and cancels its pending proposals.
 * The running servers' workers post the thread replies.
 */
export async function revokeAgent(env: Readonly<Record<string, string | undefined>>, agentId: string): Promise<RevocationResult> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, process.stderr);
  const { policy } = readPolicy(config);
  const { url, privateRedis } = await discoverRedis(config.redis, config.dataDir, () => undefined);
  const conn = connectionOptions(config.redis, url);
  const redis = createRedisConnection({ ...conn, role: 'command' });
  const subscriber = createRedisConnection({ ...conn, role: 'worker' });
  const queueConnection = createRedisConnection({ ...conn, role: 'queue' });
  const storeOptions = { prefix: config.prefix };
  const store = createRedisProposalStore(redis, storeOptions);
  // No workers here: the queue connection serves both roles.
  const queueConfig = { prefix: config.prefix, queueConnection, workerConnection: queueConnection };
  const queues = createQueues(queueConfig);
  const changes = await createRedisChangeFeed(redis, subscriber, config.prefix);
  const commits = createCommitFlow(logger);
  const deps: AppDeps = {
    clock: systemClock,
    policy,
    store,
    audit: createRedisAuditLog(redis, storeOptions),
    jobs: queues,
    changes,
    logger,
    metrics: { proposalSubmitted: () => undefined, decisionRecorded: () => undefined },
    publicUrl: config.publicUrl,
    proposalUrl: (id) => consoleProposalUrl(config.publicUrl, id),
    commits,
  };
  const execution = await buildExecution(config, deps, redis, queueConfig);
  commits.subscribe(afterCommitSubscribers(deps, execution.x));
  try {
    return await revokeAgentUseCase(execution.x, agentId, 'admin:cli');
  } finally {
    await execution.queues.close();
    await queues.close();
    await changes.close();
    for (const c of [subscriber, queueConnection, redis]) await c.quit().catch(() => undefined);
    await privateRedis?.stop();
  }
}
