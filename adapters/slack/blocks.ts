// The Block Kit rendering of countersign's card: a pure function of CardModel, so it is
// unit-tested without Slack. Everything the agent wrote goes through `plain()` (plain_text,
// escaped, emoji off) or `neutralize()`; mrkdwn carries only countersign's own words.

import type { types } from '@slack/bolt';
import { fitCard, TextCutter, type TextCut } from '../../src/core/card-fit.ts';
import { approvalsLine, decidedBy, factsLine, FULL_PROPOSAL, prettyJson, RISK_MARK, SHORTENED_NOTE, STATUS_HEADLINE, STATUS_MARK, summaryLine, type CardModel, type ThreadReply } from '../../src/core/card.ts';
import { showHidden } from '../../src/core/visible-text.ts';
import { editButton } from './edit-modal.ts';

import { escapeEntities, mrkdwn, neutralize, plain, slackDate, truncate } from './text.ts';

type Block = types.KnownBlock;

export const ACTION_APPROVE = 'countersign_approve';
export const ACTION_DENY = 'countersign_deny';
/** The link button of a step-up card; Slack still sends its click, which only needs an ack. */
export const ACTION_OPEN_CONSOLE = 'countersign_open_console';
export const DENY_CALLBACK = 'countersign_deny_reason';
export const REASON_BLOCK = 'reason';
export const REASON_ACTION = 'reason';

/**
 * Block Kit limits the renderer keeps to (Slack refuses the whole message otherwise). `message`:
 * the blocks' JSON, in characters; Slack refuses a message whose blocks hold more than about
 * 12,000 characters of text (`msg_blocks_too_long`, counted its own undocumented way: bolt-js
 * #2509, #2867), so the whole JSON, markup included, is kept under 11,000.
 */
export const LIMITS = { header: 150, section: 3000, field: 2000, fields: 10, blocks: 50, fallback: 3000, buttonValue: 2000, blockId: 255, message: 11_000 } as const;

/** Parameters shown before the card is measured (Slack's section limit counts the escaped text). */
const PARAMETERS_SHOWN = 2500;

/** The notification text (what push notifications and screen readers show). */
export function fallbackText(card: CardModel): string {
  return truncate(neutralize(summaryLine(card)), LIMITS.fallback);
}

/** Text someone outside countersign wrote, cut to the layout's share and to Slack's limit (which counts it escaped). */
function outside(cutter: TextCutter, text: string, kind: keyof TextCut, max: number, prefix = ''): types.PlainTextElement {
  const kept = `${prefix}${cutter.text(text, kind, max)}`;
  cutter.mark(escapeEntities(kept).length > max);
  return plain(kept, max);
}

// Names and reasons stay plain text; only the time needs mrkdwn (Slack's date token).
function resultBlocks(card: CardModel, cutter: TextCutter): Block[] {
  const r = card.resolution;
  const head = `${STATUS_MARK[card.status]} ${STATUS_HEADLINE[card.status]}`;
  if (r === null) return [{ type: 'section', text: plain(head, LIMITS.section) }];
  const by = decidedBy(card);
  const blocks: Block[] = [
    { type: 'section', text: plain(`${head}${by}`, LIMITS.section) },
    { type: 'context', elements: [mrkdwn(`${STATUS_HEADLINE[r.status]} ${slackDate(r.at)}`)] },
  ];
  if (r.reason !== null && r.reason !== '') blocks.push({ type: 'section', text: outside(cutter, r.reason, 'other', LIMITS.section, 'Reason: ') });
  return blocks;
}

function approveButton(card: CardModel): types.Button {
  // Slack cannot vouch for a fresh sign-in: a step-up proposal is approved on its page instead.
  if (card.stepUp !== null) {
    return { type: 'button', action_id: ACTION_OPEN_CONSOLE, text: { type: 'plain_text', text: card.stepUp.approveLabel, emoji: false }, url: card.link, value: card.proposalId };
  }
  const approve: types.Button = {
    type: 'button',
    action_id: ACTION_APPROVE,
    text: { type: 'plain_text', text: 'Approve', emoji: false },
    style: 'primary',
    value: card.proposalId,
  };
  const c = card.confirmApproval;
  // The dialog is Slack's own, shown before the click is sent.
  if (c !== null) approve.confirm = { title: plain(c.question, 100), text: plain(c.summary, 300), confirm: plain(c.confirm, 30), deny: plain(c.back, 30), style: 'danger' };
  return approve;
}

function buttons(card: CardModel): Block {
  const approve = approveButton(card);
  const deny: types.Button = {
    type: 'button',
    action_id: ACTION_DENY,
    text: { type: 'plain_text', text: 'Deny…', emoji: false },
    style: 'danger',
    value: card.proposalId,
  };
  // Slack wants a new block_id in each version of a message (a reused one can keep stale state);
  // the handlers read the proposal from the button's value, never from the block_id.
  const edit = editButton(card);
  return { type: 'actions', block_id: `decide:${card.proposalId}:v${card.version}`.slice(0, LIMITS.blockId), elements: edit === null ? [approve, deny] : [approve, edit, deny] };
}

