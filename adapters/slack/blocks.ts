// The Block Kit rendering of countersign's card: a pure function of CardModel, so it is
// unit-tested without Slack. Everything the agent wrote goes through `plain()` (plain_text,
// escaped, emoji off) or `neutralize()`; mrkdwn carries only countersign's own words.

import type { types } from '@slack/bolt';
import { approvalsLine, approversOf, factsLine, RISK_MARK, STATUS_HEADLINE, STATUS_MARK, summaryLine, type CardModel, type ThreadReply } from '../../src/core/card.ts';

import { escapeEntities, mrkdwn, neutralize, plain, prettyJson, slackDate, truncate } from './text.ts';

type Block = types.KnownBlock;

export const ACTION_APPROVE = 'countersign_approve';
export const ACTION_DENY = 'countersign_deny';
export const DENY_CALLBACK = 'countersign_deny_reason';
export const REASON_BLOCK = 'reason';
export const REASON_ACTION = 'reason';

/** Block Kit limits the renderer keeps to (Slack refuses the whole message otherwise). */
export const LIMITS = { header: 150, section: 3000, field: 2000, fields: 10, blocks: 50, fallback: 3000, buttonValue: 2000 } as const;






/** The notification text (what push notifications and screen readers show). */
export function fallbackText(card: CardModel): string {
  return truncate(neutralize(summaryLine(card)), LIMITS.fallback);
}

// Names and reasons stay plain text; only the time needs mrkdwn (Slack's date token).
function resultBlocks(card: CardModel): Block[] {
  const r = card.resolution;
  const head = `${STATUS_MARK[card.status]} ${STATUS_HEADLINE[card.status]}`;
  if (r === null) return [{ type: 'section', text: plain(head, LIMITS.section) }];
  const by = r.by === null ? '' : ` by ${r.status === 'approved' ? approversOf(card).join(', ') || r.by : r.by}`;
  const blocks: Block[] = [
    { type: 'section', text: plain(`${head}${by}`, LIMITS.section) },
    { type: 'context', elements: [mrkdwn(`${STATUS_HEADLINE[r.status]} ${slackDate(r.at)}`)] },
  ];
  if (r.reason !== null && r.reason !== '') blocks.push({ type: 'section', text: plain(`Reason: ${r.reason}`, LIMITS.section) });
  return blocks;
}

function buttons(card: CardModel): Block {
  const approve: types.Button = {
    type: 'button',
    action_id: ACTION_APPROVE,
    text: { type: 'plain_text', text: 'Approve', emoji: false },
    style: 'primary',
    value: card.proposalId,
  };
  // A critical action gets a second look before it counts; the dialog is Slack's own.
  if (card.risk === 'critical') {
    approve.confirm = {
      title: plain('Approve a critical action?', 100),
      text: plain(`${card.action.tool} · ${card.action.operation} on ${card.action.target}`, 300),
      confirm: plain('Approve', 30),
      deny: plain('Go back', 30),
      style: 'danger',
    };
  }
  const deny: types.Button = {
    type: 'button',
    action_id: ACTION_DENY,
    text: { type: 'plain_text', text: 'Deny…', emoji: false },
    style: 'danger',
    value: card.proposalId,
  };
  return { type: 'actions', block_id: `decide:${card.proposalId}`.slice(0, 255), elements: [approve, deny] };
}

export function renderCard(card: CardModel): { text: string; blocks: Block[] } {
  const { action } = card;
  const header = `${RISK_MARK[card.risk]} ${STATUS_HEADLINE[card.status]} · ${card.risk} risk`;
  const blocks: Block[] = [
    { type: 'header', text: plain(header, LIMITS.header) },
    { type: 'section', text: plain(card.intent, LIMITS.section) },
    {
      type: 'section',
      fields: [
        plain(`Agent\n${card.agent}`, LIMITS.field),
        plain(`Action\n${action.tool} · ${action.operation}`, LIMITS.field),
        plain(`Target\n${action.target}`, LIMITS.field),
        plain(`Risk\n${card.risk} · rule ${card.rule}`, LIMITS.field),
        plain(`Approvals\n${approvalsLine(card)}`, LIMITS.field),
        mrkdwn(`Expires\n${card.expiresAt === null ? 'never' : slackDate(card.expiresAt)}`, LIMITS.field),
      ],
    },
  ];
  if (Object.keys(action.parameters).length > 0) {
    blocks.push({ type: 'section', text: plain(`Parameters\n${prettyJson(action.parameters, 2500)}`, LIMITS.section) });
  }
  const facts = factsLine(card);
  blocks.push({ type: 'context', elements: [plain(facts, LIMITS.field)] });
  // The id is countersign's own (p_ + base32), safe to show as code for copying into /countersign show.
  const ref = mrkdwn(`Proposal \`${escapeEntities(card.proposalId)}\` · <${card.link}|details>`, LIMITS.field);
  blocks.push({ type: 'context', elements: card.reasons.length > 0 ? [ref, plain(card.reasons.join('; '), LIMITS.field)] : [ref] });
  blocks.push({ type: 'divider' });
  if (card.actionable) blocks.push(buttons(card));
  else blocks.push(...resultBlocks(card));
  return { text: fallbackText(card), blocks: blocks.slice(0, LIMITS.blocks) };
}

export function renderReply(reply: ThreadReply): { text: string; blocks: Block[] } {
  return { text: truncate(neutralize(reply.text), LIMITS.fallback), blocks: [{ type: 'section', text: plain(reply.text, LIMITS.section) }] };
}

export interface DenyModalMeta {
  /** Proposal id. */
  p: string;
  /** Channel of the card, for the private reply if the deny is refused. */
  c: string | null;
  /** Whether a reason is required (high and critical risk). */
  r: boolean;
}

export function denyModal(card: Pick<CardModel, 'proposalId' | 'action' | 'risk'>, meta: DenyModalMeta): types.ModalView {
  return {
    type: 'modal',
    callback_id: DENY_CALLBACK,
    private_metadata: JSON.stringify(meta),
    title: { type: 'plain_text', text: 'Deny proposal' },
    submit: { type: 'plain_text', text: 'Deny' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: plain(`${card.action.tool} · ${card.action.operation} on ${card.action.target}`, LIMITS.section) },
      {
        type: 'input',
        block_id: REASON_BLOCK,
        optional: !meta.r,
        label: { type: 'plain_text', text: meta.r ? `Reason (required for ${card.risk} risk)` : 'Reason (optional)' },
        element: { type: 'plain_text_input', action_id: REASON_ACTION, multiline: true, max_length: 1000 },
      },
    ],
  };
}
