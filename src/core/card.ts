import { iso } from './clock.ts';
import { formatAmount } from './money.ts';
import { escalationLines, stepsReached } from './escalation.ts';

import { denyNeedsReason, STEP_UP_WINDOW_MS, type Eligibility, type RefusalReason } from './lifecycle.ts';
import type { PlatformId } from './platform.ts';
import type { Approval, Decision, Proposal, ProposalContext, Action, Resolution, Status } from './proposal.ts';
import { editFields, revisionLine, type EditField } from './revision-text.ts';
import { hiddenCharactersNote, showHidden, showHiddenInJson, showHiddenOneLine, withoutPartialMark } from './visible-text.ts';

// The platform-neutral card: every chat adapter renders this same model (Block Kit,
// Adaptive Card, console HTML), so a person sees the same facts wherever they decide.
// Every string in it that came from outside countersign (the agent's words, people's reasons)
// has its hidden characters shown (visible-text.ts), once, here; the proposal itself keeps them.
// Fields a renderer shows on one line (agent, tool, operation, target, context values) show line
// breaks and tabs too, so an agent cannot add a fake line (`Approved by: cfo`) under Target.
// Markup is not escaped here: each renderer escapes for its own.

export interface CardModel {
  proposalId: string;
  /** The proposal's version, which every committed change bumps: renderers tell one rendering of a card from the next by it. */
  version: number;
  agent: string;
  intent: string;
  action: Action;
  context: ProposalContext;
  risk: Decision['risk'];
  rule: string;
  reasons: string[];
  status: Status;
  approvals: Approval[];
  approvalsRequired: number;
  expiresAt: string | null;
  /** Buttons are shown only while people can still decide. */
  actionable: boolean;
  /** Denying needs a reason (high and critical risk): renderers ask for one. */
  reasonRequired: boolean;
  /**
   * Approving asks a second time first, repeating these words (critical risk): Slack's confirm
   * dialog, Teams' second card, the console's confirm step (which its server enforces). Null when one click is enough.
   */
  confirmApproval: ApprovalConfirmation | null;
  /**
   * The rule's step_up: approvals count only on the page at `link`, from someone signed in there
   * within the last few minutes. Renderers that cannot vouch for a sign-in (chat) show a link
   * button with `approveLabel` in place of Approve, and `note`. Null for every other rule.
   */
  stepUp: { note: string; approveLabel: string } | null;
  resolution: (Omit<Resolution, 'at'> & { at: string }) | null;
  /** Where to see the proposal and its history outside chat (the platform that shows pages gives it). */
  link: string;
  /** Said on the card when some of its text had hidden characters shown as ⟪U+…⟫; null when none had. */
  hiddenNote: string | null;
  /**
   * One line per escalation step taken (escalation.ts escalationLine): where the proposal went,
   * after how long and why. Every card of the proposal shows them, the new route's and the old.
   * Absent before the first step.
   */
  escalated?: string[];
  /** "Edited: amount 24,800 → 2,000 by alice" once an approver edited the action (revision.ts); absent otherwise. */
  revision?: string;
  /**
   * The parameters a person may change before approving ("Approve with edits"), with their values
   * now, and the version the edit is made against. Absent unless pending and the rule has `editable`.
   * Renderers that cannot vouch for a sign-in leave it out of step-up cards (the edit's approval would not count).
   */
  edit?: { fields: EditField[]; version: number };
}

/** The words of the "are you sure?" step before a critical approval counts. */
export interface ApprovalConfirmation {
  question: string;
  /** What the approval lets happen, repeated: "payments · payout", the target, the value ("€24,800.00", or "none"). */
  action: string;
  target: string;
  value: string;
  /** The three in one line, for a dialog with one text. */
  summary: string;
  /** The button that approves, and the one that goes back without a vote. */
  confirm: string;
  back: string;
}

export const STEP_UP_APPROVE_LABEL = 'Approve in the console';
export const STEP_UP_NOTE = `Approvals of this proposal count only in the console, from someone who signed in there within the last ${STEP_UP_WINDOW_MS / 60_000} minutes.`;

/** Whether approving asks a second time first: where one careless click costs the most. */
export function approvalNeedsConfirmation(p: Pick<Proposal, 'decision'>): boolean {
  return p.decision.risk === 'critical';
}

function confirmation(action: Pick<Action, 'tool' | 'operation' | 'target'>, value: ProposalContext['value']): ApprovalConfirmation {
  const what = `${action.tool} · ${action.operation}`;
  const shown = valueOf(value);
  return {
    question: 'Approve a critical action?',
    action: what,
    target: action.target,
    value: shown,
    summary: `${what} on ${action.target}, value ${shown}`,
    confirm: 'Approve',
    back: 'Go back',
  };
}

