import { evaluate, type CompiledPolicy } from '../core/policy/evaluate.ts';
import type { AuditLog, StoredAuditEvent } from '../core/ports.ts';
import { actionSchema, contextSchema, type Action, type Decision } from '../core/proposal.ts';

// "What would this policy have decided?" Past proposals are read back from the audit log
// (proposal_received carries intent, action and context; policy_decided the decision taken
// then) and evaluated against a changed policy, so a reviewer sees which decisions move
// before the change ships.

/** The parts of a decision that change what happens to a proposal. */
export interface DecisionSummary {
  effect: Decision['effect'];
  risk: Decision['risk'];
  rule: string;
  route: string | null;
  approvers: string | null;
  approvals_required: number;
  /** Only when the rule needs step-up (absent otherwise, as in the decision). */
  step_up?: true;
}

export interface ReplayedProposal {
  proposal_id: string;
  at: string;
  agent: string;
  action: Action;
  before: DecisionSummary | null;
  after: DecisionSummary;
  /** What differs, e.g. ["effect", "risk"]; never empty. */
  changed: string[];
}

export interface ReplayResult {
  replayed: number;
  /** Proposals whose recorded data could not be read back (edited or from an older version). */
  skipped: number;
  /** The proposals whose decision would move, oldest first. */
  changes: ReplayedProposal[];
  /** Replayed proposals whose decision would stay as it was. */
  unchanged: number;
  /**
   * Replayed proposals from agents this policy does not name, by agent: their requests would be
   * refused (401), so no decision is compared (the demo agent's, replayed against a first policy).
   */
  unknown_agents: Record<string, number>;
}

const PAGE = 500;
const FIELDS = ['effect', 'risk', 'rule', 'route', 'approvers', 'approvals_required', 'step_up'] as const;

function summary(d: Partial<Decision>): DecisionSummary {
  return {
    effect: d.effect ?? 'deny',
    risk: d.risk ?? 'critical',
    rule: d.rule ?? '?',
    route: d.route ?? null,
    approvers: d.approvers ?? null,
    approvals_required: d.approvals_required ?? 0,
    ...(d.step_up === true ? { step_up: true as const } : {}),
  };
}

export async function replayPolicy(
  audit: AuditLog,
  policy: CompiledPolicy,
  range: { since: number; until?: number },
  onProgress?: (scanned: number) => void,
): Promise<ReplayResult> {
  const received: StoredAuditEvent[] = [];
  const decided = new Map<string, DecisionSummary>();
  let cursor: string | undefined;
  let scanned = 0;
  do {
    const page = await audit.search({ words: [], since: range.since, ...(range.until === undefined ? {} : { until: range.until }), limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) {
      if (e.proposal_id === null) continue;
      if (e.type === 'proposal_received') received.push(e);
      else if (e.type === 'policy_decided') decided.set(e.proposal_id, summary(e.data as Partial<Decision>));
    }
    scanned += page.events.length;
    onProgress?.(scanned);
    cursor = page.next ?? undefined;
  } while (cursor !== undefined);

  let skipped = 0;
  let replayed = 0;
  let unchanged = 0;
  const unknownAgents = new Map<string, number>();
  const changes: ReplayedProposal[] = [];
  for (const e of received.reverse()) {
    const action = actionSchema.safeParse(e.data['action']);
    const context = contextSchema.safeParse(e.data['context']);
    const intent = e.data['intent'];
    if (!action.success || !context.success || typeof intent !== 'string' || e.agent === null) {
      skipped++;
      continue;
    }
    replayed++;
    const agent = policy.agentById(e.agent);
    if (agent === undefined) {
      unknownAgents.set(e.agent, (unknownAgents.get(e.agent) ?? 0) + 1);
      continue;
    }
    const after = summary(evaluate(policy, { agent: { id: e.agent, sponsors: agent.sponsors }, intent, action: action.data, context: context.data }));
    const before = decided.get(e.proposal_id!) ?? null;
    const changed = before === null ? ['(no recorded decision)'] : FIELDS.filter((f) => before[f] !== after[f]);
    if (changed.length === 0) unchanged++;
    else changes.push({ proposal_id: e.proposal_id!, at: e.at, agent: e.agent, action: action.data, before, after, changed });
  }
  return { replayed, skipped, changes, unchanged, unknown_agents: Object.fromEntries(unknownAgents) };
}
