import type { AppDeps } from '../../src/app/deps.ts';
import { cardFor } from '../../src/app/deliver-notification.ts';
import { decideClick } from '../../src/app/record-decision.ts';
import { editClick } from '../../src/app/edit-proposal.ts';
import { NotFoundError, ValidationError } from '../../src/core/errors.ts';
import { valuesFromForm } from '../../src/core/revision-text.ts';
import { editedInputs, VERB_EDIT } from './edit-card.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { Proposal, Vote } from '../../src/core/proposal.ts';
import { TEAMS } from './platform.ts';
import { CARD_CONTENT_TYPE, REASON_INPUT, REASON_MAX, VERB_APPROVE, VERB_DENY, renderCard, type AdaptiveCard } from './cards.ts';

// An Approve or Deny click (`adaptiveCard/action` invoke). The decision goes through
// decideClick (src/app/record-decision.ts), atomic in the store: a double click, a re-delivered invoke or two replicas
// taking it at once count one vote. The answer is the refreshed card for the clicker (with a
// private notice when the click did not count); everyone else's copy is updated by the
// notify queue's update job, which recordDecision's follow-up enqueues.

export interface Clicker {
  /** AAD object id (`from.aadObjectId`). */
  aadObjectId: string | null;
  /** Teams user id (`from.id`, `29:…`), for the audit when there is no AAD id. */
  userId: string;
  tenant: string | null;
}

export interface InvokeInput {
  verb: string;
  data: Record<string, unknown>;
  clicker: Clicker;
  /** The tenant the card's channel belongs to (binding or policy), when known. */
  channelTenant: string | null;
}

export interface InvokeContext {
  deps: AppDeps;
  logger: Logger;
  /** MICROSOFT_APP_TENANT_ID: clicks from any other tenant are strangers. */
  appTenant: string | null;
}

export type InvokeAnswer =
  | { statusCode: 200; type: typeof CARD_CONTENT_TYPE; value: AdaptiveCard }
  | { statusCode: 200; type: 'application/vnd.microsoft.activity.message'; value: string }
  | { statusCode: 400; type: 'application/vnd.microsoft.error'; value: { code: string; message: string } };

/** Whether the clicker's Entra object id can be believed: only ids of the expected tenant count (a guest or another tenant's user can carry any). */
export function trustedTenant(clickerTenant: string | null, expected: string | null): boolean {
  if (expected === null) return true;
  return clickerTenant !== null && clickerTenant.toLowerCase() === expected.toLowerCase();
}

const message = (text: string): InvokeAnswer => ({ statusCode: 200, type: 'application/vnd.microsoft.activity.message', value: text });
const NOT_OURS: InvokeAnswer = { statusCode: 400, type: 'application/vnd.microsoft.error', value: { code: 'BadRequest', message: 'not a countersign action' } };

/** Who clicked, for decideClick and editClick: the Entra object id, believed only from the expected tenant. */
function clickedBy(ctx: InvokeContext, input: InvokeInput): { user: string; trusted: boolean } {
  const { clicker } = input;
  return { user: clicker.aadObjectId ?? clicker.userId, trusted: clicker.aadObjectId !== null && trustedTenant(clicker.tenant, ctx.appTenant ?? input.channelTenant) };
}

export async function handleCardAction(ctx: InvokeContext, input: InvokeInput): Promise<InvokeAnswer> {
  const { deps } = ctx;
  if (input.verb === VERB_EDIT) return handleEditAction(ctx, input);
  const vote: Vote | null = input.verb === VERB_APPROVE ? 'approve' : input.verb === VERB_DENY ? 'deny' : null;
  const proposalId = input.data['proposal'];
  if (vote === null || typeof proposalId !== 'string' || proposalId === '') {
    return NOT_OURS;
  }
  const card = (p: Proposal, notice?: string): InvokeAnswer => ({
    statusCode: 200,
    type: CARD_CONTENT_TYPE,
    value: renderCard(cardFor(deps, p), notice === undefined ? {} : { notice }),
  });
  try {
    const raw = input.data[REASON_INPUT];
    const reason = vote === 'deny' && typeof raw === 'string' && raw.trim() !== '' ? raw.trim().slice(0, REASON_MAX) : null;
    const result = await decideClick(deps, { proposalId, platform: TEAMS, ...clickedBy(ctx, input), vote, reason });
    if (result.proposal === null) return message(result.notice ?? 'This proposal no longer exists.');
    return card(result.proposal, result.notice ?? undefined);
  } catch (e) {
    if (e instanceof NotFoundError) return message('This proposal no longer exists.');
    ctx.logger.error({ err: (e as Error).message, proposal_id: proposalId }, 'a Teams click failed');
    return message('countersign could not record that click; please try again.');
  }
}

/** "Approve with edits": the inputs become the edit (edit-proposal.ts); the answer is the refreshed card, with a notice when it did not count. */
async function handleEditAction(ctx: InvokeContext, input: InvokeInput): Promise<InvokeAnswer> {
  const { deps } = ctx;
  const proposalId = input.data['proposal'];
  const version = input.data['version'];
  if (typeof proposalId !== 'string' || proposalId === '' || typeof version !== 'number' || !Number.isInteger(version)) {
    return NOT_OURS;
  }
  const card = (p: Proposal, notice: string | null): InvokeAnswer => ({ statusCode: 200, type: CARD_CONTENT_TYPE, value: renderCard(cardFor(deps, p), notice === null ? {} : { notice }) });
  try {
    const p = await deps.store.get(proposalId);
    if (p === null) return message('This proposal no longer exists.');
    let values: Record<string, unknown>;
    try {
      values = valuesFromForm(p, editedInputs(input.data));
    } catch (e) {
      if (e instanceof ValidationError) return card(p, `Not saved: ${e.message}.`);
      throw e;
    }
    const result = await editClick(deps, { proposalId, platform: TEAMS, ...clickedBy(ctx, input), version, values });
    return result.proposal === null ? message(result.notice ?? 'This proposal no longer exists.') : card(result.proposal, result.notice);
  } catch (e) {
    if (e instanceof NotFoundError) return message('This proposal no longer exists.');
    ctx.logger.error({ err: (e as Error).message, proposal_id: proposalId }, 'a Teams edit failed');
    return message('countersign could not record that edit; please try again.');
  }
}

