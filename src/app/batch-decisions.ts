import { newId, PROPOSAL_ID_PATTERN } from '../core/ids.ts';
import { ValidationError } from '../core/errors.ts';
import { canDecide, denyNeedsReason, isOverdue, type RefusalReason, type RevokedAgents } from '../core/lifecycle.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal, Risk, Vote } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { platformsFor } from './notify-platforms.ts';
import { authorityFrom, personFor, recordDecision, refuseUnknownUser } from './record-decision.ts';

// Deciding several proposals of one agent under one rule at once. Each is still decided on its
// own through recordDecision (eligibility, sponsor, quorum, kill switch, its own audit events),
// only marked with the batch it came in. Critical-risk and step-up rules are never batched: a
// critical approval asks for a confirmation of its own facts, a step-up one for a fresh sign-in.

/** The most proposals one batch decides; a larger request is refused whole. */
export const MAX_BATCH = 50;
/** How many pending proposals are looked through for batches (soonest expiry first). */
const PENDING_SCAN = 500;

export interface PendingBatch {
  agent: string;
  rule: string;
  risk: Risk;
  /** Soonest expiry first. */
  proposals: Proposal[];
}

/** Whether the rule a proposal matched lets it be decided in a batch at all, whoever decides. */
export function batchableRule(p: Pick<Proposal, 'decision'>): boolean {
  return p.decision.effect === 'approve' && p.decision.risk !== 'critical' && p.decision.step_up !== true;
}

/** Whether `person` may decide `p` in a batch on `platform` now (its route lists the platform). */
export function batchableFor(deps: Pick<AppDeps, 'policy'>, p: Proposal, person: string, platform: PlatformId, now: number, revoked: RevokedAgents): boolean {
  return batchableRule(p) && platformsFor(deps, p).includes(platform) && canDecide(p, person, authorityFrom(deps.policy), now, revoked).ok;
}

/** The pending proposals `person` may decide on `platform`, grouped by (agent, rule); groups in order of their soonest expiry. */
export async function pendingBatches(deps: AppDeps, person: string, platform: PlatformId): Promise<PendingBatch[]> {
  const now = deps.clock.now();
  const revoked = await deps.store.revokedAgents([...deps.policy.agents.keys()]);
  const groups = new Map<string, PendingBatch>();
  for (const p of await deps.store.listPending(PENDING_SCAN)) {
    if (!batchableFor(deps, p, person, platform, now, revoked)) continue;
    const key = JSON.stringify([p.agent, p.decision.rule]);
    const group = groups.get(key) ?? { agent: p.agent, rule: p.decision.rule, risk: p.decision.risk, proposals: [] };
    group.proposals.push(p);
    groups.set(key, group);
  }
  return [...groups.values()];
}

export interface BatchRequest {
  person: string;
  platform: PlatformId;
  vote: Vote;
  reason?: string | null;
  /** The proposals the person saw and chose: never more than these are decided. */
  proposalIds: readonly string[];
  /** The agent and rule every one of them must be of (what the person was shown). */
  agent: string;
  rule: string;
}

/** Skipped: nothing to decide any more (decided or expired meanwhile, already voted, gone), or its rule changed since it was chosen. */
export type SkipReason = 'not_pending' | 'already_voted' | 'expired' | 'not_found' | 'changed';

export interface BatchResult {
  /** Marks every approval_recorded (and approval_refused) event of this batch. */
  batch: string;
  vote: Vote;
  /** Ids whose vote counted. */
  decided: string[];
  /** Of those, the ids still waiting for others' approvals (a quorum of more than one). */
  waiting: string[];
  skipped: { id: string; why: SkipReason }[];
  /** Refused for the person (not an approver, sponsor, revoked agent, …): audited like any refused click. */
  refused: { id: string; why: RefusalReason; message: string }[];
}

const SKIPS: ReadonlySet<string> = new Set<SkipReason>(['not_pending', 'already_voted', 'expired', 'not_found']);

function refuseRequest(field: string, message: string): never {
  throw new ValidationError(`invalid batch: ${field}: ${message}`, [{ path: field, code: 'invalid_batch', message }]);
}

