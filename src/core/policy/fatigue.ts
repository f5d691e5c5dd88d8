import type { Decision, Proposal } from '../proposal.ts';
import { evaluate, type CompiledPolicy, type PolicyInput } from './evaluate.ts';
import { isStricter } from './stricter.ts';

// isStricter lives beside stricter() (stricter.ts); still exported here, where it was first.
export { isStricter };

// Approval fatigue: a flood of cards trains people to click Approve, and a payment cut into
// pieces under a rule's threshold never reaches the rule meant for it. Two defences, both on
// unless the policy says otherwise: per-agent limits on proposals that need people, and
// split-transaction aggregation (amounts to one target summed over a window). Pure: the store
// enforces the limits in its create step, submit-proposal.ts reads the window and decides.

/** How many proposals needing people an agent may send a minute, and have pending at once. */
export interface RateLimits {
  readonly proposals_per_minute: number;
  readonly pending: number;
}

/** The policy's `limits:` with the defaults filled in. */
export interface LimitsSpec extends RateLimits {
  /** At most one alert card per route and agent in this window. */
  readonly alert_every_ms: number;
  /** Per-agent overrides (`limits.agents.<id>`), each key falling back to the top level. */
  readonly agents: ReadonlyMap<string, RateLimits>;
}

/** A rule's own `limits:` (per agent, for the proposals it sends to people); a key not given is no limit of that kind. */
export interface RuleLimits {
  readonly proposals_per_minute: number | null;
  readonly pending: number | null;
}

export const AGGREGATE_FIELDS = ['tool', 'operation', 'target'] as const;
export type AggregateField = (typeof AGGREGATE_FIELDS)[number];

/** The policy's `aggregation:` with the defaults filled in. */
export interface AggregationSpec {
  readonly window_ms: number;
  /** Always per agent and currency besides. */
  readonly by: readonly AggregateField[];
}

export const DEFAULT_LIMITS: LimitsSpec = Object.freeze({ proposals_per_minute: 30, pending: 100, alert_every_ms: 5 * 60_000, agents: new Map() });
export const DEFAULT_AGGREGATION: AggregationSpec = Object.freeze({ window_ms: 24 * 3_600_000, by: Object.freeze(['tool', 'target'] as AggregateField[]) });

/** What the store checks for one new pending proposal: 0 is "no limit". */
export interface CreateLimits {
  per_minute: number;
  pending: number;
  rule_per_minute: number;
  rule_pending: number;
  /** The rule whose own limits apply (its name is part of the store's key). */
  rule: string;
}

export type LimitName = 'proposals_per_minute' | 'pending' | 'rule.proposals_per_minute' | 'rule.pending';

export function limitsFor(limits: LimitsSpec, agent: string, rule: string, ruleLimits: RuleLimits | null | undefined): CreateLimits {
  const own = limits.agents.get(agent) ?? limits;
  return {
    per_minute: own.proposals_per_minute,
    pending: own.pending,
    rule_per_minute: ruleLimits?.proposals_per_minute ?? 0,
    rule_pending: ruleLimits?.pending ?? 0,
    rule,
  };
}

/** Says which limit in words an approver and the agent's operator both read. */
export function limitText(agent: string, limit: LimitName, max: number, rule: string): string {
  switch (limit) {
    case 'proposals_per_minute':
      return `agent ${agent} sent more than ${max} proposals needing people in a minute (limits.proposals_per_minute)`;
    case 'pending':
      return `agent ${agent} has ${max} proposals waiting for people (limits.pending)`;
    case 'rule.proposals_per_minute':
      return `agent ${agent} sent more than ${max} proposals for rule "${rule}" in a minute (rule ${rule}: limits.proposals_per_minute)`;
    case 'rule.pending':
      return `agent ${agent} has ${max} proposals for rule "${rule}" waiting for people (rule ${rule}: limits.pending)`;
  }
}

/** How a group compares a field: "EUR", "eur" and " Eur" are one currency, " CH_1" and "ch_1" one target (summing too much is safe, too little is the dodge). */
const sameText = (v: string) => v.normalize('NFKC').trim().toLowerCase();

/** The proposals an aggregate sums: one agent's, per currency, and per the policy's `by`. */
export function aggregateGroup(spec: AggregationSpec, p: Pick<Proposal, 'agent' | 'action' | 'context'>): string {
  const parts: Record<string, string> = { agent: p.agent, currency: sameText(p.context.value.currency) };
  for (const field of spec.by) parts[field] = sameText(p.action[field]);
  return JSON.stringify(Object.keys(parts).sort().map((k) => [k, parts[k]]));
}

/** A group's member: what a create or a revision puts in it, and what a commit takes out. */
export function aggregateMember(p: Pick<Proposal, 'id' | 'context'>): string {
  return `${p.id}|${p.context.value.amount}`;
}

/** Whether a proposal in its group still counts: live, or failed with its outcome unknown (the request left: the money may have moved). */
export function countsInAggregate(p: Pick<Proposal, 'status' | 'execution'>): boolean {
  if (p.status === 'failed') return p.execution?.outcome === 'unknown';
  return p.status === 'pending' || p.status === 'approved' || p.status === 'executing' || p.status === 'succeeded';
}

/** Recorded in the decision when the sum of earlier proposals made it stricter. */
export interface DecisionAggregate {
  /** This proposal's amount and the earlier ones' in the window. */
  total: number;
  /** Earlier proposals counted. */
  count: number;
  /** Their ids, newest first, at most AGGREGATE_IDS_SHOWN. */
  proposals: string[];
  window_ms: number;
  currency: string;
}

export const AGGREGATE_IDS_SHOWN = 20;

/** "89,991 EUR": amounts as an approver reads them. */
export function formatAmount(amount: number, currency: string): string {
  const n = amount.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return currency === '' ? n : `${n} ${currency}`;
}

/** "24h", "5 min", "30s": a window as people read it. */
export function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)}s`;
}

/** The reason a stricter decision carries, naming the earlier proposals and the total. */
export function aggregateReason(agent: string, p: Pick<Proposal, 'action'>, agg: DecisionAggregate, rule: string): string {
  const shown = agg.proposals.slice(0, 5).join(', ');
  const more = agg.count > 5 ? `, … ${agg.count - 5} more` : '';
  const earlier = `${agg.count} earlier proposal${agg.count === 1 ? '' : 's'}`;
  return `with ${earlier} of ${agent} to ${p.action.tool} ${p.action.target} in the last ${formatWindow(agg.window_ms)} (${shown}${more}) the total is ${formatAmount(agg.total, agg.currency)}: rule "${rule}" applies`;
}

/**
 * The decision on the sum of `input`'s amount and `others`' (its group's window, read by the
 * caller), with the reason and the aggregate it was made on, when that is stricter than
 * `alone`; else `alone` itself.
 */
export function decideOnSum(policy: CompiledPolicy, input: PolicyInput, alone: Decision, others: readonly { id: string; amount: number }[]): Decision {
  if (others.length === 0) return alone;
  const { context } = input;
  const total = others.reduce((sum, e) => sum + e.amount, context.value.amount);
  const summed = evaluate(policy, { ...input, context: { ...context, value: { ...context.value, amount: total } } });
  if (!isStricter(summed, alone)) return alone;
  const agg: DecisionAggregate = {
    total,
    count: others.length,
    proposals: others.slice(0, AGGREGATE_IDS_SHOWN).map((e) => e.id),
    window_ms: policy.aggregation.window_ms,
    currency: context.value.currency,
  };
  return { ...summed, reasons: [aggregateReason(input.agent.id, input, agg, summed.rule), ...summed.reasons], aggregate: agg };
}
