import { batchSummary, decideSelection, MAX_BATCH } from '../../src/app/batch-decisions.ts';
import type { AppDeps } from '../../src/app/deps.ts';
import { ValidationError } from '../../src/core/errors.ts';
import type { Session } from '../../src/core/ports.ts';
import type { RequestState } from './console-app.ts';
import { html, page, type Html } from './html.ts';
import { sendConsoleJson, sendHtml, wantsJson } from './http.ts';
import { messagePage } from './views.ts';

// "Approve selected" / "Deny selected" on the pending page: a plain form (no script needed)
// whose checkboxes sit on the cards (views.ts, `form="batch"`). Each chosen proposal is decided on its
// own (src/app/batch-decisions.ts); critical and step-up ones have no checkbox and are refused
// if a request names them anyway.

/** The form the cards' checkboxes belong to, above the cards. */
export function batchForm(csrf: string): Html {
  return html`<form id="batch" class="batch" method="post" action="/console/batch" aria-label="Decide several at once">
  <input type="hidden" name="csrf" value="${csrf}">
  <p class="muted">Tick cards below to decide up to ${MAX_BATCH} at once: each is recorded as your decision on its own. Critical-risk and step-up proposals are decided one at a time.</p>
  <label>Reason <span class="hint">required to deny high-risk ones</span>
    <textarea name="reason" rows="1" maxlength="1000" placeholder="Why you approve or deny them"></textarea></label>
  <div class="buttons">
    <button type="submit" name="vote" value="approve" class="approve">Approve selected</button>
    <button type="submit" name="vote" value="deny" class="deny">Deny selected</button>
  </div>
</form>`;
}

/** POST /console/batch, after the CSRF and origin checks. */
export async function decideSelected(deps: AppDeps, s: RequestState & { session: Session }, form: URLSearchParams): Promise<void> {
  const json = wantsJson(s.req);
  const person = s.session.person;
  const answer = (status: number, title: string, message: string, body: Record<string, unknown>) => {
    if (json) sendConsoleJson(s.res, status, { ...body, message });
    else sendHtml(s.res, status, page({ title, person, csrf: s.session.csrf }, messagePage(title, message, { href: '/console', text: 'Pending proposals' })));
  };
  const vote = form.get('vote');
  if (vote !== 'approve' && vote !== 'deny') return answer(400, 'Nothing decided', 'vote must be approve or deny.', { ok: false, why: 'invalid_request' });
  try {
    const result = await decideSelection(deps, { person, platform: 'console', vote, reason: (form.get('reason') ?? '').slice(0, 1000), proposalIds: form.getAll('id') });
    answer(200, vote === 'approve' ? 'Approved' : 'Denied', batchSummary(result), { ok: true, ...result });
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    const issue = e.issues[0];
    answer(400, 'Nothing decided', `Nothing was decided: ${issue?.path === 'proposalIds' && issue.message.startsWith('choose') ? 'select at least one proposal' : e.message}.`, { ok: false, why: 'invalid_request', issues: e.issues });
  }
}
