import { awaySentence, awayStatus, comeBack, setAway } from '../../src/app/away.ts';
import type { AppDeps } from '../../src/app/deps.ts';
import { parseUntil, untilText, type Absence } from '../../src/core/away.ts';
import type { Session } from '../../src/core/ports.ts';
import type { RequestState } from './console-app.ts';
import { html, page, type Html } from './html.ts';
import { readForm, redirect, sendHtml } from './http.ts';

// /console/away: the signed-in person marks themselves away until a date with a delegate, or
// comes back. Only ever the session's own person (src/app/away.ts); every POST passes the same
// CSRF and origin checks as the console's other forms. Success redirects (a reload sends
// nothing twice); a refusal shows the form again with what was wrong, nothing stored.

type Signed = RequestState & { session: Session };

/** The header line for a person away, or null. */
export function awayHeader(a: Absence | undefined | null): string | null {
  return a ? `You are away until ${untilText(a.until)} (${a.delegate} decides for you).` : null;
}

// A Map, not an object: `?done=constructor` must not find Object's own properties.
const DONE: ReadonlyMap<string, string> = new Map([['set', 'Your absence is set.'], ['back', 'Welcome back: you decide for yourself again.'], ['not-away', 'You were not marked away.']]);

function awayPage(deps: AppDeps, session: Session, status: Awaited<ReturnType<typeof awayStatus>>, message: { kind: 'flash' | 'error'; text: string } | null, form: { until: string; delegate: string }): Html {
  const others = [...deps.policy.people.keys()].filter((id) => id !== session.person).sort();
  return html`<h1>Away</h1>
${message === null ? '' : html`<p class="${message.kind}" role="${message.kind === 'error' ? 'alert' : 'status'}" id="away-message">${message.text}</p>`}
<p id="away-status">${status.own === null ? 'You are not marked away.' : awaySentence(status.own)}</p>
${status.standingFor.map(([p, a]) => html`<p class="muted">${p} is away until ${untilText(a.until)}: you decide for ${p}.</p>`)}
<form method="post" action="/console/away" class="away-form">
  <input type="hidden" name="csrf" value="${session.csrf}">
  <input type="hidden" name="action" value="set">
  <label>Away until <input name="until" type="date" required value="${form.until}"></label>
  <label>Delegate <select name="delegate" required><option value="">choose a person</option>${others.map((id) => html`<option${id === form.delegate ? html` selected` : ''}>${id}</option>`)}</select></label>
  <button type="submit">Set away</button>
</form>
<p class="muted">Through the date you give (UTC), your delegate's Approve and Deny count for you on proposals you could decide, wherever they click. A delegate never counts twice on one proposal, and never on an agent they sponsor.</p>
${
  status.own === null
    ? ''
    : html`<form method="post" action="/console/away">
  <input type="hidden" name="csrf" value="${session.csrf}">
  <input type="hidden" name="action" value="back">
  <button type="submit" class="approve">I am back</button>
</form>`
}`;
}

export async function awayRoute(deps: AppDeps, s: Signed, checkCsrf: (form: URLSearchParams) => boolean): Promise<void> {
  const person = s.session.person;
  const send = async (status: number, message: { kind: 'flash' | 'error'; text: string } | null, form = { until: '', delegate: '' }) => {
    const now = await awayStatus(deps, person);
    sendHtml(s.res, status, page({ title: 'Away', person, csrf: s.session.csrf, nav: 'away', away: awayHeader(now.own) }, awayPage(deps, s.session, now, message, form)));
  };
  if (s.req.method === 'GET') {
    const done = DONE.get(s.url.searchParams.get('done') ?? '');
    return send(200, done === undefined ? null : { kind: 'flash', text: done });
  }
  if (s.req.method !== 'POST') return send(405, { kind: 'error', text: 'Use the forms on this page.' });
  const form = await readForm(s.req);
  if (!checkCsrf(form)) return;
  const action = form.get('action');
  if (action === 'back') return redirect(s.res, `/console/away?done=${(await comeBack(deps, person)).ended ? 'back' : 'not-away'}`);
  if (action !== 'set') return send(400, { kind: 'error', text: 'action: must be set or back.' });
  const untilInput = (form.get('until') ?? '').trim().slice(0, 40);
  const delegate = (form.get('delegate') ?? '').trim().slice(0, 100);
  const shown = { until: untilInput, delegate };
  const until = parseUntil(untilInput);
  if (until === null) return send(400, { kind: 'error', text: 'until: give a date (2026-12-24: away through that day, UTC).' }, shown);
  const r = await setAway(deps, person, { delegate, until });
  if (!r.ok) return send(400, { kind: 'error', text: `${r.text}.` }, shown);
  redirect(s.res, '/console/away?done=set');
}
