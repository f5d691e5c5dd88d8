// The audit sealer's parts on Redis (src/app/seal-audit.ts): the signing key (AUDIT_SIGNING_KEY,
// or the development key in the data directory), the seal store, the witnesses, the metrics,
// and beside the sealer, under its lease: the search indexer (src/app/index-audit.ts) and
// retention (AUDIT_RETENTION).
// The server starts it (src/main.ts); commands that check checkpoints load the same signer.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { AuditMetrics } from '../../adapters/http/metrics.ts';
import { createRedisAuditIndex } from '../../adapters/redis/audit-index-store.ts';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { failFast } from '../../adapters/redis/connection.ts';
import { createAuditSigner, developmentAuditKey, readDevelopmentAuditKey } from '../../adapters/tokens/audit-signer.ts';
import { createCheckpointWitness } from '../../adapters/witness/checkpoint-witness.ts';
import { createAuditRetention } from '../app/audit-retention.ts';
import { createAuditIndexer } from '../app/index-audit.ts';
import { createAuditSealer, type AuditSealerTuning } from '../app/seal-audit.ts';
import type { Config } from '../config.ts';
import type { AuditSigner } from '../core/audit-checkpoint.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/ports.ts';

/**
 * Sealer timings, the witnesses' first retry, and how often retention runs (default 10 min:
 * retention is counted in days, and a run between two costs only a few reads), shortened by tests.
 */
export type AuditTuning = Partial<AuditSealerTuning> & { witnessRetryMs?: number; retentionEveryMs?: number };

/** AUDIT_SIGNING_KEY's signer; without it (development only: config refuses it in production) the data directory's key. */
export async function loadAuditSigner(config: Config, logger: Logger): Promise<AuditSigner> {
  if (config.audit.signingKey !== null) return createAuditSigner(config.audit.signingKey);
  const dev = await developmentAuditKey(config.dataDir);
  logger.warn(
    { file: dev.path, created: dev.created },
    'AUDIT_SIGNING_KEY is not set: audit checkpoints are signed with a development key kept in the data directory (replicas with another data directory sign with keys of their own); production must set it',
  );
  return createAuditSigner(dev.text);
}

/**
 * For commands that only check checkpoints (`audit verify`): AUDIT_SIGNING_KEY's keys, else the
 * development key of this data directory if there is one (never made here), else null.
 */
export async function existingAuditSigner(config: Config): Promise<AuditSigner | null> {
  const text = config.audit.signingKey ?? readDevelopmentAuditKey(config.dataDir);
  return text === null ? null : createAuditSigner(text);
}

export interface AuditSealing {
  stop(): Promise<void>;
}

export function startAuditSealing(
  config: Config,
  redis: Redis | Cluster,
  signer: AuditSigner,
  parts: { clock: Clock; logger: Logger; metrics: AuditMetrics },
  tuning: AuditTuning = {},
): AuditSealing {
  const { witnessRetryMs, retentionEveryMs, ...sealerTuning } = tuning;
  const seals = createRedisAuditSeals(redis, { prefix: config.prefix });
  parts.metrics.readUnsealedFrom(async () => Math.max(0, (await seals.headSeq()) - ((await seals.latestCheckpoint())?.seq ?? 0)));
  const witness = createCheckpointWitness(
    { url: config.audit.witnessUrl, file: config.audit.witnessFile },
    { logger: parts.logger, onFailure: (name) => parts.metrics.witnessFailure(name), ...(witnessRetryMs === undefined ? {} : { retryMs: witnessRetryMs }) },
  );
  const common = {
    seals,
    signer,
    clock: parts.clock,
    logger: parts.logger,
    metrics: parts.metrics,
    witness,
    log: config.prefix,
    // Host and pid, so an operator (or a test) can tell which process leads. Retention writes
    // under the same id: only while this replica's sealer holds the lease.
    owner: `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
    scope: <T>(fn: () => Promise<T>) => failFast(fn),
  };
  const sealer = createAuditSealer(common, sealerTuning);
  // Indexes whatever the chain says: search must keep working on a log whose sealing stopped.
  const indexer = createAuditIndexer({ index: createRedisAuditIndex(redis, { prefix: config.prefix }), logger: parts.logger, owner: common.owner, scope: common.scope });
  const retention =
    config.audit.retentionMs === null
      ? null
      : createAuditRetention({ ...common, retentionMs: config.audit.retentionMs }, retentionEveryMs === undefined ? {} : { everyMs: retentionEveryMs });
  sealer.start();
  indexer.start();
  retention?.start();
  return {
    async stop() {
      // Retention and the indexer first: they write only while the sealer holds the lease, which the sealer gives up at stop.
      await retention?.stop();
      await indexer.stop();
      await sealer.stop();
      await witness.close();
    },
  };
}
