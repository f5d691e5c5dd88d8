// Approve with edits on Slack: the card's Edit button opens this modal (views.open with the
// click's trigger_id), one input per editable parameter, prefilled with its value now. Its
// submission comes back signed like every interaction (interactions.ts) and goes through
// editClick; private_metadata carries the proposal id and the version the person saw, so an
// edit made against a card someone has since voted on or edited is refused as stale.

import type { types } from '@slack/bolt';
import type { CardModel } from '../../src/core/card.ts';
import { editFieldLabel, type EditField } from '../../src/core/revision-text.ts';
import { showHidden } from '../../src/core/visible-text.ts';
import { plain } from './text.ts';

export const ACTION_EDIT = 'countersign_edit';
export const EDIT_CALLBACK = 'countersign_edit_values';
/** Each input's block_id is this prefix and the parameter's name; its action_id is EDIT_VALUE. */
export const EDIT_BLOCK_PREFIX = 'edit:';
export const EDIT_VALUE = 'value';

/** Slack's longest plain_text_input: a longer value is not offered for editing here (the console takes it). */
const MAX_INPUT = 3000;

export interface EditModalMeta {
  /** Proposal id. */
  p: string;
  /** The version the person saw. */
  v: number;
  /** Channel of the card, for a private reply. */
  c: string | null;
}

/** The Edit button, beside Approve and Deny; only on cards whose rule lets something be edited (and not step-up ones: Slack cannot vouch for a sign-in). */
export function editButton(card: CardModel): types.Button | null {
  if (!card.actionable || card.edit === undefined || card.stepUp !== null || slackFields(card.edit.fields).length === 0) return null;
  return { type: 'button', action_id: ACTION_EDIT, text: { type: 'plain_text', text: 'Edit…', emoji: false }, value: card.proposalId };
}

function slackFields(fields: readonly EditField[]): EditField[] {
  return fields.filter((f) => f.value.length <= MAX_INPUT);
}

export function editModal(card: Pick<CardModel, 'action' | 'risk' | 'edit' | 'revision'>, meta: EditModalMeta): types.ModalView {
  const fields = slackFields(card.edit?.fields ?? []);
  const head = `${card.action.tool} · ${card.action.operation} on ${card.action.target}`;
  const blocks: types.KnownBlock[] = [
    { type: 'section', text: plain(showHidden(head), 3000) },
    {
      type: 'context',
      elements: [plain(`Change what must change, then Approve: your approval counts for the edited action only, approvals of the version before no longer count, and the policy decides the edited action again (${card.risk} risk now).`, 2000)],
    },
  ];
  if (card.revision !== undefined) blocks.push({ type: 'context', elements: [plain(card.revision, 2000)] });
  for (const f of fields) {
    blocks.push({
      type: 'input',
      block_id: `${EDIT_BLOCK_PREFIX}${f.key}`.slice(0, 255),
      label: plain(editFieldLabel(f), 2000),
      element: { type: 'plain_text_input', action_id: EDIT_VALUE, initial_value: f.value, multiline: f.multiline, max_length: MAX_INPUT },
    });
  }
  return {
    type: 'modal',
    callback_id: EDIT_CALLBACK,
    private_metadata: JSON.stringify(meta),
    title: { type: 'plain_text', text: 'Approve with edits' },
    submit: { type: 'plain_text', text: 'Approve' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks,
  };
}

/** The typed values by parameter name, from a submitted modal's state (an emptied input is ""). */
export function editedValues(state: Record<string, Record<string, { value?: string | null }>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [blockId, actions] of Object.entries(state)) {
    if (!blockId.startsWith(EDIT_BLOCK_PREFIX)) continue;
    out[blockId.slice(EDIT_BLOCK_PREFIX.length)] = actions[EDIT_VALUE]?.value ?? '';
  }
  return out;
}

export function parseEditMeta(text: string): EditModalMeta | null {
  try {
    const m = JSON.parse(text) as Partial<EditModalMeta>;
    if (typeof m.p !== 'string' || typeof m.v !== 'number' || !Number.isInteger(m.v)) return null;
    return { p: m.p, v: m.v, c: typeof m.c === 'string' ? m.c : null };
  } catch {
    return null;
  }
}
