import { canonicalJson } from './audit.ts';
import { iso } from './clock.ts';
import { firstProblem, MAX_JSON_DEPTH } from './json-input.ts';
import { ValidationError } from './errors.ts';
import { actionDigest } from './execution.ts';
import { canDecide, eventAbout, expire, refusalMessage, signInFreshEnough, type Authority, type RefusalReason, type RevokedAgents, type Step } from './lifecycle.ts';
import type { KnownAuditEvent } from './audit-events.ts';
import type { PlatformId } from './platform.ts';
import { isStricter, stricter } from './policy/stricter.ts';
import type { Action, Approval, Decision, Proposal, ProposalContext, Status } from './proposal.ts';

// Approve with edits, pure. An approver changes some of the parameters the rule lets them
// (`editable`), and that makes a revision: the proposal's `action` becomes the revised action,
// so everything downstream (the execution token's action_digest, executors, the agent's read)
// binds what was approved, never what was first proposed. The policy decides the revision
// again and the stricter of both decisions holds; approvals given to the earlier version no
// longer count (the audit keeps them), the editor's own approval counts for the revision.

/** A JSON value as parameters hold it. */
export type JsonValue = Action['parameters'][string];

export interface Change {
  key: string;
  from: JsonValue;
  to: JsonValue;
}

export interface Revision {
  /** 1 for the first edit, then 2, … */
  number: number;
  /** What the agent sent, kept through every revision. */
  proposed: { action: Action; context: ProposalContext };
  /** Person id of the last editor. */
  by: string;
  platform: PlatformId;
  at: number;
  /** Every parameter that differs from what the agent proposed: `from` proposed, `to` now. */
  changes: Change[];
  /** The version the last edit was made against: a second delivery of that same edit is a duplicate, not a stale edit. */
  edited_version: number;
  /** Approvals given to earlier versions; they no longer count. */
  superseded: Approval[];
}

/** The longest text an edit may put in a string parameter. */
export const MAX_EDIT_TEXT = 4000;

export interface EditRequest {
  person: string;
  platform: PlatformId;
  /** The proposal's version the editor saw (the card's); a different one now is a stale edit. */
  version: number;
  /** New values by parameter name. */
  values: Record<string, unknown>;
  /** As in VoteRequest: the platform's own record of the sign-in; null where it vouches for none. */
  authenticatedAt: number | null;
}

/** How the policy sees an action: a fresh decision, and (MCP tools) the context read again from its arguments. */
export interface Redecide {
  /** The context as the gateway reads it from the arguments; null when the action is not an MCP tool's. Throws ValidationError. */
  reread(action: Action): { action: Action; context: ProposalContext } | null;
  decide(action: Action, context: ProposalContext): Decision;
}

export type EditRefusal = Exclude<RefusalReason, 'already_voted' | 'reason_required'> | 'stale' | 'not_editable' | 'invalid' | 'unchanged';

export type EditOutcome =
  | { kind: 'refused'; why: EditRefusal; message: string; status: Status; field?: string }
  /** The same edit, delivered again: it already took effect. */
  | { kind: 'duplicate'; status: Status }
  | { kind: 'revised'; number: number; status: Status; counted: boolean; approvals: number; required: number; changes: Change[] };

const WHO: ReadonlySet<RefusalReason> = new Set(['unknown_person', 'not_an_approver', 'agent_unknown', 'sponsor']);

const jsonType = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);

/** Parameters whose values differ between two parameter maps (keys of `before`). */
export function diffParameters(before: Action['parameters'], after: Action['parameters']): Change[] {
  return Object.keys(before).flatMap((key) => {
    const from = before[key] as JsonValue;
    const to = after[key] as JsonValue;
    return same(from, to) ? [] : [{ key, from, to }];
  });
}

/**
 * The new values, checked: each key editable and already in the action, each value of the same
 * JSON type as the one it replaces (finite numbers, text of at most MAX_EDIT_TEXT). Throws a
 * ValidationError naming the key.
 */
export function checkEditValues(p: Pick<Proposal, 'action' | 'decision'>, values: Record<string, unknown>): Record<string, JsonValue> {
  const editable = p.decision.editable ?? [];
  const fail = (key: string, message: string): never => {
    throw new ValidationError(`${key}: ${message}`, [{ path: key, code: 'invalid_edit', message }]);
  };
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(values)) {
    if (!editable.includes(key)) fail(key, editable.length === 0 ? 'no parameter of this proposal may be edited' : `may not be edited (editable: ${editable.join(', ')})`);
    if (!Object.hasOwn(p.action.parameters, key)) fail(key, 'is not a parameter of this proposal');
    const was = jsonType(p.action.parameters[key]);
    if (jsonType(value) !== was) fail(key, `must be a ${was}, like the proposed value`);
    if (typeof value === 'number' && !Number.isFinite(value)) fail(key, 'must be a finite number');
    if (typeof value === 'string' && value.length > MAX_EDIT_TEXT) fail(key, `must be at most ${MAX_EDIT_TEXT} characters`);
    if (typeof value === 'object' && value !== null) {
      // No deeper, and no "__proto__" key, than the agent's own body may carry at action.parameters.<key>.
      const problem = firstProblem({ action: { parameters: { [key]: value } } });
      if (problem !== null) fail(key, problem.kind === 'too_deep' ? `is nested deeper than ${MAX_JSON_DEPTH} levels` : '"__proto__" is not allowed as a key');
    }
    if (typeof value === 'object' && value !== null && canonicalJson(value).length > MAX_EDIT_TEXT) fail(key, `must be at most ${MAX_EDIT_TEXT} characters of JSON`);
    out[key] = value as JsonValue;
  }
  return out;
}