/** The ids named, each once: between 1 and MAX_BATCH of them, every one a proposal id. */
function checkIds(named: readonly string[]): string[] {
  const ids = [...new Set(named)];
  if (ids.length === 0) refuseRequest('proposalIds', 'choose at least one proposal');
  if (ids.length > MAX_BATCH) refuseRequest('proposalIds', `at most ${MAX_BATCH} proposals at once (got ${ids.length})`);
  ids.forEach((id, i) => PROPOSAL_ID_PATTERN.test(id) || refuseRequest(`proposalIds[${i}]`, 'not a proposal id'));
  return ids;
}

/** The request's ids, checked before any vote: all of the named agent and rule, none critical or step-up. */
async function checkRequest(deps: AppDeps, req: BatchRequest): Promise<{ ids: string[]; proposals: Map<string, Proposal> }> {
  const ids = checkIds(req.proposalIds);
  const found = await Promise.all(ids.map((id) => deps.store.get(id)));
  const proposals = new Map<string, Proposal>();
  let reasonNeeded = false;
  found.forEach((p, i) => {
    if (p === null) return;
    const field = `proposalIds[${i}]`;
    if (p.agent !== req.agent || p.decision.rule !== req.rule) refuseRequest(field, `${p.id} is agent "${p.agent}" under rule "${p.decision.rule}", not "${req.agent}" under "${req.rule}"`);
    if (p.decision.risk === 'critical') refuseRequest(field, `${p.id} is critical risk: decide it on its own`);
    if (p.decision.step_up === true) refuseRequest(field, `${p.id} needs a fresh sign-in (step_up): decide it on its own`);
    if (p.decision.effect !== 'approve') refuseRequest(field, `${p.id} is not decided by people`);
    if (!platformsFor(deps, p).includes(req.platform)) refuseRequest(field, `${p.id} is not decided on ${req.platform}: its route does not list it`);
    reasonNeeded ||= denyNeedsReason(p.decision.risk);
    proposals.set(p.id, p);
  });
  if (req.vote === 'deny' && reasonNeeded && (req.reason ?? '').trim() === '') refuseRequest('reason', 'a reason is required to deny high-risk proposals');
  return { ids, proposals };
}

/**
 * Decides the named proposals one by one. The whole request is refused, nothing recorded, when
 * any id is of another agent or rule, critical, step-up, or not decided on this platform, or a
 * deny needs a reason it lacks. A proposal decided meanwhile is skipped (without a refusal in
 * the log: a repeated click leaves the log as the first one did); every other refusal is
 * recorded by recordDecision as for a single click.
 */
export async function decideBatch(deps: AppDeps, req: BatchRequest): Promise<BatchResult> {
  const { ids, proposals } = await checkRequest(deps, req);
  return recordEach(deps, req, ids, proposals);
}

export type SelectionRequest = Omit<BatchRequest, 'agent' | 'rule'>;

/**
 * A selection across agents and rules (the console's checkboxes): each (agent, rule) group is
 * checked as decideBatch checks one, all before the first vote, and recorded as one batch.
 */
export async function decideSelection(deps: AppDeps, req: SelectionRequest): Promise<BatchResult> {
  const ids = checkIds(req.proposalIds);
  const groups = new Map<string, BatchRequest>();
  const missing: string[] = [];
  for (const id of ids) {
    const p = await deps.store.get(id);
    if (p === null) {
      missing.push(id);
      continue;
    }
    const key = JSON.stringify([p.agent, p.decision.rule]);
    const group = groups.get(key) ?? { ...req, agent: p.agent, rule: p.decision.rule, proposalIds: [] };
    groups.set(key, { ...group, proposalIds: [...group.proposalIds, id] });
  }
  const checked: Awaited<ReturnType<typeof checkRequest>>[] = [];
  for (const group of groups.values()) checked.push(await checkRequest(deps, group));
  const all = new Map(checked.flatMap((c) => [...c.proposals]));
  return recordEach(deps, req, [...checked.flatMap((c) => c.ids), ...missing], all);
}

