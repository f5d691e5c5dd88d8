import { NotFoundError, StoreFullError, UnavailableError } from '../core/errors.ts';
import { nextNudgeAt } from '../core/escalation.ts';
import { nudge, undecidable, type NudgeWorld } from '../core/nudge.ts';
import type { Proposal } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { mutate } from './mutate.ts';

// The escalation sweep, run with the expire sweep (about once a second, one BullMQ job scheduler
// for every replica): each pending proposal with an escalation step or a reminder due (the
// store's due set, written with the proposal itself) is moved by a commit with compare-and-set
// on its version, so a step is taken once however many sweeps race for it. The commit's
// follow-ups post the escalated cards and the thread replies (notify-platforms.ts).

/** Proposals nudged side by side, as the expire sweep expires them. */
const SIDE_BY_SIDE = 8;

/** Steps one proposal may take in one sweep: a replica back after a long pause catches up at once. */
const MAX_ROUNDS = 12;

export async function nudgeDue(deps: AppDeps, limit = 500): Promise<number> {
  const ids = await deps.store.nudgesDueBy(deps.clock.now(), limit);
  if (ids.length === 0) return 0;
  // The kill switch as it is now (an agent the policy no longer names is undecidable anyway).
  const { policy } = deps;
  const world: NudgeWorld = {
    revoked: await deps.store.revokedAgents([...policy.agents.keys()]),
    agentExists: (agent) => policy.agentById(agent) !== undefined,
    routePosts: (route) => policy.platformsOf(route).length > 0,
    groupExists: (group) => policy.groups.has(group),
  };
  const stuck = (p: Proposal) => undecidable(p, world.revoked, world.agentExists(p.agent));
  let count = 0;
  let next = 0;
  const one = async (id: string) => {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const m = await mutate(deps, id, (p, now) => nudge(p, now, world));
      if (m.outcome.kind === 'none') {
        // Nothing due after all (another sweep took it, or the proposal is past its deadline and
        // the expiry's): put it where it belongs, unless it moved on since it was read. One
        // nobody may decide on leaves the set: its deadline (the expire sweep) ends it.
        await deps.store.rescheduleNudge(id, m.proposal.version, stuck(m.proposal) ? null : nextNudgeAt(m.proposal));
        return;
      }
      count++;
      const gone = m.committed?.events.find((e) => e.type === 'escalated')?.data['not_in_policy'];
      if (gone !== undefined) deps.logger.warn({ proposal_id: id, not_in_policy: gone }, 'escalation step taken, but its route or group is no longer in the policy: nobody was paged for it');
      const at = nextNudgeAt(m.proposal);
      if (at === null || at > deps.clock.now()) return;
    }
  };
  const worker = async () => {
    for (let id = ids[next++]; id !== undefined; id = ids[next++]) {
      try {
        await one(id);
      } catch (e) {
        if (e instanceof UnavailableError || e instanceof StoreFullError) throw e;
        if (e instanceof NotFoundError) {
          await deps.store.rescheduleNudge(id, 0, null);
          continue;
        }
        deps.logger.warn({ proposal_id: id, error: (e as Error).message }, 'escalation sweep: a pending proposal could not be escalated or reminded');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SIDE_BY_SIDE, ids.length) }, worker));
  return count;
}
