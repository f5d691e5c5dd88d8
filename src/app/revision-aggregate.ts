import type { CompiledPolicy } from '../core/policy/evaluate.ts';
import { aggregateGroup, aggregateMember, decideOnSum } from '../core/policy/fatigue.ts';
import type { Policy } from '../core/policy/model.ts';
import type { AggregateMove, AggregatePlace, AggregateRead } from '../core/ports.ts';
import type { Step } from '../core/lifecycle.ts';
import type { Proposal } from '../core/proposal.ts';
import type { Redecide } from '../core/revision.ts';
import type { AppDeps } from './deps.ts';

// Split-transaction aggregation for an approver's edit (core/revision.ts). The revision is
// decided on the sum of its group's window like a new proposal (raising one of two refunds
// past a rule's threshold together is that rule's), and counts with its revised amount for
// later proposals (lowering it leaves no stale higher total): its place in the groups moves in
// the revision's own commit, which is a conflict when the group changed since it was read.

/** Statuses in which a proposal is in its aggregate group (as create-proposal.lua adds it). */
const JOINED: ReadonlySet<string> = new Set(['pending', 'approved', 'executing']);

/** The group a proposal counts in and the amount it counts with; null when it counts in none (no amount, its rule judges it alone). */
export function aggregatePlace(policy: Policy, p: Pick<Proposal, 'agent' | 'action' | 'context' | 'decision'>): { group: string; amount: number } | null {
  const amount = p.context.value.amount;
  if (!(amount > 0) || policy.rules.find((r) => r.name === p.decision.rule)?.aggregate === false) return null;
  return { group: aggregateGroup(policy.aggregation, p), amount };
}

/**
 * For a commit that changes `before`'s status: its place in its aggregate group, which the store
 * takes out when the new status no longer counts (CommitOptions.counted). The rule's `aggregate:
 * false` is not asked: taking out what is not there is nothing, and the policy may have changed
 * since the create put it there.
 */
export function countedPlace(policy: Pick<Policy, 'aggregation'>, before: Proposal, after: Pick<Proposal, 'status'>): AggregatePlace | undefined {
  if (before.status === after.status || !(before.context.value.amount > 0)) return undefined;
  return { group: aggregateGroup(policy.aggregation, before), member: aggregateMember(before) };
}

/** `redecide` whose decision is made on the sum of `read` (the proposal's own entry left out) when that is stricter. */
function summing(policy: CompiledPolicy, p: Proposal, redecide: Redecide, group: string, read: AggregateRead): Redecide {
  const others = read.entries.filter((e) => e.id !== p.id);
  if (others.length === 0) return redecide;
  const spec = policy.aggregation;
  const agent = { id: p.agent, sponsors: [...(policy.agentById(p.agent)?.sponsors ?? [])] };
  return {
    reread: (action) => redecide.reread(action),
    decide(action, context) {
      const alone = redecide.decide(action, context);
      if (alone.effect === 'deny' || aggregateGroup(spec, { agent: p.agent, action, context }) !== group || !(context.value.amount > 0)) return alone;
      return decideOnSum(policy, { agent, intent: p.intent, action, context }, alone, others);
    },
  };
}

/**
 * An edit's step (`edit`, run with the policy's plain decision first), decided again on its
 * group's sum when it is a revision, with the move of its place in the groups for its commit.
 */
export async function editInAggregate<O>(deps: Pick<AppDeps, 'policy' | 'store'>, p: Proposal, now: number, redecide: Redecide, edit: (r: Redecide) => Step<O>): Promise<Step<O>> {
  const first = edit(redecide);
  const revised = (s: Step<O>) => s.next !== null && s.next.revision !== undefined && s.next.revision.number !== p.revision?.number;
  if (!revised(first) || first.next === null) return first;
  const { policy } = deps;
  const spec = policy.aggregation;
  const joining = aggregatePlace(policy, first.next);
  let step = first;
  let version = '';
  if (joining !== null) {
    const read = await deps.store.readAggregate(joining.group, now, spec.window_ms);
    version = read.version;
    step = edit(summing(policy, p, redecide, joining.group, read));
  }
  const next = step.next;
  if (next === null || !revised(step)) return step;
  const left = p.status === 'pending' ? aggregatePlace(policy, p) : null;
  const to = JOINED.has(next.status) ? aggregatePlace(policy, next) : null;
  const move: AggregateMove = {
    from: left === null ? null : { group: left.group, member: aggregateMember(p) },
    to: to === null ? null : { group: to.group, member: aggregateMember(next), score: p.created_at, version: to.group === joining?.group ? version : '' },
    window_ms: spec.window_ms,
  };
  if (move.from === null && move.to === null) return step;
  return { ...step, aggregate: move };
}
