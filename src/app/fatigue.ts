import { RateLimitedError, UnavailableError } from '../core/errors.ts';
import { decideOnSum, limitsFor, limitText, type LimitName } from '../core/policy/fatigue.ts';
import type { AgentSpec, Policy, RuleSpec } from '../core/policy/model.ts';
import type { Decision, Proposal, ProposalInput } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { auditRefusal } from './refusal-audit.ts';
import { aggregatePlace } from './revision-aggregate.ts';
import { draftProposal, type ProposalDraft } from './submit-proposal.ts';

// Approval fatigue at intake (policy/fatigue.ts): the limits go with the draft to the store's
// create, which checks them in the step that writes; a proposal with an amount is decided
// again on the sum of its group's window, and refused as stale by the create when another
// joined the group in between (then decided again here, a few times).

// The over-the-limit notice itself (counted, posted, kept up to date) is limit-notices.ts.
export type { LimitAlerts } from './limit-notices.ts';

/** The create saw a proposal join the aggregate group after the decision was made: decide again. */
export class StaleAggregateError extends Error {
  constructor() {
    super('a proposal joined the aggregate group while this one was decided');
  }
}

// Each round one of the racers wins, so a burst of this many at one group still gets through.
const STALE_RETRIES = 20;

function ruleOf(policy: Policy, name: string): RuleSpec | undefined {
  return policy.rules.find((r) => r.name === name);
}

function createLimits(policy: Policy, agent: string, decision: Decision) {
  return limitsFor(policy.limits, agent, decision.rule, ruleOf(policy, decision.rule)?.limits);
}

/**
 * The draft as the policy decides it, with what the store's create checks: the agent's limits,
 * and, for an amount above 0 that its rule does not judge alone, the aggregate group's window.
 * A denied proposal is not summed (nothing is stricter); a zero amount costs no read.
 */
export async function draftWithFatigue(deps: Pick<AppDeps, 'policy' | 'store'>, agent: AgentSpec, input: ProposalInput, now: number): Promise<ProposalDraft> {
  const alone = draftProposal(deps, agent, input, now);
  const first = alone.proposal.decision;
  const limits = createLimits(deps.policy, agent.id, first);
  const place = first.effect === 'deny' ? null : aggregatePlace(deps.policy, alone.proposal);
  if (place === null) return { ...alone, create: { limits } };
  const { group, amount } = place;
  const spec = deps.policy.aggregation;
  const read = await deps.store.readAggregate(group, now, spec.window_ms);
  const aggregate = { group, version: read.version, amount, window_ms: spec.window_ms };
  const decision = decideOnSum(deps.policy, { agent: { id: agent.id, sponsors: agent.sponsors }, intent: input.intent, action: alone.proposal.action, context: alone.proposal.context }, first, read.entries);
  if (decision === first) return { ...alone, create: { limits, aggregate } };
  const draft = draftProposal(deps, agent, input, now, decision);
  return { ...draft, create: { limits: createLimits(deps.policy, agent.id, decision), aggregate } };
}

/** Runs `attempt` (which decides and stores) again while the create finds its aggregate read stale. */
export async function withFreshAggregate<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof StaleAggregateError)) throw e;
      if (i + 1 >= STALE_RETRIES) throw new UnavailableError('too many proposals to the same target at once; try again');
    }
  }
}

/**
 * A proposal refused for a limit: counted (metric), audited within the agent's share of the
 * refusal limiter (a flood must not grow the chain without bound), and the route's alert
 * counted and, once per window, posted in the background: the 429 does not wait for it.
 */
export async function refuseForLimit(deps: AppDeps, p: Proposal, limit: LimitName, max: number, retryAfterMs: number): Promise<RateLimitedError> {
  const text = limitText(p.agent, limit, max, p.decision.rule);
  deps.metrics.proposalLimited?.(p.agent, limit);
  const route = p.decision.route;
  if (route !== null && deps.limitAlerts !== undefined) {
    void deps.limitAlerts.refused({ agent: p.agent, route, limit, max, rule: p.decision.rule, windowMs: deps.policy.limits.alert_every_ms });
  }
  await auditRefusal(deps, p, 'proposal over its agent limit refused', { limit, max }, { reason: 'rate_limited', limit, max, rule: p.decision.rule, route });
  return new RateLimitedError(p.agent, limit, text, retryAfterMs);
}
