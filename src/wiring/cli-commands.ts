// The CLI's back ends that need the store: each builds what it needs from the configuration,
// does one thing and lets go. Argument parsing and output are in src/cli/.
import { consoleSignInLink as signInLink } from '../../adapters/console/platform.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisSessionStore } from '../../adapters/redis/sessions.ts';
import { restoreAgent as restoreAgentUseCase, revokeAgent as revokeAgentUseCase, type RestorationResult, type RevocationResult } from '../app/revoke-agent.ts';
import type { ExecutionDeps } from '../app/execution-deps.ts';
import { loadConfig, type Config } from '../config.ts';
import { systemClock } from '../core/clock.ts';
import { PolicyError, UnavailableError } from '../core/errors.ts';
import type { AuditLog } from '../core/ports.ts';
import { createLogger } from '../logger.ts';
import { buildAppDeps, noMetrics, openRedis, type RedisConnections } from './app-deps.ts';
import { PLATFORMS } from './platforms.ts';
import { readPolicy } from './policy-source.ts';
import { withoutSecrets } from '../cli/io.ts';

type Env = Readonly<Record<string, string | undefined>>;

const config = (env: Env): Config => loadConfig(env, PLATFORMS);
const quiet = (c: Config) => createLogger(c.logLevel, process.stderr);
const openForCommand = (c: Config): Promise<RedisConnections> => openRedis(c, quiet(c), { workers: false });

/** The configured Redis's audit log, for commands that read it (`audit search`, `policy replay`). */
export async function openAuditLog(env: Env): Promise<{ audit: AuditLog; close(): Promise<void> }> {
  const c = config(env);
  const conns = await openForCommand(c);
  return { audit: createRedisAuditLog(conns.redis, { prefix: c.prefix }), close: conns.close };
}

/** `countersign console link PERSON`: a one-time console sign-in link, for a running countersign. */
export async function consoleSignInLink(env: Env, person: string): Promise<string> {
  const c = config(env);
  // Only its people matter here: the agents' secrets may be set only where the server runs.
  const { policy } = readPolicy({ ...c, secrets: withoutSecrets(c.secrets).env });
  if (!policy.people.has(person)) throw new PolicyError(policy.file, undefined, `no person "${person}" under people`);
  const conns = await openForCommand(c);
  try {
    // A private Redis started just for this command would take the token with it when it stops.
    if (conns.privateRedis !== null) throw new UnavailableError('countersign is not running (no Redis with its data answers): start it first with `countersign start`');
    return await signInLink(createRedisSessionStore(conns.redis, c.prefix), c.publicUrl, person);
  } finally {
    await conns.close();
  }
}

/**
 * `countersign revoke --agent ID`, the kill switch from a terminal: revokes the agent's
 * outstanding tokens, removes its queued executions and cancels its pending proposals.
 * The running servers' workers post the thread replies.
 */
export async function revokeAgent(env: Env, agentId: string): Promise<RevocationResult> {
  return withExecutionDeps(env, (x) => revokeAgentUseCase(x, agentId, 'admin:cli'));
}

/**
 * `countersign restore --agent ID`: lifts the kill switch, so the agent may propose again.
 * Brings nothing back (see restoreAgent).
 */
export async function restoreAgent(env: Env, agentId: string): Promise<RestorationResult> {
  return withExecutionDeps(env, (x) => restoreAgentUseCase(x, agentId, 'admin:cli'));
}

async function withExecutionDeps<T>(env: Env, run: (x: ExecutionDeps) => Promise<T>): Promise<T> {
  const c = config(env);
  const logger = quiet(c);
  const { policy } = readPolicy(c);
  const conns = await openRedis(c, logger, { workers: false });
  const app = await buildAppDeps(c, policy, conns, { clock: systemClock, logger, metrics: noMetrics });
  try {
    return await run(app.x);
  } finally {
    await app.close();
    await conns.close();
  }
}
