// The Adaptive Card rendering of countersign's card: a pure function of CardModel (the same
// facts, in the same order, as the Slack card), unit-tested without Teams. Everything the
// agent or a person wrote goes through `safe()`; only countersign's own words are written raw.

import { fitCard, payloadBytes, TextCutter, type TextCut } from '../../src/core/card-fit.ts';
import { approvalsLine, decidedBy, factsLine, FULL_PROPOSAL, prettyJson, RISK_MARK, SHORTENED_NOTE, STATUS_HEADLINE, STATUS_MARK, summaryLine, type CardModel, type ThreadReply } from '../../src/core/card.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { showHidden } from '../../src/core/visible-text.ts';
import { editAction } from './edit-card.ts';
import { neutralize, safe, shortTime, truncate } from './text.ts';

export type AdaptiveElement = Record<string, unknown>;
export interface AdaptiveCard {
  type: 'AdaptiveCard';
  $schema: string;
  version: '1.5';
  body: AdaptiveElement[];
  actions?: AdaptiveElement[];
  msteams?: { width: 'Full' };
  [key: string]: unknown;
}

export const CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
export const VERB_APPROVE = 'countersign.approve';
export const VERB_DENY = 'countersign.deny';
export const REASON_INPUT = 'reason';
export const REASON_MAX = 1000;

/**
 * Teams refuses a message with an Adaptive Card over about 28 KB (413 MessageSizeTooBig; the Bot
 * Framework counts a message as UTF-16). The card's JSON is kept under 24 KB counted both as
 * UTF-8 and as UTF-16, leaving room for the summary (at most 500 characters) and the activity's
 * envelope (ids, conversation, channel data).
 */
export const CARD_MAX_BYTES = 24 * 1024;

/** The longest each text is before the card is measured. */
const SHOWN = { intent: 3000, target: 1000, action: 300, agent: 200, parameters: 2500, line: 1000 } as const;

const text = (t: string, extra: AdaptiveElement = {}): AdaptiveElement => ({ type: 'TextBlock', text: t, wrap: true, ...extra });

/** Text someone outside countersign wrote, cut to the layout's share, then neutralised. */
const outside = (cutter: TextCutter, t: string, kind: keyof TextCut, max: number): string => safe(cutter.text(t, kind, max), max);

/** The notification line (activity summary): what a toast or a screen reader shows. */
export function fallbackText(card: CardModel): string {
  return safe(summaryLine(card), 500);
}

function decisionElements(card: CardModel): AdaptiveElement[] {
  const required = card.reasonRequired;
  const reason: AdaptiveElement = {
    type: 'Input.Text',
    id: REASON_INPUT,
    isMultiline: true,
    maxLength: REASON_MAX,
    label: required ? `Reason to deny (required for ${card.risk} risk)` : 'Reason to deny (optional)',
    placeholder: 'Why this should not happen',
    ...(required ? { isRequired: true, errorMessage: 'A reason is required to deny this proposal.' } : {}),
  };
  const data = { proposal: card.proposalId };
  const deny: AdaptiveElement = { type: 'Action.Execute', title: 'Deny', verb: VERB_DENY, data, associatedInputs: 'auto', style: 'destructive' };
  // Teams cannot vouch for a fresh sign-in: a step-up proposal is approved on its page instead.
  if (card.stepUp !== null) {
    const open: AdaptiveElement = { type: 'Action.OpenUrl', title: card.stepUp.approveLabel, url: card.link };
    return [text(card.stepUp.note, { isSubtle: true, size: 'Small' }), reason, { type: 'ActionSet', actions: [open, deny] }];
  }
  // Approve sends no inputs, so a required deny reason never blocks an approval.
  const execute: AdaptiveElement = { type: 'Action.Execute', title: 'Approve', verb: VERB_APPROVE, data, associatedInputs: 'none', style: 'positive' };
  const c = card.confirmApproval;
  // Adaptive Cards have no confirm dialog: the confirmation is a second, deliberate click.
  const approve: AdaptiveElement =
    c === null
      ? execute
      : {
          type: 'Action.ShowCard',
          title: 'Approve…',
          card: {
            type: 'AdaptiveCard',
            body: [text(safe(`${c.question} ${c.summary}`, 400))],
            actions: [{ ...execute, title: `${c.confirm} (critical)` }],
          },
        };
  const edit = editAction(card);
  return [reason, { type: 'ActionSet', actions: edit === null ? [approve, deny] : [approve, edit, deny] }];
}

function resultElements(card: CardModel, cutter: TextCutter): AdaptiveElement[] {
  const r = card.resolution;
  const head = `${STATUS_MARK[card.status]} ${STATUS_HEADLINE[card.status]}`;
  if (r === null) return [text(head, { weight: 'Bolder' })];
  const by = decidedBy(card);
  const out = [text(safe(`${head}${by}`), { weight: 'Bolder' }), text(`${STATUS_HEADLINE[r.status]} ${shortTime(r.at)} UTC`, { isSubtle: true, size: 'Small', spacing: 'None' })];
  if (r.reason !== null && r.reason !== '') out.push(text(`Reason: ${outside(cutter, r.reason, 'other', SHOWN.line)}`));
  return out;
}

export interface RenderOptions {
  /** A line only the clicker sees (the invoke's refreshed card): a refusal, a missing reason. */
  notice?: string;
}

