// One place that builds what the use cases need (AppDeps, the execution's deps, the
// after-commit flow) on Redis and BullMQ, for the server (src/main.ts) and for the CLI
// commands that change state (src/wiring/cli-commands.ts).
import type { Cluster, Redis } from 'ioredis';
import { createRedisCardOutbox, type RedisCardOutbox } from '../../adapters/redis/card-outbox.ts';
import { createQueues, type QueueConfig, type Queues } from '../../adapters/bullmq/queues.ts';
import { createExecutionQueues, DEFAULT_EXECUTION_QUEUE_TUNING, type ExecutionQueues, type ExecutionQueueTuning } from '../../adapters/bullmq/execution-queues.ts';
import { consoleProposalUrl } from '../../adapters/console/platform.ts';
import { createHttpCallbackSender } from '../../adapters/executors/webhook.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisAwayStore } from '../../adapters/redis/away-store.ts';
import { createRedisFailureLimiter } from '../../adapters/redis/auth-failure-limiter.ts';
import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { createRedisChangeFeed, type RedisChangeFeed } from '../../adapters/redis/change-feed.ts';
import { connectionOptions, discoverRedis } from '../../adapters/redis/discover.ts';
import { closeConnection, createRedisConnection } from '../../adapters/redis/connection.ts';
import { checkEvictionPolicy } from '../../adapters/redis/eviction-policy.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisOutageLog, redisTargetLabel, type RedisOutageLog } from '../../adapters/redis/outage-log.ts';
import type { PrivateRedis } from '../../adapters/redis/private-server.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { createRedisTokenLedger } from '../../adapters/redis/token-ledger.ts';
import { createRedisToolResults } from '../../adapters/redis/tool-results.ts';
import { createRedisCredentialLedger } from '../../adapters/redis/credential-ledger.ts';
import { createSecretSealer } from '../../adapters/tokens/secret-sealer.ts';
import { createMcpExecutor } from '../../adapters/mcp/mcp-executor.ts';
import type { ToolUpstreams } from '../core/mcp-ports.ts';
import { createJwtSigner, generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { createCommitFlow, type CommitSubscriber } from '../app/after-commit.ts';
import type { AppDeps } from '../app/deps.ts';
import { DEFAULT_EXECUTION_TUNING, type ExecutionDeps, type ExecutionTuning } from '../app/execution-deps.ts';
import type { Config } from '../config.ts';
import type { Clock } from '../core/clock.ts';
import type { CompiledPolicy } from '../core/policy/evaluate.ts';
import type { CardRefStore, Logger, Metrics, ProposalStore } from '../core/ports.ts';
import { afterCommitSubscribers } from './after-commit.ts';
import { credentialIssuersFor, toolUpstreamsOnDemand } from './on-demand.ts';
import { EXECUTORS } from './platforms.ts';

export interface RedisConnections {
  redis: Redis | Cluster;
  /** Pub/sub: the change feed and live updates share it. */
  subscriber: Redis | Cluster;
  /** Queues: fails fast when Redis is gone. */
  queueConnection: Redis | Cluster;
  /** Workers (blocking commands); the queue connection when this process runs none. */
  workerConnection: Redis | Cluster;
  privateRedis: PrivateRedis | null;
  /** The one reporter of outages (all connections); its quiet() loggers put per-attempt errors at debug. */
  outage: RedisOutageLog;
  /** QUIT each connection, or drop it when Redis does not answer by `until` (ms since the epoch; default: no bound). */
  close(until?: number): Promise<void>;
}

/** REDIS_URL (or cluster / sentinel), else a local Redis, else a private redis-server; one connection per role. */
export async function openRedis(
  config: Config,
  logger: Logger,
  options: { workers: boolean; say?: (line: string) => void; localRedisUrl?: string; outageReportEveryMs?: number },
): Promise<RedisConnections> {
  const { url, privateRedis } = await discoverRedis(config.redis, config.dataDir, options.say ?? (() => undefined), options.localRedisUrl, config.searchPath);
  const conn = connectionOptions(config.redis, url);
  const redis = createRedisConnection({ ...conn, role: 'command' });
  const subscriber = createRedisConnection({ ...conn, role: 'worker' });
  const queueConnection = createRedisConnection({ ...conn, role: 'queue' });
  const workerConnection = options.workers ? createRedisConnection({ ...conn, role: 'worker' }) : queueConnection;
  const all = [...new Set([redis, subscriber, queueConnection, workerConnection])];
  // Each failed reconnect attempt, per connection: the outage log says what an operator needs.
  for (const c of all) c.on('error', (e: Error) => logger.debug({ error: e.message }, 'redis connection error'));
  const outage = createRedisOutageLog(all, {
    target: redisTargetLabel(config.redis, url),
    logger,
    ...(options.outageReportEveryMs === undefined ? {} : { reportEveryMs: options.outageReportEveryMs }),
  });
  const close = async (until = Infinity) => {
    outage.stop();
    // One after the other, as before: the command connection's QUIT first lets the replies of
    // what others started on it arrive before their own connections go.
    for (const c of all) await closeConnection(c, until);
    await privateRedis?.stop();
  };
  try {
    await checkEvictionPolicy(redis, config.redis.allowEviction, logger);
  } catch (e) {
    await close();
    throw e;
  }
  return { redis, subscriber, queueConnection, workerConnection, privateRedis, outage, close };
}

export interface AppOptions<M extends Metrics> {
  clock: Clock;
  logger: Logger;
  /** Built once the store and the queues exist (the server's reads queue counts at scrape time). */
  metrics: (sources: { store: ProposalStore; queueCounts: () => Promise<Record<string, Record<string, number>>> }) => M;
  /** Queue timings, shortened by tests. */
  tuning?: Partial<Pick<QueueConfig, 'notifyAttempts' | 'notifyBackoffMs'>>;
  execution?: Partial<ExecutionTuning & ExecutionQueueTuning>;
  /** Subscribers after the standard list (the benchmark times commits with one). */
  observers?: readonly CommitSubscriber[];
}

export interface AppParts<M extends Metrics> {
  deps: AppDeps;
  metrics: M;
  x: ExecutionDeps;
  cards: CardRefStore;
  queueConfig: QueueConfig;
  queues: Queues;
  executionQueues: ExecutionQueues;
  executionQueueTuning: ExecutionQueueTuning;
  changes: RedisChangeFeed;
  /** The MCP gateway's upstream servers (connected on first use). */
  upstreams: ToolUpstreams;
  /** New pending proposals' cards, for the card relay (src/app/card-relay.ts). */
  cardOutbox: RedisCardOutbox;
  close(): Promise<void>;
}

/** How long an MCP call's result (and the key that attaches a repeated call) is kept after the proposal's own ttl. */
export const MCP_PICKUP_WINDOW_MS = 60 * 60_000;

/** For commands that serve no /metrics. */
export const noMetrics = (): Metrics => ({ proposalSubmitted: () => undefined, decisionRecorded: () => undefined });

export async function buildAppDeps<M extends Metrics>(config: Config, policy: CompiledPolicy, conns: RedisConnections, options: AppOptions<M>): Promise<AppParts<M>> {
  const { clock, logger } = options;
  const keys = redisKeys(config.prefix);
  const storeOptions = { prefix: config.prefix };
  const store = createRedisProposalStore(conns.redis, storeOptions);
  const changes = await createRedisChangeFeed(conns.redis, conns.subscriber, config.prefix);
  const queueConfig: QueueConfig = {
    bullPrefix: keys.bull,
    onError: (e) => logger.warn({ error: e.message }, 'queue connection error'),
    queueConnection: conns.queueConnection,
    workerConnection: conns.workerConnection,
    ...options.tuning,
  };
  const queues = createQueues(queueConfig);
  const executionQueueTuning = { ...DEFAULT_EXECUTION_QUEUE_TUNING, ...options.execution };
  const executionQueues = createExecutionQueues(queueConfig, executionQueueTuning, () => clock.now());
  const queueCounts = async () => ({ ...(await queues.counts()), ...(await executionQueues.counts()) });
  const commits = createCommitFlow(logger);
  const metrics = options.metrics({ store, queueCounts });
  const deps: AppDeps = {
    clock,
    policy,
    store,
    audit: createRedisAuditLog(conns.redis, storeOptions),
    jobs: queues,
    changes,
    logger,
    metrics,
    publicUrl: config.publicUrl,
    proposalUrl: (id) => consoleProposalUrl(deps.publicUrl, id),
    commits,
    refusalLimiter: createRedisFailureLimiter(conns.redis, config.prefix, clock),
    away: createRedisAwayStore(conns.redis, storeOptions),
  };
  const ledger = createRedisTokenLedger(conns.redis, storeOptions);
  // Without TOKEN_SIGNING_KEY (development only: config refuses it in production) every
  // replica shares one generated key kept in Redis. Tokens from the release before typed
  // tokens (typ "JWT") verify if issued before start + one token lifetime: the rollout's old
  // replicas may still mint them meanwhile; none outlives start + two lifetimes.
  const signingKey = config.tokens.signingKey ?? (await ledger.sharedDevKey(generateSigningKey));
  const signer = await createJwtSigner(signingKey, () => deps.publicUrl, {
    legacyTokensIssuedBefore: clock.now() + config.tokens.ttlMs,
  });
  // Credentials for upstreams are read from the environment at call time (a SecretSource, so a
  // file or Vault can replace it); the policy holds only their names.
  const secrets = { get: (name: string) => config.secrets[name] };
  const upstreams = toolUpstreamsOnDemand({ servers: policy.mcpServers, secrets, logger });
  // The kinds the policy's entries use; each connects on first use (a login issued).
  const issuers = await credentialIssuersFor(policy, { secrets, logger });
  const x: ExecutionDeps = {
    app: deps,
    signer,
    ledger,
    queue: executionQueues,
    executors: new Map([...EXECUTORS, createMcpExecutor(upstreams)].map((e) => [e.kind, e])),
    results: createRedisToolResults(conns.redis, { ...storeOptions, ttlSeconds: Math.ceil(MCP_PICKUP_WINDOW_MS / 1000) }),
    credentials: {
      issuers: new Map(issuers.map((i) => [i.kind, i])),
      ledger: createRedisCredentialLedger(conns.redis, storeOptions),
      // Sealed with a key derived from the token signing key: what waits in Redis does not open without it.
      sealer: createSecretSealer(signingKey),
    },
    callbacks: createHttpCallbackSender(),
    tokenTtlMs: config.tokens.ttlMs,
    tuning: { ...DEFAULT_EXECUTION_TUNING, ...options.execution },
  };
  commits.subscribe([...afterCommitSubscribers(deps, x), ...(options.observers ?? [])]);
  const cardOutbox = createRedisCardOutbox(conns.redis, storeOptions);
  return {
    deps,
    metrics,
    x,
    cards: createRedisCardRefStore(conns.redis, storeOptions),
    queueConfig,
    queues,
    executionQueues,
    executionQueueTuning,
    changes,
    upstreams,
    cardOutbox,
    async close() {
      await cardOutbox.close();
      await upstreams.close();
      await Promise.all(issuers.map((i) => i.close()));
      await queues.close();
      await executionQueues.close();
      await changes.close();
    },
  };
}
