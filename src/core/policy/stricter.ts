import { RISKS, type Decision, type Effect, type Risk } from '../proposal.ts';

// Two decisions about (versions of) one action, combined so that neither is weakened (where an
// action is decided again after it changed: an approver's edit, src/core/revision.ts), or
// compared (a sum's decision against one alone: fatigue.ts).

const EFFECT_RANK: Readonly<Record<Effect, number>> = { allow: 0, approve: 1, deny: 2 };

function higherRisk(a: Risk, b: Risk): Risk {
  return RISKS.indexOf(a) >= RISKS.indexOf(b) ? a : b;
}

/**
 * The stricter of `first` and `second`: deny > approve > allow. Two approves give the higher
 * risk, the larger quorum, step_up and on_timeout: deny if either asks for it; route, approvers, ttl, escalate and remind stay
 * `first`'s (the card is already in front of those people, its deadline already set), and
 * `editable` keeps only what both allow. `rule` is the winner's (first's between equals);
 * reasons of both are kept, first's first. Pure.
 */
export function stricter(first: Decision, second: Decision): Decision {
  const rankA = EFFECT_RANK[first.effect];
  const rankB = EFFECT_RANK[second.effect];
  if (rankA !== rankB) {
    const winner = rankA > rankB ? first : second;
    const other = winner === first ? second : first;
    return { ...winner, risk: higherRisk(winner.risk, other.risk), reasons: unique([...winner.reasons, ...other.reasons]) };
  }
  if (first.effect !== 'approve') return { ...first, risk: higherRisk(first.risk, second.risk), reasons: unique([...first.reasons, ...second.reasons]) };
  const { step_up: _s, editable: _e, on_timeout: _t, ...base } = first;
  const editable = (first.editable ?? []).filter((k) => second.editable?.includes(k) ?? false);
  return {
    ...base,
    risk: higherRisk(first.risk, second.risk),
    reasons: unique([...first.reasons, ...second.reasons]),
    approvals_required: Math.max(first.approvals_required, second.approvals_required),
    ...(first.step_up === true || second.step_up === true ? { step_up: true as const } : {}),
    ...(editable.length > 0 ? { editable } : {}),
    // Denied at the deadline if either says so (the agent then cannot retry into an expiry); steps and reminders stay first's, like the route.
    ...(first.on_timeout === 'deny' || second.on_timeout === 'deny' ? { on_timeout: 'deny' as const } : {}),
  };
}

/**
 * Whether `b` asks more of people than `a`: deny > approve > allow; between two approvals,
 * higher risk, then more approvals, then step-up. Compared in that order, so one decision is
 * never both stricter and weaker.
 */
export function isStricter(b: Decision, a: Decision): boolean {
  const order = (d: Decision) => [EFFECT_RANK[d.effect], RISKS.indexOf(d.risk), d.approvals_required, d.step_up === true ? 1 : 0];
  const x = order(b);
  const y = order(a);
  for (let i = 0; i < x.length; i++) {
    if (x[i]! !== y[i]!) return x[i]! > y[i]!;
  }
  return false;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