export function buildApprovalCard(p: Proposal, link: string): CardModel {
  const seen = new Set<string>();
  const show = (text: string) => showHidden(text, seen);
  const oneLine = (text: string) => showHiddenOneLine(text, seen);
  const showOrNull = (text: string | null) => (text === null ? null : show(text));
  const { action, context } = p;
  const shownAction = { tool: oneLine(action.tool), operation: oneLine(action.operation), target: oneLine(action.target), parameters: showHiddenInJson(action.parameters, seen) as Action['parameters'] };
  const shownContext = { ...context, environment: oneLine(context.environment), value: { ...context.value, currency: oneLine(context.value.currency) } };
  return {
    proposalId: p.id,
    version: p.version,
    agent: oneLine(p.agent),
    intent: show(p.intent),
    action: shownAction,
    context: shownContext,
    risk: p.decision.risk,
    rule: show(p.decision.rule),
    reasons: ownReasons(p.decision).map(show),
    status: p.status,
    approvals: p.approvals.map((a) => ({ ...a, person: show(a.person), ...(a.delegate === undefined ? {} : { delegate: show(a.delegate) }), reason: showOrNull(a.reason) })),
    approvalsRequired: p.decision.approvals_required,
    expiresAt: p.expires_at === null ? null : iso(p.expires_at),
    actionable: p.status === 'pending',
    reasonRequired: denyNeedsReason(p.decision.risk),
    confirmApproval: approvalNeedsConfirmation(p) ? confirmation(shownAction, shownContext.value) : null,
    stepUp: p.decision.step_up === true ? { note: STEP_UP_NOTE, approveLabel: STEP_UP_APPROVE_LABEL } : null,
    resolution: p.resolution === null ? null : { ...p.resolution, by: showOrNull(p.resolution.by), reason: showOrNull(p.resolution.reason), at: iso(p.resolution.at) },
    link,
    // Policy words only (routes, groups, durations): nothing to show hidden characters of.
    ...(stepsReached(p) > 0 ? { escalated: escalationLines(p) } : {}),
    ...revisionParts(p, show),
    // Last: properties are evaluated in order, so every text above has been looked at.
    hiddenNote: hiddenCharactersNote(seen),
  };
}

/**
 * The rule's reasons minus the default one, `matched rule "payments"`, which only repeats the
 * rule every card names next to it ("Rule payments · matched rule "payments"" said it twice).
 */
export function ownReasons(d: Pick<Decision, 'rule' | 'reasons'>): string[] {
  return d.reasons.filter((r) => r !== `matched rule "${d.rule}"` && r !== `matched rule ${d.rule}`);
}

function revisionParts(p: Proposal, show: (text: string) => string): Pick<CardModel, 'revision' | 'edit'> {
  const line = revisionLine(p);
  // Field values are shown as they are: the input must hold the value itself for an unchanged field to stay unchanged.
  const fields = p.status === 'pending' ? editFields(p) : [];
  return { ...(line === null ? {} : { revision: show(line) }), ...(fields.length === 0 ? {} : { edit: { fields, version: p.version } }) };
}

/** Said on a card whose agent text was cut to fit its platform; renderers link `card.link` after it. */
export const SHORTENED_NOTE = 'Some of what the agent wrote is cut short to fit this card.';
export const FULL_PROPOSAL = 'See the full proposal';

/**
 * A short line under the card, in its thread. It can carry people's and agents' words (a deny
 * or cancel reason, an executor's response): renderers escape it like any card text.
 */
export interface ThreadReply {
  proposalId: string;
  kind: 'approval' | 'denial' | 'decided' | 'expired' | 'cancelled' | 'execution_started' | 'execution_finished' | 'notice';
  text: string;
  /** The platform's own user ids to call on (a reminder's approvers), for a platform that can; absent for none. Never taken from outside countersign. */
  mentions?: string[];
  /** Said only while the proposal waits (a reminder): a delivery that runs once it is decided posts nothing. */
  whilePending?: true;
}

/** Where a posted card lives, so it can be updated and replied to. */
export interface CardRef {
  platform: PlatformId;
  /** Channel / conversation id. */
  conversation: string;
  /** Message id (Slack ts, Teams activity id). */
  message: string;
  /** The escalation step whose route the card was posted to (escalation.ts); absent for the rule's own route (and in references stored before steps). */
  step?: number;
}

