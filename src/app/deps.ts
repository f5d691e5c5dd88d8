import type { CommitFlow } from './after-commit.ts';
import type { LimitAlerts } from './fatigue.ts';
import type { CompiledPolicy } from '../core/policy/evaluate.ts';
import type { AuditLog, AuthFailureLimiter, AwayStore, ChangeFeed, Clock, JobScheduler, Logger, Metrics, ProposalStore } from '../core/ports.ts';

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
  /** Where committed changes go next (cards, execution, callbacks): see after-commit.ts. */
  commits: CommitFlow;
  /** Caps the audit entries of refused proposals per agent (`agent:<id>`): a revoked agent's flood is refused without growing the log. */
  refusalLimiter: AuthFailureLimiter;
  /** Who is away and who decides for them (src/core/away.ts, src/app/away.ts). */
  away: AwayStore;
  /** Over-the-limit notices (app/fatigue.ts); absent where nothing posts (CLI commands). */
  limitAlerts?: LimitAlerts;
}