/** `parameters`: the card's parameters as shown (pretty JSON, made once per card), null when it has none. */
function layout(card: CardModel, parameters: string | null, options: RenderOptions, cut: TextCut): AdaptiveCard {
  const { action } = card;
  const cutter = new TextCutter(cut);
  const body: AdaptiveElement[] = [];
  body.push(
    text(outside(cutter, card.intent, 'intent', SHOWN.intent)),
    {
      type: 'FactSet',
      facts: [
        { title: 'Agent', value: outside(cutter, card.agent, 'other', SHOWN.agent) },
        { title: 'Action', value: outside(cutter, `${action.tool} · ${action.operation}`, 'other', SHOWN.action) },
        { title: 'Target', value: outside(cutter, action.target, 'other', SHOWN.target) },
        { title: 'Risk', value: safe(`${card.risk} · rule ${card.rule}`, 300) },
        { title: 'Approvals', value: safe(approvalsLine(card), 1000) },
        { title: 'Expires', value: card.expiresAt === null ? 'never' : `${shortTime(card.expiresAt)} UTC` },
      ],
    },
  );
  if (parameters !== null) {
    const shown = cutter.text(parameters, 'parameters', SHOWN.parameters);
    body.push(text('Parameters', { weight: 'Bolder', spacing: 'Medium' }), text(shown === '' ? '…' : safe(shown, SHOWN.parameters), { fontType: 'Monospace', spacing: 'None' }));
  }
  body.push(text(outside(cutter, factsLine(card), 'other', SHOWN.line), { isSubtle: true, size: 'Small' }));
  // The id is countersign's own (p_ + base32), shown for `show <id>`.
  body.push(text(`Proposal ${card.proposalId}`, { isSubtle: true, size: 'Small', spacing: 'None', fontType: 'Monospace' }));
  if (card.reasons.length > 0) body.push(text(outside(cutter, card.reasons.join('; '), 'other', SHOWN.line), { isSubtle: true, size: 'Small', spacing: 'None' }));
  body.push(...(card.actionable ? decisionElements(card) : resultElements(card, cutter)).map((e, i) => (i === 0 ? { ...e, separator: true, spacing: 'Medium' } : e)));
  // Said first, before the text they are about; the cut note only once the layout knows it cut.
  const head: AdaptiveElement[] = [];
  if (options.notice !== undefined) head.push(text(safe(options.notice, 500), { color: 'Attention', weight: 'Bolder' }));
  head.push(text(`${RISK_MARK[card.risk]} ${STATUS_HEADLINE[card.status]} · ${card.risk} risk`, { size: 'Medium', weight: 'Bolder', style: 'heading' }));
  if (card.hiddenNote !== null) head.push(text(safe(card.hiddenNote, 500), { color: 'Warning', size: 'Small', spacing: 'None' }));
  // Where an escalated proposal went, and why (every card of it says so).
  for (const line of card.escalated ?? []) head.push(text(safe(line, 500), { color: 'Attention', size: 'Small', spacing: 'None' }));
  // An approver's edit: what is approved is not what the agent asked for.
  if (card.revision !== undefined) head.push(text(safe(`✏️ ${card.revision}`, 1000), { color: 'Warning', weight: 'Bolder', spacing: 'None' }));

  // countersign's own words and link: the one place a card writes a markdown link.
  if (cutter.shortened) head.push(text(`${SHORTENED_NOTE} [${FULL_PROPOSAL}](${card.link})`, { size: 'Small', spacing: 'None' }));
  return {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: '1.5',
    body: [...head, ...body],
    actions: [{ type: 'Action.OpenUrl', title: 'Details', url: card.link }],
    msteams: { width: 'Full' },
  };
}

export function renderCard(card: CardModel, options: RenderOptions = {}): AdaptiveCard {
  const parameters = Object.keys(card.action.parameters).length > 0 ? prettyJson(card.action.parameters) : null;
  return fitCard((cut) => layout(card, parameters, options, cut), (c) => payloadBytes(JSON.stringify(c)), CARD_MAX_BYTES);
}

/** A thread reply is a plain-text message (Teams renders message text as markdown too). */
export function renderReply(reply: ThreadReply): { text: string; textFormat: 'plain' } {
  // A reply can quote an agent's or a person's words (a cancel reason, an executor's answer).
  return { text: safe(showHidden(reply.text), 3000), textFormat: 'plain' };
}

/** The answer to `search`, `show` and `pending`: a card listing proposals. */
export function renderProposalList(heading: string, proposals: Proposal[], empty: string, link: (id: string) => string, extra: string[] = [], revokedAgents: ReadonlySet<string> = new Set()): AdaptiveCard {
  const body: AdaptiveElement[] = [text(safe(heading, 300), { weight: 'Bolder', size: 'Medium' })];
  if (proposals.length === 0) body.push(text(empty, { isSubtle: true }));
  for (const p of proposals) {
    // Straight from the stored proposal: its hidden characters are shown here.
    const what = showHidden(`${p.action.tool}.${p.action.operation} on ${truncate(p.action.target, 80)}`);
    body.push({
      type: 'Container',
      separator: true,
      selectAction: { type: 'Action.OpenUrl', title: 'Details', url: link(p.id) },
      items: [
        text(safe(`${p.status} · ${p.decision.risk} risk · ${p.agent}${revokedAgents.has(p.agent) ? ' (agent revoked)' : ''} · ${what}`, 400), { weight: 'Bolder' }),
        text(safe(truncate(showHidden(p.intent), 200)), { spacing: 'None' }),
        text(`${p.id}`, { isSubtle: true, size: 'Small', fontType: 'Monospace', spacing: 'None' }),
      ],
    });
  }
  for (const line of extra) body.push(text(safe(line, 4000), { fontType: 'Monospace', size: 'Small' }));
  return { type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: '1.5', body, msteams: { width: 'Full' } };
}

/** For plain message answers (usage, refusals): countersign's words with names neutralised. */
export function plainAnswer(words: string): { text: string; textFormat: 'plain' } {
  return { text: neutralize(words), textFormat: 'plain' };
}
