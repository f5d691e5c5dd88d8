import type { KnownAuditEvent } from '../core/audit.ts';
import type { Proposal } from '../core/proposal.ts';
import type { ChangeFeed, Logger, Metrics } from '../core/ports.ts';

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
  /**
   * The same, for a caller that answers before the follow-ups have run (a new proposal's 201:
   * nothing in it depends on them, and each has its own safety net should the process die).
   * Resolves at once, unless BACKGROUND_LIMIT dispatches are still running: then when this one
   * ends, so that a flood slows its senders down instead of piling up follow-ups in memory.
   */
  dispatchInBackground(first: Committed): Promise<void>;
  /** Resolves when no background dispatch is running, or at `until` (ms since the epoch), whichever comes first. */
  idle(until?: number): Promise<void>;
  /**
   * Waits for this process's background follow-ups of `proposalId` (an allowed proposal's
   * token being issued while its agent already reads it); resolves true when there were any.
   */
  settled(proposalId: string): Promise<boolean>;
}

/** Background dispatches at once before a new one is awaited by its caller. */
export const BACKGROUND_LIMIT = 256;

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
  const running = new Set<Promise<void>>();
  const byProposal = new Map<string, Promise<void>>();
  const flow: CommitFlowWiring = {
    subscribe(list) {
      if (subscribers !== null) throw new Error('the after-commit subscribers are registered once, at wiring');
      subscribers = [...list];
    },
    dispatchInBackground(first) {
      // dispatch() logs its subscribers' failures; what is left is a flow without subscribers.
      const done: Promise<void> = flow.dispatch(first).catch((err: unknown) => logger.error({ err, proposal_id: first.after.id }, 'follow-ups after a committed change failed'));
      running.add(done);
      byProposal.set(first.after.id, done);
      void done.finally(() => {
        running.delete(done);
        if (byProposal.get(first.after.id) === done) byProposal.delete(first.after.id);
      });
      return running.size > BACKGROUND_LIMIT ? done : Promise.resolve();
    },
    async settled(proposalId) {
      const done = byProposal.get(proposalId);
      if (done === undefined) return false;
      await done;
      return true;
    },
    async idle(until = Infinity) {
      let timer: NodeJS.Timeout | undefined;
      const late = until === Infinity ? [] : [new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, until - Date.now()))))];
      // Dispatches started while waiting (a follow-up's own commits run inside theirs) are waited for too.
      while (running.size > 0) {
        const settled = await Promise.race([Promise.all([...running]).then(() => true), ...late.map((p) => p.then(() => false))]);
        if (!settled) break;
      }
      clearTimeout(timer);
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
  return flow;
}

/**
 * Not for a new proposal: a waiter reads the proposal before it waits (waitForProposal), so
 * nobody can be waiting on one that did not exist; its PUBLISH (every master's work on a
 * cluster) would reach no one.
 */
const statusChanged = (c: Committed) => c.before !== null && c.before.status !== c.after.status;

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
