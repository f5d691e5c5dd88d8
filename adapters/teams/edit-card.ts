import type { CardModel } from '../../src/core/card.ts';
import { editFieldLabel } from '../../src/core/revision-text.ts';
import { safe } from './text.ts';

// Approve with edits on Teams: an "Edit…" button on the card opens (Action.ShowCard) one
// Input.Text per editable parameter, prefilled, and an Action.Execute "Approve with edits"
// whose data carries the proposal id and the version the person saw. The invoke comes back
// through the Bot Framework's signed channel like every click (invoke.ts, handleEditAction).

export const VERB_EDIT = 'countersign.edit';
/** Each input's id is this prefix and the parameter's name. */
export const EDIT_INPUT_PREFIX = 'edit:';
/** An Input.Text's longest value countersign offers for editing here (a longer one is left to the console). */
const MAX_INPUT = 4000;

type Element = Record<string, unknown>;

/** The Edit… action beside Approve and Deny, or null (nothing editable; a step-up card: Teams cannot vouch for a sign-in). */
export function editAction(card: CardModel): Element | null {
  const fields = (card.edit?.fields ?? []).filter((f) => f.value.length <= MAX_INPUT);
  if (!card.actionable || card.edit === undefined || card.stepUp !== null || fields.length === 0) return null;
  const inputs: Element[] = fields.map((f) => ({
    type: 'Input.Text',
    id: `${EDIT_INPUT_PREFIX}${f.key}`,
    // The key and value are the agent's words: neutralised in the label; the value must stay itself.
    label: safe(editFieldLabel(f), 200),
    value: f.value,
    isMultiline: f.multiline,
    maxLength: MAX_INPUT,
  }));
  const note = 'Your approval counts for the edited action only; approvals of the version before no longer count, and the policy decides the edited action again.';
  return {
    type: 'Action.ShowCard',
    title: 'Edit…',
    card: {
      type: 'AdaptiveCard',
      body: [{ type: 'TextBlock', text: note, wrap: true, isSubtle: true, size: 'Small' }, ...inputs],
      actions: [{ type: 'Action.Execute', title: 'Approve with edits', verb: VERB_EDIT, data: { proposal: card.proposalId, version: card.edit.version }, associatedInputs: 'auto', style: 'positive' }],
    },
  };
}

/** The typed values by parameter name, from an invoke's data (inputs arrive beside the action's own data). */
export function editedInputs(data: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) if (k.startsWith(EDIT_INPUT_PREFIX) && typeof v === 'string') out[k.slice(EDIT_INPUT_PREFIX.length)] = v;
  return out;
}