// The words and marks every renderer shows, so a person reads the same thing everywhere.

export const RISK_MARK: Readonly<Record<CardModel['risk'], string>> = { low: '⚪', medium: '🟡', high: '🟠', critical: '🔴' };

export const STATUS_HEADLINE: Readonly<Record<Status, string>> = {
  pending: 'Approval needed',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired without a decision',
  cancelled: 'Cancelled',
  rejected: 'Rejected by policy',
  executing: 'Approved · executing',
  succeeded: 'Approved · executed',
  failed: 'Approved · execution failed',
};

export const STATUS_MARK: Readonly<Record<Status, string>> = {
  pending: '⏳',
  approved: '✅',
  denied: '⛔',
  expired: '⌛',
  cancelled: '🚫',
  rejected: '⛔',
  executing: '⚙️',
  succeeded: '✅',
  failed: '❌',
};

/** Who a vote is from, as cards and timelines say it: "alice", or "bob for alice" (bob decided while alice was away). */
export function voterName(a: { person: string; delegate?: string }): string {
  return a.delegate === undefined ? a.person : `${a.delegate} for ${a.person}`;
}

/** People whose approvals count so far, in the order they approved. */
export function approversOf(card: CardModel): string[] {
  return card.approvals.filter((a) => a.vote === 'approve').map(voterName);
}

/** Who decided, as every card's result line says it: " by alice, bob" (everyone whose approval counted), " by the policy", or "". */
export function decidedBy(card: CardModel): string {
  const r = card.resolution;
  if (r === null || r.by === null) return '';
  if (r.by === 'policy') return r.status === 'rejected' ? '' : ' by the policy';
  return ` by ${r.status === 'approved' ? approversOf(card).join(', ') || r.by : r.by}`;
}

/** "1 of 2 approvals: alice". */
export function approvalsLine(card: CardModel): string {
  const names = approversOf(card);
  const base = `${names.length} of ${card.approvalsRequired} approval${card.approvalsRequired === 1 ? '' : 's'}`;
  return names.length === 0 ? base : `${base}: ${names.join(', ')}`;
}

/** The context's value, "€420.00" (money.ts), or "none". */
export function valueText(card: CardModel): string {
  return valueOf(card.context.value);
}

function valueOf(v: ProposalContext['value']): string {
  if (v.amount === 0 && v.currency === '') return 'none';
  return formatAmount(v.amount, v.currency);
}

/** The context facts under the action, one line; raw (renderers escape it). */
export function factsLine(card: CardModel): string {
  const c = card.context;
  return [
    `Data: ${c.data_sensitivity}`,
    `Destination: ${c.destination}`,
    `Environment: ${c.environment}`,
    `Value: ${valueText(card)}`,
    `Reversible: ${c.reversible ? 'yes' : 'no'}`,
  ].join(' · ');
}

/** One line for notifications and screen readers; raw (renderers escape it). */
export function summaryLine(card: CardModel): string {
  const what = `${card.action.tool}.${card.action.operation}`;
  return `${STATUS_HEADLINE[card.status]}: ${card.agent} wants ${what} (${card.risk} risk, ${approvalsLine(card)})`;
}

/** What a person is told when their click is refused, the same on every platform. */
export function refusalSentence(r: { why: RefusalReason; message: string }): string {
  switch (r.why) {
    case 'unknown_person':
    case 'not_an_approver':
    case 'sponsor':
      return `You are not allowed to decide on this proposal: ${r.message}.`;
    case 'already_voted':
      return `${capitalize(r.message)}.`;
    case 'expired':
    case 'not_pending':
      return `Too late: ${r.message}.`;
    case 'reason_required':
      return `${capitalize(r.message)}.`;
    case 'agent_revoked':
    case 'agent_unknown':
    case 'step_up_required':
      return `Not counted: ${r.message}.`;
  }
}

/** Said before a click, where the page knows who is looking: why this person cannot decide. */
export function eligibilityNote(e: Extract<Eligibility, { ok: false }>): string {
  // A delegate whose absent person already voted is told whose vote it was, not that they voted.
  if (e.why === 'already_voted') return e.message.startsWith('your ') ? 'You approved this proposal; waiting for others.' : `${capitalize(e.message)}.`;
  return `${capitalize(e.message)}.`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Cut to `max` characters with an ellipsis, never splitting a surrogate pair or a ⟪U+…⟫ mark. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${withoutPartialMark(cut)}…`;
}

/** Indented JSON of a parameter value, for showing (any value, even one JSON cannot hold). */
export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}