/** `parameters`: the card's parameters as shown (pretty JSON, made once per card), null when it has none. */
function layout(card: CardModel, parameters: string | null, cut: TextCut): Block[] {
  const { action } = card;
  const cutter = new TextCutter(cut);
  const header = `${RISK_MARK[card.risk]} ${STATUS_HEADLINE[card.status]} · ${card.risk} risk`;
  const intent: Block = { type: 'section', text: outside(cutter, card.intent, 'intent', LIMITS.section) };
  const fields: Block = {
    type: 'section',
    fields: [
      outside(cutter, card.agent, 'other', LIMITS.field, 'Agent\n'),
      outside(cutter, `${action.tool} · ${action.operation}`, 'other', LIMITS.field, 'Action\n'),
      outside(cutter, action.target, 'other', LIMITS.field, 'Target\n'),
      plain(`Risk\n${card.risk} · rule ${card.rule}`, LIMITS.field),
      plain(`Approvals\n${approvalsLine(card)}`, LIMITS.field),
      mrkdwn(`Expires\n${card.expiresAt === null ? 'never' : slackDate(card.expiresAt)}`, LIMITS.field),
    ],
  };
  const body: Block[] = [intent, fields];
  if (parameters !== null) {
    const shown = cutter.text(parameters, 'parameters', PARAMETERS_SHOWN);
    const text = `Parameters\n${shown === '' ? '…' : shown}`;
    cutter.mark(escapeEntities(text).length > LIMITS.section);
    body.push({ type: 'section', text: plain(text, LIMITS.section) });
  }
  body.push({ type: 'context', elements: [outside(cutter, factsLine(card), 'other', LIMITS.field)] });
  // The id is countersign's own (p_ + base32), safe to show as code for copying into /countersign show.
  const ref = mrkdwn(`Proposal \`${escapeEntities(card.proposalId)}\` · <${card.link}|details>`, LIMITS.field);
  body.push({ type: 'context', elements: card.reasons.length > 0 ? [ref, outside(cutter, card.reasons.join('; '), 'other', LIMITS.field)] : [ref] });
  body.push({ type: 'divider' });
  if (card.actionable && card.stepUp !== null) body.push({ type: 'context', elements: [plain(card.stepUp.note, LIMITS.field)] });
  if (card.actionable) body.push(buttons(card));
  else body.push(...resultBlocks(card, cutter));
  // Said first, before the text they are about; the cut note only once the layout knows it cut.
  const notes: (types.PlainTextElement | types.MrkdwnElement)[] = [];
  if (card.hiddenNote !== null) notes.push(plain(card.hiddenNote, LIMITS.field));
  if (cutter.shortened) notes.push(mrkdwn(`${SHORTENED_NOTE} <${card.link}|${FULL_PROPOSAL}>`, LIMITS.field));
  const head: Block[] = [{ type: 'header', text: plain(header, LIMITS.header) }];
  if (notes.length > 0) head.push({ type: 'context', elements: notes });
  // Where an escalated proposal went, and why, right under the header of every card of it.
  if (card.escalated !== undefined && card.escalated.length > 0) head.push({ type: 'section', text: plain(card.escalated.join('\n'), LIMITS.section) });
  // An approver's edit is said before anything else: what is approved is not what the agent asked for.
  if (card.revision !== undefined) head.push({ type: 'section', text: plain(`✏️ ${card.revision}`, LIMITS.section) });
  return [...head, ...body].slice(0, LIMITS.blocks);
}

export function renderCard(card: CardModel): { text: string; blocks: Block[] } {
  const parameters = Object.keys(card.action.parameters).length > 0 ? prettyJson(card.action.parameters) : null;
  const blocks = fitCard((cut) => layout(card, parameters, cut), (b) => JSON.stringify(b).length, LIMITS.message);
  return { text: fallbackText(card), blocks };
}

/** A Slack user id as the policy names one: the only thing ever put in a `<@…>` mention. */
const SLACK_USER_ID = /^[UW][A-Z0-9]{1,30}$/;

export function renderReply(reply: ThreadReply): { text: string; blocks: Block[] } {
  // A reply can quote an agent's or a person's words (a cancel reason, an executor's answer).
  const shown = showHidden(reply.text);
  const blocks: Block[] = [{ type: 'section', text: plain(shown, LIMITS.section) }];
  // A reminder calls on its approvers: Slack notifies a `<@U…>` written in mrkdwn.
  const mentions = (reply.mentions ?? []).filter((u) => SLACK_USER_ID.test(u)).slice(0, 50);
  if (mentions.length > 0) blocks.push({ type: 'context', elements: [mrkdwn(mentions.map((u) => `<@${u}>`).join(' '), LIMITS.field)] });
  const text = truncate(neutralize(shown), LIMITS.fallback - 30 * mentions.length);
  return { text: mentions.length === 0 ? text : `${text} ${mentions.map((u) => `<@${u}>`).join(' ')}`, blocks };
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
      // Built from the stored proposal, not the card: its hidden characters are shown here.
      { type: 'section', text: plain(showHidden(`${card.action.tool} · ${card.action.operation} on ${card.action.target}`), LIMITS.section) },
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
