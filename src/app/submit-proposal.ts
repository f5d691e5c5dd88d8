import { canonicalJson, sha256Hex, type KnownAuditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import { eventAbout } from '../core/lifecycle.ts';
import { AgentRevokedError, ConflictError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { toolCallProposal } from '../core/mcp-tool-call.ts';
import { evaluate } from '../core/policy/evaluate.ts';
import type { AgentSpec } from '../core/policy/model.ts';
import type { CreateOptions, ImplicitKey } from '../core/ports.ts';
import type { Decision, Proposal, ProposalInput, Status } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { draftWithFatigue, refuseForLimit, StaleAggregateError, withFreshAggregate } from './fatigue.ts';
import { auditRefusal } from './refusal-audit.ts';

export interface SubmitResult {
  proposal: Proposal;
  /** False when the idempotency key returned an earlier proposal. */
  created: boolean;
}

const STATUS_FOR_EFFECT = { allow: 'approved', deny: 'rejected', approve: 'pending' } as const satisfies Record<string, Status>;

/** What the agent asked for, as one comparable value (idempotent retries must ask for the same). */
function requestDigest(p: Pick<Proposal, 'intent' | 'action' | 'context'>): string {
  return sha256Hex(canonicalJson({ intent: p.intent, action: p.action, context: p.context }));
}

/** How long the same signed submission (without an idempotency key) returns the first proposal. */
export const IMPLICIT_KEY_TTL_SECONDS = 600;

/** What the agent's credential says about the request, beyond who it is. */
export interface SubmitRequest {
  /**
   * Names the signed request; a submission without an idempotency key is deduped by it, so a
   * retried (or replayed) request never puts a second card in front of people.
   */
  requestKey?: string | null;
  /** When the agent made the request, as its credential says (the signed timestamp, a JWT's iat), in ms; null when it says nothing. */
  signedAt?: number | null;
}

/**
 * A revoked agent is refused by the store's create itself (no read of its own on the way in),
 * then audited here, within the agent's share of the refusal limiter: AgentRevokedError,
 * nothing stored. The revocation is compared with when the agent proposed: the earlier of its
 * signed time and now, so a request signed before a revocation and sent after the restore is
 * still one made before it. `created_at` stays the time countersign received it.
 */
export async function submitProposal(deps: AppDeps, agent: AgentSpec, input: ProposalInput, request: SubmitRequest = {}): Promise<SubmitResult> {
  const now = deps.clock.now();
  const { requestKey = null, signedAt = null } = request;
  const implicit = requestKey === null ? undefined : { key: requestKey, ttlSeconds: IMPLICIT_KEY_TTL_SECONDS };
  // The 201 says what the policy decided and nothing a follow-up does (the token is handed on a
  // later read, the card is posted from the outbox): the agent does not wait for them.
  const { draft, result } = await withFreshAggregate(async () => {
    const d = await draftWithFatigue(deps, agent, asMcpCall(deps, input), now);
    return { draft: d, result: await storeProposal(deps, d, implicit, signedAt, 'background') };
  });
  if (!result.created) {
    // What the agent sent: an approver's edit (revision.proposed keeps it) does not make the retry another request.
    const sent = result.existing.revision?.proposed;
    if (requestDigest({ ...result.existing, ...(sent === undefined ? {} : sent) }) !== requestDigest(draft.proposal)) {
      throw new ConflictError(`idempotency_key "${input.idempotency_key ?? ''}" was already used for a different proposal (${result.existing.id})`);
    }
    return { proposal: result.existing, created: false };
  }
  return { proposal: draft.proposal, created: true };
}

/**
 * A proposal for an MCP server's tool sent through the agent API is read the way the gateway
 * reads the call: target and context come from its arguments and the policy's `mcp.servers`
 * entry, not from what the agent declared, so the API is no way around the gateway's reading
 * (an `amount` of 5000 in the arguments with a declared value of 5 is a proposal for 5000).
 */
function asMcpCall(deps: Pick<AppDeps, 'policy'>, input: ProposalInput): ProposalInput {
  const server = deps.policy.mcpServers.get(input.action.tool);
  if (server === undefined) return input;
  const read = toolCallProposal(server, input.action.operation, input.action.parameters, input.intent);
  return input.idempotency_key === undefined ? read : { ...read, idempotency_key: input.idempotency_key };
}

/** A new proposal and its first audit events, as the policy decides it; nothing stored yet. */
export interface ProposalDraft {
  proposal: Proposal;
  events: KnownAuditEvent[];
  /** What the store's create checks besides (the agent's limits, the aggregate group: app/fatigue.ts). */
  create?: CreateOptions;
}

/** `decision`: one made already (on an aggregate's total, app/fatigue.ts); by default the policy's on this input. */
export function draftProposal(
  deps: Pick<AppDeps, 'policy'>,
  agent: AgentSpec,
  input: ProposalInput,
  now: number,
  decision: Decision = evaluate(deps.policy, { agent: { id: agent.id, sponsors: [...agent.sponsors] }, intent: input.intent, action: input.action, context: input.context }),
): ProposalDraft {
  const status = STATUS_FOR_EFFECT[decision.effect];
  const proposal: Proposal = {
    id: newId('p', now),
    agent: agent.id,
    idempotency_key: input.idempotency_key ?? null,
    intent: input.intent,
    action: input.action,
    context: input.context,
    decision,
    status,
    created_at: now,
    expires_at: status === 'pending' ? now + decision.ttl_ms : null,
    approvals: [],
    resolution: status === 'pending' ? null : { status, by: 'policy', reason: decision.reasons.join('; ') || null, at: now },
    version: 1,
  };
  const events = [
    eventAbout(proposal, now, 'proposal_received', `agent:${agent.id}`, {
      idempotency_key: proposal.idempotency_key,
      intent: input.intent,
      action: input.action,
      context: input.context,
    }),
    eventAbout(proposal, now, 'policy_decided', 'policy', { ...decision }),
    ...(status === 'pending' ? [] : [eventAbout(proposal, now, 'decided', 'policy', { status, rule: decision.rule })]),
  ];
  return { proposal, events };
}

/**
 * Stores a draft (refused for a revoked agent: AgentRevokedError, audited; over a limit:
 * RateLimitedError, audited; StaleAggregateError: decide again) and hands it to the
 * after-commit flow; an implicit key that names an earlier proposal returns that one instead.
 */
export async function storeProposal(
  deps: AppDeps,
  { proposal, events, create }: ProposalDraft,
  implicit: ImplicitKey | undefined,
  signedAt: number | null,
  /** `background`: the follow-ups run after this returns (CommitFlow.dispatchInBackground). */
  followUps: 'await' | 'background' = 'await',
): Promise<{ created: true } | { created: false; existing: Proposal }> {
  const proposedAt = signedAt === null ? proposal.created_at : Math.min(signedAt, proposal.created_at);
  let result = await deps.store.create(proposal, events, implicit, proposedAt, create);
  if (!result.created && 'refused' in result && result.refused === 'rate_limited' && (result.limit === 'pending' || result.limit === 'rule.pending')) {
    // Over `pending`: the set may still hold proposals decided by a replica from before the
    // limits; once they are dropped (at most every few seconds) the create is tried again.
    const rule = result.limit === 'pending' ? null : proposal.decision.rule;
    const dropped = (await deps.store.prunePending?.(proposal.agent, rule, proposal.created_at).catch(() => 0)) ?? 0;
    if (dropped > 0) result = await deps.store.create(proposal, events, implicit, proposedAt, create);
  }
  if (!result.created && 'refused' in result) {
    if (result.refused === 'stale_aggregate') throw new StaleAggregateError();
    if (result.refused === 'rate_limited') throw await refuseForLimit(deps, proposal, result.limit, result.max, result.retry_after_ms);
    await auditRefusal(deps, proposal, 'proposal of a revoked agent refused', { revoked_at: iso(result.revoked_at) }, { reason: 'agent_revoked', revoked_at: iso(result.revoked_at) });
    throw new AgentRevokedError(proposal.agent, result.revoked_at);
  }
  if (!result.created) return result;
  deps.metrics.proposalSubmitted(proposal.decision.effect);
  const committed = { before: null, after: proposal, events };
  await (followUps === 'await' ? deps.commits.dispatch(committed) : deps.commits.dispatchInBackground(committed));
  return { created: true };
}