/**
 * The revision's context. An MCP tool's is read again from the arguments, as the gateway reads
 * a call. Otherwise the agent's declared context stays, except its value: when
 * context.value.amount equalled the number an edited parameter had, it follows the edit (an
 * approver who lowers `amount` from 24800 to 2000 lowers the value the policy sees too).
 */
function revisedContext(p: Proposal, action: Action, edits: Record<string, JsonValue>, redecide: Redecide): { action: Action; context: ProposalContext } {
  const reread = redecide.reread(action);
  if (reread !== null) return reread;
  const amount = p.context.value.amount;
  for (const [key, to] of Object.entries(edits)) {
    const from = p.action.parameters[key];
    if (typeof from === 'number' && from === amount && typeof to === 'number') {
      if (to < 0) throw new ValidationError(`${key}: must not be negative (it is the proposal's declared value)`, [{ path: key, code: 'invalid_edit', message: 'must not be negative' }]);
      return { action, context: { ...p.context, value: { ...p.context.value, amount: to } } };
    }
  }
  return { action, context: p.context };
}

export function editRefusalMessage(why: 'stale' | 'not_editable' | 'unchanged'): string {
  switch (why) {
    case 'stale':
      return 'the proposal changed since you opened it (someone voted or edited it): look at it again, then edit';
    case 'not_editable':
      return "this proposal's rule lets no parameter be edited";
    case 'unchanged':
      return 'the edit changes nothing: approve it as proposed instead';
  }
}

/**
 * An approver's edit: checked like a vote (canDecide; an approver who approved the earlier
 * version may edit, their approval moving to the revision), then for staleness, then the values.
 * Refusals of who is asking are audited like refused votes; a stale or invalid edit stores nothing.
 */
