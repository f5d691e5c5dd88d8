import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from '../../src/app/deps.ts';
import { editProposal } from '../../src/app/edit-proposal.ts';
import type { CardModel } from '../../src/core/card.ts';
import { ValidationError } from '../../src/core/errors.ts';
import type { Session } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { valuesFromForm } from '../../src/core/revision-text.ts';
import { html, page, type Html } from './html.ts';
import { readForm, redirect, sendConsoleJson, sendHtml, wantsJson } from './http.ts';
import { messagePage } from './views.ts';

// Approve with edits in the console: under the card's buttons, one input per editable
// parameter (prefilled) and "Approve with edits", posted with the session's CSRF token and the
// version the page showed (a card someone voted on or edited since is refused as stale).

/** Each input's name is this prefix and the parameter's name. */
export const EDIT_FIELD_PREFIX = 'edit:';

export function editFormHtml(card: CardModel, csrf: string, canApprove: boolean): Html {
  const edit = card.edit;
  if (edit === undefined || !canApprove) return html``;
  return html`<details class="edit">
    <summary>Edit before approving</summary>
    <form class="edit" method="post" action="/console/proposals/${card.proposalId}/edit">
      <input type="hidden" name="csrf" value="${csrf}">
      <input type="hidden" name="version" value="${edit.version}">
      <p class="hint">Your approval counts for the edited action only; approvals of the version before no longer count, and the policy decides the edited action again.</p>
      ${edit.fields.map((f) =>
        f.multiline
          ? html`<label><code>${f.key}</code> <textarea name="${EDIT_FIELD_PREFIX}${f.key}" rows="3" maxlength="4000">${f.value}</textarea></label>`
          : html`<label><code>${f.key}</code> <input name="${EDIT_FIELD_PREFIX}${f.key}" value="${f.value}" maxlength="4000"${f.kind === 'number' ? html` inputmode="decimal"` : ''}></label>`,
      )}
      <div class="buttons"><button type="submit" class="approve">Approve with edits</button></div>
    </form>
  </details>`;
}

export interface EditRouteContext {
  deps: AppDeps;
  req: IncomingMessage;
  res: ServerResponse;
  session: Session;
  checkCsrf(form: URLSearchParams): boolean;
  /** Whether the console decides on this proposal (its route lists the console, or step-up). */
  decidedHere(p: Proposal): boolean;
  proposal(id: string | undefined): Promise<Proposal | null>;
}

/** POST /console/proposals/:id/edit. */
export async function editRoute(c: EditRouteContext, id: string | undefined): Promise<void> {
  const form = await readForm(c.req);
  if (!c.checkCsrf(form)) return;
  const json = wantsJson(c.req);
  const p = await c.proposal(id);
  const fail = (status: number, why: string, message: string) => {
    if (json) sendConsoleJson(c.res, status, { ok: false, why, message });
    else sendHtml(c.res, status, page({ title: 'Not saved', person: c.session.person, csrf: c.session.csrf }, messagePage('Not saved', message, { href: p === null ? '/console' : `/console/proposals/${p.id}`, text: 'Back to the proposal' })));
  };
  if (p === null) return fail(404, 'not_found', 'There is no proposal with this id.');
  if (!c.decidedHere(p)) return fail(403, 'not_on_console', 'This proposal is decided in chat: its route does not list the console.');
  const version = Number(form.get('version'));
  if (!Number.isInteger(version) || version < 1) return fail(400, 'invalid_request', 'version: must be the version of the proposal the page showed');
  const typed: Record<string, string> = {};
  for (const [name, value] of form) if (name.startsWith(EDIT_FIELD_PREFIX)) typed[name.slice(EDIT_FIELD_PREFIX.length)] = value;
  let values: Record<string, unknown>;
  try {
    values = valuesFromForm(p, typed);
  } catch (e) {
    if (e instanceof ValidationError) return fail(400, 'invalid', `Not saved: ${e.message}.`);
    throw e;
  }
  // The session's own sign-in time, from Redis: a step-up rule's approval counts only from a fresh one.
  const result = await editProposal(c.deps, { proposalId: p.id, person: c.session.person, platform: 'console', version, values, authenticatedAt: c.session.created_at });
  const o = result.outcome;
  if (o.kind === 'refused') return fail(o.why === 'invalid' ? 400 : 409, o.why, result.notice ?? o.message);
  const status = result.proposal?.status ?? p.status;
  const message = o.kind === 'duplicate' ? 'Your edit is already recorded.' : o.status === 'denied' ? 'Recorded: the policy denies the edited action.' : o.counted ? `Recorded: the edited action has ${o.approvals} of ${o.required} approvals.` : 'Recorded: the edit is saved, but your approval does not count (sign in again first).';
  if (json) sendConsoleJson(c.res, 200, { ok: true, status, message });
  else redirect(c.res, `/console/proposals/${p.id}?result=recorded`);
}
