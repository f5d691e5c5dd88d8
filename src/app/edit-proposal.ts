import { toolCallProposal } from '../core/mcp-tool-call.ts';
import { evaluate } from '../core/policy/evaluate.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal } from '../core/proposal.ts';
import { applyEdit, editRefusalSentence, type EditOutcome, type Redecide } from '../core/revision.ts';
import type { AppDeps } from './deps.ts';
import { mutate } from './mutate.ts';
import { editInAggregate } from './revision-aggregate.ts';
import { authorityFrom, personFor, refuseUnknownUser } from './record-decision.ts';

// Approve with edits: the one door for every platform (Slack's modal, Teams' card inputs, the
// console's form). The edit, the policy's second decision, the approvals that no longer count
// and the editor's own approval are one commit (compare-and-set on the version), so an edit
// and a vote racing cannot both win; an edit made against an older version is refused.

export interface EditSubmission {
  proposalId: string;
  /** A person id from the policy, already matched from the platform's user. */
  person: string;
  platform: PlatformId;
  /** The version of the proposal the person saw (the card's). */
  version: number;
  values: Record<string, unknown>;
  authenticatedAt?: number | null;
}

export interface EditResult {
  outcome: EditOutcome;
  proposal: Proposal | null;
  /** What to tell the editor alone (a refusal), or null. */
  notice: string | null;
}

/** How the policy in force decides a revision of `p`, reading an MCP tool's context again from its arguments. */
export function redecideWith(policy: AppDeps['policy'], p: Proposal): Redecide {
  const spec = policy.agentById(p.agent);
  const agent = { id: p.agent, sponsors: spec === undefined ? [] : [...spec.sponsors] };
  return {
    reread(action) {
      const server = policy.mcpServers.get(action.tool);
      if (server === undefined) return null;
      const read = toolCallProposal(server, action.operation, action.parameters, p.intent);
      return { action: read.action, context: read.context };
    },
    decide: (action, context) => evaluate(policy, { agent, intent: p.intent, action, context }),
  };
}

export async function editProposal(deps: AppDeps, req: EditSubmission): Promise<EditResult> {
  const authority = authorityFrom(deps.policy);
  const revoked = await deps.store.revokedAgents([...deps.policy.agents.keys()]);
  const edit = { person: req.person, platform: req.platform, version: req.version, values: req.values, authenticatedAt: req.authenticatedAt ?? null };
  const result = await mutate(deps, req.proposalId, (p, now) => editInAggregate(deps, p, now, redecideWith(deps.policy, p), (r) => applyEdit(p, edit, authority, now, revoked, r)));
  const o = result.outcome;
  return { outcome: o, proposal: result.proposal, notice: o.kind === 'refused' ? editRefusalSentence(o, result.proposal) : null };
}

/** An edit from a platform user, before countersign knows who they are: strangers refused (and audited) as clicks are. */
export async function editClick(
  deps: AppDeps,
  click: { proposalId: string; platform: PlatformId; user: string; trusted: boolean; version: number; values: Record<string, unknown> },
): Promise<EditResult> {
  const person = personFor(deps, click);
  if (person === null) {
    const refusal = await refuseUnknownUser(deps, { proposalId: click.proposalId, platform: click.platform, platformUser: click.user, vote: 'approve' });
    const outcome: EditOutcome = { kind: 'refused', why: 'unknown_person', message: refusal.message, status: refusal.status };
    return { outcome, proposal: await deps.store.get(click.proposalId), notice: editRefusalSentence(outcome, null) };
  }
  return editProposal(deps, { proposalId: click.proposalId, person, platform: click.platform, version: click.version, values: click.values });
}
