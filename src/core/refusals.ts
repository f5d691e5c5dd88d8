// Why a click is refused, as a code and in words, shared by the state machine (lifecycle.ts,
// which re-exports it) and every renderer that says so. Kept apart from lifecycle.ts for size.
import { approverGroups } from './escalation.ts';
import type { Proposal } from './proposal.ts';

/** Every reason a click can be refused for; renderers that read one back from a link check it against this list. */
export const REFUSAL_REASONS = [
  'unknown_person',
  'not_an_approver',
  'sponsor',
  'agent_unknown',
  'agent_revoked',
  'already_voted',
  'reason_required',
  'step_up_required',
  'expired',
  'not_pending',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** How recent a sign-in must be for an approval of a `step_up: true` rule to count. */
export const STEP_UP_WINDOW_MS = 5 * 60_000;

/** Why a click on `p` was refused, in words (lower case; refusalSentence in card.ts frames it). */
export function refusalMessage(why: RefusalReason, p: Proposal): string {
  switch (why) {
    case 'unknown_person':
      return 'you are not a person in the policy';
    case 'not_an_approver':
      return `only members of ${approverGroups(p).map((g) => `"${g}"`).join(' or ') || '"(none)"'} may decide on this proposal`;
    case 'sponsor':
      return `you sponsor agent "${p.agent}", so you cannot approve its actions`;
    case 'expired':
      // The click that finds it overdue ends it: denied, not expired, when the rule says so.
      return p.decision.on_timeout === 'deny' ? 'nobody decided in time, so the policy denied this proposal (on_timeout: deny)' : 'this proposal has expired';
    case 'not_pending':
      return `this proposal is already ${p.status}`;
    case 'already_voted':
      return 'your decision on this proposal is already counted';
    case 'reason_required':
      return `a reason is required to deny a ${p.decision.risk}-risk proposal`;
    case 'agent_revoked':
      return `agent "${p.agent}" is revoked, so none of its proposals will run`;
    case 'agent_unknown':
      return `agent "${p.agent}" is no longer in the policy, so none of its proposals will run`;
    case 'step_up_required':
      return `approvals of this proposal count only in the console, from someone who signed in there within the last ${STEP_UP_WINDOW_MS / 60_000} minutes`;
  }
}
