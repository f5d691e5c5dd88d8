import { UnavailableError, NotFoundError } from '../core/errors.ts';
import type { Step } from '../core/lifecycle.ts';
import type { Proposal } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { followUp } from './follow-up.ts';

// Read, decide in the pure core, compare-and-set in the store; on a lost race read again.
// Each round at least one racer wins, so N racers need at most N rounds; the bound is a
// guard against a store that always answers "conflict".
const MAX_ROUNDS = 200;

export interface Mutation<O> {
  outcome: O;
  /** The proposal as it is after this call (changed or not). */
  proposal: Proposal;
  changed: boolean;
}

export async function mutate<O>(
  deps: AppDeps,
  proposalId: string,
  decide: (current: Proposal, now: number) => Step<O>,
): Promise<Mutation<O>> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await deps.store.get(proposalId);
    if (current === null) throw new NotFoundError(`no proposal ${proposalId}`);
    const step = decide(current, deps.clock.now());
    if (step.next === null) {
      if (step.events.length > 0) await deps.audit.append(step.events);
      return { outcome: step.outcome, proposal: current, changed: false };
    }
    if ((await deps.store.commit(step.next, current.version, step.events)) === 'ok') {
      await followUp(deps, current, step.next, step.events);
      return { outcome: step.outcome, proposal: step.next, changed: true };
    }
    if (round > 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, round * 2)));
  }
  throw new UnavailableError(`proposal ${proposalId} is changing too fast; try again`);
}
