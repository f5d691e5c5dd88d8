import type { KnownAuditEvent } from '../core/audit.ts';
import type { Proposal } from '../core/proposal.ts';
import type { ChangeFeed, JobScheduler, Logger, Metrics } from '../core/ports.ts';

// What happens after a change is committed: a list of subscribers registered once, at wiring
// (src/wiring/after-commit.ts). Every use case commits through mutate() (or submitProposal),
// which hands the commit to dispatch(). The subscribers of one commit run side by side (none
// waits for another: a slow chat never delays an execution); the list's order is the order to
// read them in.
//
// No re-entry: a subscriber that commits in turn (issuing an approved proposal's token) does not
// dispatch; it returns its commits (or, failing after committing, throws FollowUpFailed with
// them), and the same loop runs the subscribers for them next. Commits made outside any flow
// (recovery sweeps, commitStep callers) are dispatched by whoever made them.
// Failures are logged, never thrown back: the change is already durable, and what a subscriber
// did not do is repaired by its own safety net (update jobs render the latest state, sweeps
// re-post missing cards and re-issue missing tokens).

export interface Committed {
  /** The proposal before the change; null when it was just created. */
  before: Proposal | null;
  after: Proposal;
  /** The audit events committed with it, in order. */
  events: readonly KnownAuditEvent[];
}

export interface CommitSubscriber {
  /** For logs: which follow-up failed. */
  readonly name: string;
  /** Runs once per commit; resolves with the commits it made itself, if any. */
  onCommitted(c: Committed): Promise<readonly Committed[] | void>;
}

export interface CommitFlow {
  /** Runs every subscriber for `first`, then for each commit they made, in order. */
  dispatch(first: Committed): Promise<void>;
}

export interface CommitFlowWiring extends CommitFlow {
  /** Called once, at wiring: the subscribers, in the order they are listed. */
  subscribe(subscribers: readonly CommitSubscriber[]): void;
}

/** A subscriber failed after committing: its commits still get their follow-ups. */
export class FollowUpFailed extends Error {
  constructor(
    override readonly cause: unknown,
    readonly committed: readonly Committed[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

export function createCommitFlow(logger: Logger): CommitFlowWiring {
  let subscribers: readonly CommitSubscriber[] | null = null;
  return {
    subscribe(list) {
      if (subscribers !== null) throw new Error('the after-commit subscribers are registered once, at wiring');
      subscribers = [...list];
    },
    async dispatch(first) {
      const list = subscribers;
      // A commit nobody follows up would leave cards, executions and callbacks undone.
      if (list === null) throw new Error('the after-commit flow has no subscribers: wire them before the first commit');
      const queue: Committed[] = [first];
      for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
        const commit = c;
        const results = await Promise.allSettled(list.map((s) => s.onCommitted(commit)));
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') {
            queue.push(...(r.value ?? []));
            return;
          }
          if (r.reason instanceof FollowUpFailed) queue.push(...r.reason.committed);
          const err = r.reason instanceof FollowUpFailed ? r.reason.cause : r.reason;
          logger.error({ err, proposal_id: commit.after.id, subscriber: list[i]?.name }, 'follow-up after a committed change failed');
        });
      }
    },
  };
}

const statusChanged = (c: Committed) => c.before === null || c.before.status !== c.after.status;

/** Long-polls on every replica wake up when a status changes. */
export function wakeWaiters(changes: ChangeFeed): CommitSubscriber {
  return {
    name: 'wake-waiters',
    async onCommitted(c) {
      if (statusChanged(c)) await changes.publish(c.after.id, c.after.status);
    },
  };
}

/** Seconds from submission to the human decision. */
export function countDecisions(metrics: Metrics): CommitSubscriber {
  return {
    name: 'count-decisions',
    async onCommitted({ before, after }) {
      if (before?.status === 'pending' && after.status !== 'pending' && after.resolution !== null) {
        metrics.decisionRecorded(after.status, (after.resolution.at - after.created_at) / 1000);
      }
    },
  };
}

/** A new pending proposal gets a delayed job at its deadline. */
export function scheduleExpiry(jobs: Pick<JobScheduler, 'scheduleExpiry'>): CommitSubscriber {
  return {
    name: 'schedule-expiry',
    async onCommitted({ before, after }) {
      if (before === null && after.status === 'pending' && after.expires_at !== null) await jobs.scheduleExpiry(after.id, after.expires_at);
    },
  };
}