export function applyEdit(p: Proposal, req: EditRequest, authority: Authority, now: number, revoked: RevokedAgents, redecide: Redecide): Step<EditOutcome> {
  const actor = `person:${req.person}`;
  const refuse = (why: EditRefusal, message: string, field?: string): Step<EditOutcome> => ({ outcome: { kind: 'refused', why, message, status: p.status, ...(field === undefined ? {} : { field }) }, next: null, events: [] });

  const eligible = canDecide(p, req.person, authority, now, revoked);
  const refusedEdit = (why: Exclude<EditRefusal, 'stale' | 'not_editable' | 'invalid' | 'unchanged'>, message: string): Step<EditOutcome> => {
    const refusal = eventAbout(p, now, 'approval_refused', actor, { person: req.person, platform: req.platform, vote: 'approve', why, edit: true });
    return { outcome: { kind: 'refused', why, message, status: p.status }, next: null, events: [refusal] };
  };
  // Who is asking first (a stranger learns nothing), then the deadline, then a repeat of the edit that took effect.
  if (!eligible.ok && WHO.has(eligible.why)) return refusedEdit(eligible.why as EditRefusal & RefusalReason, eligible.message);
  if (!eligible.ok && eligible.why === 'expired') {
    const expiry = expire(p, now);
    return { outcome: { kind: 'refused', why: 'expired', message: eligible.message, status: expiry.next?.status ?? p.status }, next: expiry.next, events: expiry.events };
  }
  // A repeat only when it asks for what the revision holds: other values against the same version are a stale edit, not "already recorded".
  const repeats = () => Object.entries(req.values).every(([key, value]) => Object.hasOwn(p.action.parameters, key) && jsonType(value) === jsonType(p.action.parameters[key]) && (typeof value !== 'number' || Number.isFinite(value)) && same(p.action.parameters[key], value));
  if (p.revision !== undefined && p.revision.by === req.person && p.revision.edited_version === req.version && repeats()) return { outcome: { kind: 'duplicate', status: p.status }, next: null, events: [] };
  // An approver who approved the version before may edit: their approval moves to the revision.
  if (!eligible.ok && eligible.why !== 'already_voted') return refusedEdit(eligible.why, eligible.message);
  if (req.version !== p.version) return refuse('stale', editRefusalMessage('stale'));
  if ((p.decision.editable ?? []).length === 0) return refuse('not_editable', editRefusalMessage('not_editable'));

  let edits: Record<string, JsonValue>;
  let revised: { action: Action; context: ProposalContext };
  try {
    edits = checkEditValues(p, req.values);
    const action: Action = { ...p.action, parameters: { ...p.action.parameters, ...edits } };
    revised = revisedContext(p, action, edits, redecide);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return refuse('invalid', e.message, e.issues[0]?.path);
  }
  const delta = diffParameters(p.action.parameters, revised.action.parameters);
  if (delta.length === 0) return refuse('unchanged', editRefusalMessage('unchanged'));

  const proposed = p.revision?.proposed ?? { action: p.action, context: p.context };
  const number = (p.revision?.number ?? 0) + 1;
  const fresh = redecide.decide(revised.action, revised.context);
  // The card's approvers may approve only what their group decides: an edit that makes the action
  // a rule's with other approvers would be their approval of it (stricter keeps their group).
  // Unless the card's decision asks more than that rule (an amount lowered under a smaller rule).
  if (fresh.effect === 'approve' && fresh.approvers !== p.decision.approvers && !isStricter(p.decision, fresh)) {
    const message = `the edited action falls under rule "${fresh.rule}", which ${fresh.approvers === null ? 'nobody' : `group ${fresh.approvers}`} decides, not this card's approvers (${p.decision.approvers ?? 'none'})`;
    return refuse('invalid', message, delta[0]?.key);
  }
  const combined = stricter(p.decision, fresh);
  // The rule stays the proposal's own (stores keep per-rule books on it); the revision's rule is said in the reasons and the event.
  const decision = fresh.rule === p.decision.rule ? { ...combined, rule: p.decision.rule } : { ...combined, rule: p.decision.rule, reasons: [...combined.reasons, `edited action: rule "${fresh.rule}" (${fresh.effect}, ${fresh.risk} risk)`] };
  const superseded = [...(p.revision?.superseded ?? []), ...p.approvals.filter((a) => a.vote === 'approve')];
  const revision: Revision = {
    number,
    proposed,
    by: req.person,
    platform: req.platform,
    at: now,
    changes: diffParameters(proposed.action.parameters, revised.action.parameters),
    edited_version: req.version,
    superseded,
  };
  const digest = actionDigest(revised.action);
  const revisedEvent = eventAbout(p, now, 'revised', actor, {
    number,
    by: req.person,
    platform: req.platform,
    changes: delta,
    action: revised.action,
    action_digest: digest,
    ...(same(revised.context, p.context) ? {} : { context: revised.context }),
    superseded: p.approvals.filter((a) => a.vote === 'approve').map((a) => a.person),
    decision: { effect: decision.effect, risk: decision.risk, rule: fresh.rule, approvals_required: decision.approvals_required, ...(decision.step_up === true ? { step_up: true } : {}) },
  });
  const base = { ...p, action: revised.action, context: revised.context, decision, revision, version: p.version + 1 };
  const counts = (required: number, approvals: number, status: Status, counted: boolean): EditOutcome => ({ kind: 'revised', number, status, counted, approvals, required, changes: delta });

  if (decision.effect === 'deny') {
    const reason = `the edited action is denied by policy (rule ${fresh.rule})${fresh.reasons.length > 0 ? `: ${fresh.reasons.join('; ')}` : ''}`;
    const next: Proposal = { ...base, approvals: [], status: 'denied', resolution: { status: 'denied', by: 'policy', reason, at: now } };
    return { outcome: counts(0, 0, 'denied', false), next, events: [revisedEvent, eventAbout(p, now, 'decided', 'policy', { status: 'denied', rule: fresh.rule, reason })] };
  }

  const required = decision.approvals_required;
  // The editor's approval counts only if it would under the revision's (stricter) decision.
  const counted = signInFreshEnough({ decision }, req.authenticatedAt, now);
  const signedIn = decision.step_up === true ? { signed_in_at: req.authenticatedAt === null ? null : iso(req.authenticatedAt) } : {};
  const events: KnownAuditEvent[] = [revisedEvent];
  if (!counted) {
    events.push(eventAbout(p, now, 'approval_refused', actor, { person: req.person, platform: req.platform, vote: 'approve', why: 'step_up_required', ...signedIn }));
    return { outcome: counts(required, 0, 'pending', false), next: { ...base, approvals: [] }, events };
  }
  const approvals: Approval[] = [{ person: req.person, platform: req.platform, vote: 'approve', reason: null, at: now }];
  events.push(eventAbout(p, now, 'approval_recorded', actor, { person: req.person, platform: req.platform, vote: 'approve', reason: null, approvals: 1, required, ...signedIn }));
  if (approvals.length < required) return { outcome: counts(required, 1, 'pending', true), next: { ...base, approvals }, events };
  events.push(eventAbout(p, now, 'decided', actor, { status: 'approved', approvers: [req.person], reason: null }));
  const next: Proposal = { ...base, approvals, status: 'approved', resolution: { status: 'approved', by: req.person, reason: null, at: now } };
  return { outcome: counts(required, 1, 'approved', true), next, events };
}

/** Why an edit was refused, as a sentence for the editor. */
export function editRefusalSentence(o: Extract<EditOutcome, { kind: 'refused' }>, p: Proposal | null): string {
  switch (o.why) {
    case 'invalid':
      return `Not saved: ${o.message}.`;
    case 'stale':
    case 'not_editable':
    case 'unchanged':
      return `Not saved: ${o.message}.`;
    default:
      return p === null ? `Not saved: ${o.message}.` : `Not saved: ${refusalMessage(o.why, p)}.`;
  }
}
