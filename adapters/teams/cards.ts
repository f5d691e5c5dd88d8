// The Adaptive Card rendering of countersign's card: a pure function of CardModel (the same
// facts, in the same order, as the Slack card), unit-tested without Teams. Everything the
// agent or a person wrote goes through `safe()`; only countersign's own words are written raw.

import { approvalsLine, approversOf, factsLine, RISK_MARK, STATUS_HEADLINE, STATUS_MARK, summaryLine, type CardModel, type ThreadReply } from '../../src/core/card.ts';

import type { Proposal } from '../../src/core/proposal.ts';
import { neutralize, prettyJson, safe, shortTime, truncate } from './text.ts';

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



const text = (t: string, extra: AdaptiveElement = {}): AdaptiveElement => ({ type: 'TextBlock', text: t, wrap: true, ...extra });




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
  // Approve sends no inputs, so a required deny reason never blocks an approval.
  const execute: AdaptiveElement = { type: 'Action.Execute', title: 'Approve', verb: VERB_APPROVE, data, associatedInputs: 'none', style: 'positive' };
  // Adaptive Cards have no confirm dialog: a critical approval is a second, deliberate click.
  const approve: AdaptiveElement =
    card.risk === 'critical'
      ? {
          type: 'Action.ShowCard',
          title: 'Approve…',
          card: {
            type: 'AdaptiveCard',
            body: [text(`Approve a critical action? ${safe(`${card.action.tool} · ${card.action.operation} on ${card.action.target}`, 300)}`)],
            actions: [{ ...execute, title: 'Approve (critical)' }],
          },
        }
      : execute;
  const deny: AdaptiveElement = { type: 'Action.Execute', title: 'Deny', verb: VERB_DENY, data, associatedInputs: 'auto', style: 'destructive' };
  return [reason, { type: 'ActionSet', actions: [approve, deny] }];
}

function resultElements(card: CardModel): AdaptiveElement[] {
  const r = card.resolution;
  const head = `${STATUS_MARK[card.status]} ${STATUS_HEADLINE[card.status]}`;
  if (r === null) return [text(head, { weight: 'Bolder' })];
  const by = r.by === null ? '' : ` by ${r.status === 'approved' ? approversOf(card).join(', ') || r.by : r.by}`;
  const out = [text(safe(`${head}${by}`), { weight: 'Bolder' }), text(`${STATUS_HEADLINE[r.status]} ${shortTime(r.at)} UTC`, { isSubtle: true, size: 'Small', spacing: 'None' })];
  if (r.reason !== null && r.reason !== '') out.push(text(`Reason: ${safe(r.reason, 1000)}`));
  return out;
}

export interface RenderOptions {
  /** A line only the clicker sees (the invoke's refreshed card): a refusal, a missing reason. */
  notice?: string;
}

export function renderCard(card: CardModel, options: RenderOptions = {}): AdaptiveCard {
  const { action } = card;
  const body: AdaptiveElement[] = [];
  if (options.notice !== undefined) body.push(text(safe(options.notice, 500), { color: 'Attention', weight: 'Bolder' }));
  body.push(
    text(`${RISK_MARK[card.risk]} ${STATUS_HEADLINE[card.status]} · ${card.risk} risk`, { size: 'Medium', weight: 'Bolder', style: 'heading' }),
    text(safe(card.intent)),
    {
      type: 'FactSet',
      facts: [
        { title: 'Agent', value: safe(card.agent, 200) },
        { title: 'Action', value: safe(`${action.tool} · ${action.operation}`, 300) },
        { title: 'Target', value: safe(action.target, 1000) },
        { title: 'Risk', value: safe(`${card.risk} · rule ${card.rule}`, 300) },
        { title: 'Approvals', value: safe(approvalsLine(card), 1000) },
        { title: 'Expires', value: card.expiresAt === null ? 'never' : `${shortTime(card.expiresAt)} UTC` },
      ],
    },
  );
  if (Object.keys(action.parameters).length > 0) {
    body.push(text('Parameters', { weight: 'Bolder', spacing: 'Medium' }), text(safe(prettyJson(action.parameters, 2500)), { fontType: 'Monospace', spacing: 'None' }));
  }
  const facts = factsLine(card);
  body.push(text(safe(facts, 1000), { isSubtle: true, size: 'Small' }));
  // The id is countersign's own (p_ + base32), shown for `show <id>`.
  body.push(text(`Proposal ${card.proposalId}`, { isSubtle: true, size: 'Small', spacing: 'None', fontType: 'Monospace' }));
  if (card.reasons.length > 0) body.push(text(safe(card.reasons.join('; '), 1000), { isSubtle: true, size: 'Small', spacing: 'None' }));
  body.push(...(card.actionable ? decisionElements(card) : resultElements(card)).map((e, i) => (i === 0 ? { ...e, separator: true, spacing: 'Medium' } : e)));
  return {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: '1.5',
    body,
    actions: [{ type: 'Action.OpenUrl', title: 'Details', url: card.link }],
    msteams: { width: 'Full' },
  };
}

/** A thread reply is a plain-text message (Teams renders message text as markdown too). */
export function renderReply(reply: ThreadReply): { text: string; textFormat: 'plain' } {
  return { text: safe(reply.text, 3000), textFormat: 'plain' };
}

/** The answer to `search`, `show` and `pending`: a card listing proposals. */
export function renderProposalList(heading: string, proposals: Proposal[], empty: string, link: (id: string) => string, extra: string[] = []): AdaptiveCard {
  const body: AdaptiveElement[] = [text(safe(heading, 300), { weight: 'Bolder', size: 'Medium' })];
  if (proposals.length === 0) body.push(text(empty, { isSubtle: true }));
  for (const p of proposals) {
    const what = `${p.action.tool}.${p.action.operation} on ${truncate(p.action.target, 80)}`;
    body.push({
      type: 'Container',
      separator: true,
      selectAction: { type: 'Action.OpenUrl', title: 'Details', url: link(p.id) },
      items: [
        text(safe(`${p.status} · ${p.decision.risk} risk · ${p.agent} · ${what}`, 400), { weight: 'Bolder' }),
        text(safe(truncate(p.intent, 200)), { spacing: 'None' }),
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
