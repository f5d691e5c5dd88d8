import type { Proposal } from '../core/proposal.ts';
import type { CompiledPolicy } from '../core/policy/evaluate.ts';
import type { AuditLog, ChangeFeed, Clock, JobScheduler, Logger, Metrics, ProposalStore } from '../core/ports.ts';

/** Everything the use cases need; built once in main.ts. */
export interface AppDeps {
  clock: Clock;
  policy: CompiledPolicy;
  store: ProposalStore;
  audit: AuditLog;
  jobs: JobScheduler;
  changes: ChangeFeed;
  logger: Logger;
  metrics: Metrics;
  publicUrl: string;
  /** Where people see a proposal and its history (the console's page): the link on every card. */
  proposalUrl(id: string): string;
  /**
   * Called once a proposal is approved (by people or by policy). The execution issue plugs
   * the token mint and the execute queue in here; until then approved is where it rests.
   */
  onApproved: (proposal: Proposal) => Promise<void>;
  /** Called after any status change of an existing proposal (execution: agent callbacks). */
  onStatusChanged?: (proposal: Proposal) => Promise<void>;
}
