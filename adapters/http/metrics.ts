import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditRetentionMetrics } from '../../src/core/audit-seal-ports.ts';
import type { AuditSealMetrics, Metrics, ProposalStore } from '../../src/core/ports.ts';
import { STATUSES } from '../../src/core/proposal.ts';

// Prometheus metrics. Gauges that mirror Redis (proposals by status, queue depth) are read
// at scrape time, so every replica reports the shared truth rather than its own share.

export interface MetricsSources {
  store: ProposalStore;
  queueCounts: () => Promise<Record<string, Record<string, number>>>;
}

/** The audit sealer's and retention's metrics, and the witnesses' failures. */
export interface AuditMetrics extends AuditSealMetrics, AuditRetentionMetrics {
  witnessFailure(witness: string): void;
  /** Where the unsealed-entries gauge reads, at each scrape (entries after the newest checkpoint). */
  readUnsealedFrom(read: () => Promise<number>): void;
}

export interface PrometheusMetrics extends Metrics {
  registry: Registry;
  audit: AuditMetrics;
}

function auditMetrics(registry: Registry): AuditMetrics {
  let readUnsealed: (() => Promise<number>) | null = null;
  // Read from Redis at scrape time, like the proposal counts: every replica reports the shared
  // truth, and a log nobody seals (no leader) still shows its growing tail.
  new Gauge({
    name: 'countersign_audit_unsealed_entries',
    help: 'Audit entries that no signed checkpoint covers yet',
    registers: [registry],
    async collect() {
      if (readUnsealed === null) return;
      try {
        this.set(await readUnsealed());
      } catch {
        // Redis away: the scrape still answers, with the last value.
      }
    },
  });
  const lag = new Histogram({
    name: 'countersign_audit_seal_lag_seconds',
    help: "Seconds from an audit entry's time to the signed checkpoint that covers it",
    buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60],
    registers: [registry],
  });
  const leader = new Gauge({ name: 'countersign_audit_sealer_leader', help: 'This replica holds the audit sealer lease (1) or not (0)', registers: [registry] });
  const errors = new Counter({
    name: 'countersign_audit_seal_errors_total',
    help: 'Times sealing stopped at an entry that does not fit the chain, or at a sealed state that contradicts a checkpoint',
    labelNames: ['reason'],
    registers: [registry],
  });
  const witness = new Counter({
    name: 'countersign_audit_witness_failures_total',
    help: 'Failed deliveries of audit checkpoints to a witness (retried), by witness',
    labelNames: ['witness'],
    registers: [registry],
  });
  const trimmed = new Counter({
    name: 'countersign_audit_trimmed_entries_total',
    help: 'Audit entries removed by retention (AUDIT_RETENTION), by this replica',
    registers: [registry],
  });
  return {
    auditTrimmed: (n) => trimmed.inc(n),
    sealerLeader: (l) => leader.set(l ? 1 : 0),
    sealLag: (seconds) => lag.observe(seconds),
    sealError: (reason) => errors.inc({ reason }),
    witnessFailure: (name) => witness.inc({ witness: name }),
    readUnsealedFrom(read) {
      readUnsealed = read;
    },
  };
}

export function createMetrics(sources: MetricsSources): PrometheusMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'countersign_' });
  const submitted = new Counter({
    name: 'countersign_proposals_submitted_total',
    help: 'Proposals accepted, by policy effect',
    labelNames: ['effect'],
    registers: [registry],
  });
  // Agent ids come from the policy, so the label's values are bounded.
  const limited = new Counter({
    name: 'countersign_proposals_limited_total',
    help: "Proposals refused for one of their agent's limits (policy limits:), by agent and limit",
    labelNames: ['agent', 'limit'],
    registers: [registry],
  });
  const decision = new Histogram({
    name: 'countersign_decision_seconds',
    help: 'Time from submission to the human decision (or expiry)',
    labelNames: ['status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400],
    registers: [registry],
  });
  new Gauge({
    name: 'countersign_proposals',
    help: 'Proposals by current status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await sources.store.countByStatus();
      for (const status of STATUSES) this.set({ status }, counts[status]);
    },
  });
  new Gauge({
    name: 'countersign_queue_jobs',
    help: 'Jobs in the BullMQ queues, by queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const counts = await sources.queueCounts();
      for (const [queue, states] of Object.entries(counts)) {
        for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
      }
    },
  });
  return {
    registry,
    audit: auditMetrics(registry),
    proposalSubmitted: (effect) => submitted.inc({ effect }),
    proposalLimited: (agent, limit) => limited.inc({ agent, limit }),
    decisionRecorded: (status, seconds) => decision.observe({ status }, seconds),
  };
}
