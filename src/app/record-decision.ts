import { applyVote, type Authority, type VoteOutcome } from '../core/lifecycle.ts';
import type { Platform, Proposal, Vote } from '../core/proposal.ts';
import type { Policy } from '../core/policy/policy.ts';
import type { AppDeps } from './deps.ts';
import { mutate } from './mutate.ts';

// The one door through which people decide, whatever platform they click on: Slack, Teams
// and the console all call this with the policy person they matched the clicker to.

export interface DecisionRequest {
  proposalId: string;
  /** A person id from the policy (`people`), already matched from the platform's user id. */
  person: string;
  platform: Platform;
  vote: Vote;
  reason?: string | null;
}

export interface DecisionResult {
  outcome: VoteOutcome;
  proposal: Proposal;
}

export function authorityFrom(policy: Policy): Authority {
  return {
    personExists: (person) => policy.people.has(person),
    isApprover: (person, group) => policy.isMember(group, person),
    isSponsor: (person, agent) => policy.agentById(agent)?.sponsors.includes(person) ?? false,
  };
}

export async function recordDecision(deps: AppDeps, req: DecisionRequest): Promise<DecisionResult> {
  const authority = authorityFrom(deps.policy);
  const vote = { person: req.person, platform: req.platform, vote: req.vote, reason: req.reason ?? null };
  const result = await mutate(deps, req.proposalId, (p, now) => applyVote(p, vote, authority, now));
  return { outcome: result.outcome, proposal: result.proposal };
}