/** Why a batch has nothing to do on `p` for `person`: decided, past its deadline (the sweep ends it), or `person` among its votes, as themselves or as a delegate. */
function nothingToDo(p: Proposal, person: string, now: number): Exclude<SkipReason, 'not_found' | 'changed'> | null {
  if (p.status !== 'pending') return 'not_pending';
  if (isOverdue(p, now)) return 'expired';
  return p.approvals.some((a) => a.person === person || a.delegate === person) ? 'already_voted' : null;
}

async function recordEach(deps: AppDeps, req: SelectionRequest, ids: readonly string[], proposals: ReadonlyMap<string, Proposal>): Promise<BatchResult> {
  const result: BatchResult = { batch: newId('b', deps.clock.now()), vote: req.vote, decided: [], waiting: [], skipped: [], refused: [] };
  const reason = req.reason?.trim() || null;
  for (const id of ids) {
    const p = proposals.get(id);
    if (p === undefined) {
      result.skipped.push({ id, why: 'not_found' });
      continue;
    }
    const before = nothingToDo(p, req.person, deps.clock.now());
    if (before !== null) {
      result.skipped.push({ id, why: before });
      continue;
    }
    // What was checked must still hold on the version the vote lands on (an edit decides a
    // proposal again), and there must still be something to do on it: one decided or voted on
    // meanwhile (a double submit, a click on its card) is skipped here, not refused in the log.
    let skip: SkipReason = 'changed';
    const same = (now: Proposal) => {
      skip = nothingToDo(now, req.person, deps.clock.now()) ?? 'changed';
      return skip === 'changed' && now.agent === p.agent && now.decision.rule === p.decision.rule && batchableRule(now) && now.decision.risk === p.decision.risk;
    };
    const { outcome, declined } = await recordDecision(deps, { proposalId: id, person: req.person, platform: req.platform, vote: req.vote, reason, batch: result.batch, onlyIf: same });
    if (declined === true) {
      result.skipped.push({ id, why: skip });
      continue;
    }
    if (outcome.kind === 'refused') {
      if (SKIPS.has(outcome.why)) result.skipped.push({ id, why: outcome.why as SkipReason });
      else result.refused.push({ id, why: outcome.why, message: outcome.message });
      continue;
    }
    result.decided.push(id);
    if (outcome.kind === 'counted') result.waiting.push(id);
  }
  return result;
}

/** A batch from a platform user: strangers are refused (each named proposal audited, as a stranger's click). */
export async function decideBatchClick(
  deps: AppDeps,
  click: Omit<BatchRequest, 'person'> & { user: string; trusted: boolean },
): Promise<BatchResult | { stranger: true }> {
  const person = personFor(deps, click);
  if (person === null) {
    for (const id of [...new Set(click.proposalIds)].filter((id) => PROPOSAL_ID_PATTERN.test(id)).slice(0, MAX_BATCH)) {
      await refuseUnknownUser(deps, { proposalId: id, platform: click.platform, platformUser: click.user, vote: click.vote });
    }
    return { stranger: true };
  }
  const { user: _user, trusted: _trusted, ...rest } = click;
  return decideBatch(deps, { ...rest, person });
}

const SKIP_WORDS: Record<SkipReason, string> = {
  not_pending: 'already decided',
  already_voted: 'already decided by you',
  expired: 'expired',
  not_found: 'no longer there',
  changed: 'changed since you chose them (decide those on their cards)',
};

/** What to tell the person, the same on every platform: "Approved 7, 1 already decided." */
export function batchSummary(r: BatchResult): string {
  const waiting = r.waiting.length === 0 ? '' : ` (${r.waiting.length === r.decided.length ? 'all' : r.waiting.length} waiting for more approvals)`;
  const done = `${r.vote === 'approve' ? 'Approved' : 'Denied'} ${r.decided.length}${waiting}`;
  const counts = new Map<string, number>();
  for (const s of r.skipped) counts.set(SKIP_WORDS[s.why], (counts.get(SKIP_WORDS[s.why]) ?? 0) + 1);
  const parts = [done, ...[...counts].map(([words, n]) => `${n} ${words}`)];
  if (r.refused.length > 0) {
    const first = r.refused[0]!;
    parts.push(`${r.refused.length} refused (${first.message}${r.refused.length > 1 ? ', …' : ''})`);
  }
  return `${parts.join(', ')}.`;
}
