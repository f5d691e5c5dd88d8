import { UnavailableError, NotFoundError } from '../core/errors.ts';
import type { Step } from '../core/lifecycle.ts';
import type { WriteOptions } from '../core/ports.ts';
import type { Proposal } from '../core/proposal.ts';
import type { Committed } from './after-commit.ts';
import type { AppDeps } from './deps.ts';
import { countedPlace } from './revision-aggregate.ts';

// Read, decide in the pure core, compare-and-set in the store; on a lost race read again.
// Each round at least one racer wins, so N racers need at most N rounds; the bound is a
// guard against a store that always answers "conflict".
const MAX_ROUNDS = 200;

export interface Mutation<O> {
  outcome: O;
  /** The proposal as it is after this call (changed or not). */
  proposal: Proposal;
  changed: boolean;
  /** What was committed, for the after-commit flow; null when nothing changed. */
  committed: Committed | null;
}

/** Async only for what must be read again after a lost round (record-decision.ts: the absences behind a delegate's vote). */
type Decide<O> = (current: Proposal, now: number) => Step<O> | Promise<Step<O>>;

/**
 * A use case's change: committed, then handed to the after-commit flow (cards, execution,
 * callbacks). `write`: see WriteOptions (only the kill switch asks to write even when full; its
 * follow-ups do not, and fail on their own, logged, while the store is full).
 */
export async function mutate<O>(deps: AppDeps, proposalId: string, decide: Decide<O>, write: WriteOptions = {}): Promise<Mutation<O>> {
  const m = await commitStep(deps, proposalId, decide, write);
  if (m.committed !== null) await deps.commits.dispatch(m.committed);
  return m;
}

/**
 * The change only. For after-commit subscribers: they return `committed` to the flow, which
 * runs the follow-ups next (never from inside another commit's follow-ups).
 */
export async function commitStep<O>(deps: Pick<AppDeps, 'store' | 'audit' | 'clock' | 'policy'>, proposalId: string, decide: Decide<O>, write: WriteOptions = {}): Promise<Mutation<O>> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await deps.store.get(proposalId);
    if (current === null) throw new NotFoundError(`no proposal ${proposalId}`);
    const step = await decide(current, deps.clock.now());
    if (step.next === null) {
      if (step.events.length > 0) await deps.audit.append(step.events, write);
      return { outcome: step.outcome, proposal: current, changed: false, committed: null };
    }
    const counted = step.aggregate === undefined ? countedPlace(deps.policy, current, step.next) : undefined;
    const options = {
      ...write,
      ...(step.delegation === undefined ? {} : { delegation: step.delegation }),
      ...(step.aggregate === undefined ? {} : { aggregate: step.aggregate }),
      ...(counted === undefined ? {} : { counted }),
    };
    if ((await deps.store.commit(step.next, current.version, step.events, options)) === 'ok') {
      return { outcome: step.outcome, proposal: step.next, changed: true, committed: { before: current, after: step.next, events: step.events } };
    }
    if (round > 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, round * 2)));
  }
  throw new UnavailableError(`proposal ${proposalId} is changing too fast; try again`);
}
