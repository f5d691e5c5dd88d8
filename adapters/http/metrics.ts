import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics, ProposalStore } from '../../src/core/ports.ts';
import { STATUSES } from '../../src/core/proposal.ts';

// Prometheus metrics. Gauges that mirror Redis (proposals by status, queue depth) are read
// at scrape time, so every replica reports the shared truth rather than its own share.

export interface MetricsSources {
  store: ProposalStore;
  queueCounts: () => Promise<Record<string, Record<string, number>>>;
}

export interface PrometheusMetrics extends Metrics {
  registry: Registry;
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
    proposalSubmitted: (effect) => submitted.inc({ effect }),
    decisionRecorded: (status, seconds) => decision.observe({ status }, seconds),
  };
}
