import { approvalsLine, decidedBy, STATUS_HEADLINE, truncate, valueText, voterName, type CardModel } from '../../src/core/card.ts';
import { editFormHtml } from './edit-form.ts';
import type { StoredAuditEvent } from '../../src/core/ports.ts';
import { STATUSES } from '../../src/core/proposal.ts';
import { showHidden } from '../../src/core/visible-text.ts';
import { html, raw, type Html } from './html.ts';
import type { TimelineEntry } from './timeline.ts';

// Server-rendered pieces of the console. The card shows what Slack and Teams show (built
// from the same CardModel); the script only swaps in fresh copies of these fragments.

export interface CardView {
  card: CardModel;
  timeline: TimelineEntry[];
  csrf: string;
  /** Buttons are shown when the proposal is pending and its route lists the console. */
  decidable: boolean;
  /** Why this person's click would be refused, said before they click. */
  note: string | null;
  /** When its agent was revoked, while it is (countersign revoke); null otherwise. */
  agentRevokedAt: string | null;
  /**
   * A step-up proposal (card.stepUp): whether this person's sign-in is recent enough for their
   * approval to count, when it was, and the link that signs in again and comes back. Null otherwise.
   */
  stepUp: StepUpView | null;
  /** A checkbox for the pending page's "Approve selected" form (batch-page.ts): absent on critical and step-up proposals. */
  batchable?: boolean;
}

export interface StepUpView {
  fresh: boolean;
  signedInAt: string;
  signInAgain: string;
}

const DATE_FORMAT = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/;

function when(isoText: string): Html {
  const m = DATE_FORMAT.exec(isoText);
  return html`<time datetime="${isoText}">${m === null ? isoText : `${m[1]} ${m[2]} UTC`}</time>`;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

function contextList(card: CardModel): Html {
  const c = card.context;
  const value = c.value.amount === 0 && c.value.currency === '' ? '—' : valueText(card);
  return html`<dl class="facts context">
    <div><dt>Environment</dt><dd>${c.environment}</dd></div>
    <div><dt>Data</dt><dd>${c.data_sensitivity}</dd></div>
    <div><dt>Destination</dt><dd>${c.destination}</dd></div>
    <div><dt>Reversible</dt><dd>${c.reversible ? 'yes' : 'no'}</dd></div>
    <div><dt>Value</dt><dd>${value}</dd></div>
  </dl>`;
}

/**
 * Whether the card's timeline already says `text` (a vote's reason). The timeline is the console's
 * thread and quotes every vote's reason, and the result line quotes the deciding one (both are
 * what every platform's card and thread say: chat-platform.contract.ts); the list of votes then
 * names who, without the words a third time (a deny's reason was on the card three times).
 */
function inTimeline(view: CardView, text: string | null): boolean {
  return text !== null && text !== '' && view.timeline.some((e) => e.text.includes(text));
}

function quorum(view: CardView): Html {
  const { card } = view;
  const names = card.approvals.map((a) => html`<li class="${a.vote}">${voterName(a)} ${a.vote === 'approve' ? 'approved' : 'denied'}${a.reason && !inTimeline(view, a.reason) ? html`: <q>${a.reason}</q>` : ''}</li>`);
  return html`<div class="quorum">
    <span class="count">${approvalsLine(card)}</span>
    ${names.length > 0 ? html`<ul>${names}</ul>` : ''}
  </div>`;
}

/** Why a step-up proposal's Approve is not offered, and the way to a fresh sign-in. */
function stepUpNote(view: CardView): Html {
  const s = view.stepUp;
  if (s === null || view.card.stepUp === null) return html``;
  if (s.fresh) return html`<p class="note step-up">${view.card.stepUp.note}</p>`;
  return html`<p class="note step-up">Approving this proposal needs a fresh sign-in: you signed in ${when(s.signedInAt)}. ${view.card.stepUp.note} <a href="${s.signInAgain}">Sign in again</a></p>`;
}

function decideForm(view: CardView): Html {
  const { card } = view;
  const reasonNeeded = card.reasonRequired;
  // A stale sign-in cannot approve a step-up proposal (the server refuses it too); denying stays.
  const canApprove = view.stepUp === null || view.stepUp.fresh;
  return html`<form class="decide" method="post" action="/console/proposals/${card.proposalId}/decide">
    <input type="hidden" name="csrf" value="${view.csrf}">
    <label>Reason <span class="hint">${reasonNeeded ? `required to deny at ${card.risk} risk` : 'optional'}</span>
      <textarea name="reason" rows="2" maxlength="1000" placeholder="Why you approve or deny"></textarea></label>
    <div class="buttons">
      ${canApprove ? html`<button type="submit" name="vote" value="approve" class="approve">Approve</button>` : ''}
      <button type="submit" name="vote" value="deny" class="deny">Deny</button>
    </div>
    <p class="notice" role="status" aria-live="polite"></p>
  </form>`;
}

function resolutionLine(view: CardView): Html {
  const { card } = view;
  const r = card.resolution;
  if (r === null) return html``;
  // The decision, which never changes; the badge above shows where the proposal is now.
  return html`<p class="resolution status-${r.status}"><b>${STATUS_HEADLINE[r.status]}</b>${decidedBy(card)} · ${when(r.at)}${r.reason ? html` · <q>${r.reason}</q>` : ''}</p>`;
}

/**
 * The second step of a critical approval without the script: the facts again, and a form that
 * posts the same vote with confirm=yes (and the same CSRF token, checked again).
 */
export function confirmApprovalPage(card: CardModel, csrf: string, reason: string): Html {
  const c = card.confirmApproval;
  if (c === null) return html``;
  const back = `/console/proposals/${card.proposalId}`;
  return html`<section class="confirm-approval" aria-labelledby="confirm-question">
  <h1 id="confirm-question">${c.question}</h1>
  <p>Agent <b>${card.agent}</b> asks for this; it runs once you approve and the quorum is met.</p>
  <dl class="facts">
    <div><dt>Action</dt><dd><code>${c.action}</code></dd></div>
    <div><dt>Target</dt><dd><code>${c.target}</code></dd></div>
    <div><dt>Value</dt><dd>${c.value}</dd></div>
  </dl>
  <form class="confirm" method="post" action="/console/proposals/${card.proposalId}/decide">
    <input type="hidden" name="csrf" value="${csrf}">
    <input type="hidden" name="vote" value="approve">
    <input type="hidden" name="confirm" value="yes">
    <input type="hidden" name="reason" value="${reason}">
    <div class="buttons">
      <button type="submit" class="approve">${c.confirm}</button>
      <a href="${back}">${c.back}</a>
    </div>
  </form>
</section>`;
}

export function timelineList(entries: readonly TimelineEntry[]): Html {
  if (entries.length === 0) return html`<ol class="timeline"><li class="empty">No events yet.</li></ol>`;
  return html`<ol class="timeline">${entries.map((e) => html`<li class="tone-${e.tone}" data-type="${e.type}">${when(e.at)} <span>${showHidden(e.text)}</span></li>`)}</ol>`;
}

export function cardHtml(view: CardView): Html {
  const { card } = view;
  const a = card.action;
  const params = Object.keys(a.parameters).length === 0 ? html`<p class="muted">no parameters</p>` : html`<pre class="params">${json(a.parameters)}</pre>`;
  const revoked = view.agentRevokedAt;
  return html`<article class="card risk-${card.risk} status-${card.status}${revoked === null ? '' : ' agent-revoked'}" id="card-${card.proposalId}" data-id="${card.proposalId}" data-status="${card.status}">
  <header>
    <span class="badge risk">${card.risk} risk</span>
    <span class="badge status">${card.status}</span>
    ${view.batchable === true ? html`<label class="pick"><input type="checkbox" name="id" value="${card.proposalId}" form="batch"> Select</label>` : ''}
    ${revoked === null ? '' : html`<span class="badge revoked">agent revoked</span>`}
    <h2><a href="/console/proposals/${card.proposalId}"><code>${a.tool}</code> · <code>${a.operation}</code></a></h2>
    <p class="target">on <code>${a.target}</code></p>
  </header>
  ${card.hiddenNote === null ? '' : html`<p class="hidden-note" role="note">${card.hiddenNote}</p>`}
  ${(card.escalated ?? []).map((line) => html`<p class="escalated" role="note">${line}</p>`)}
  ${card.revision === undefined ? '' : html`<p class="revision" role="note">✏️ ${card.revision}</p>`}

  <section class="who">
    ${revoked === null ? '' : html`<p class="revoked-note" role="note">Agent ${card.agent} is revoked (since ${when(revoked)}): countersign refuses its proposals and runs none made before then.</p>`}
    <p>Agent <b>${card.agent}</b> says:</p>
    <blockquote class="intent">${card.intent}</blockquote>
  </section>
  <section class="body">
    <div><h3>Parameters</h3>${params}</div>
    <div><h3>Context</h3>${contextList(card)}</div>
  </section>
  <p class="rule">Rule <code>${card.rule}</code>${card.reasons.length > 0 ? html` · ${card.reasons.join('; ')}` : ''}</p>
  <footer>
    ${quorum(view)}
    ${card.expiresAt !== null && card.actionable ? html`<p class="expiry">Expires ${when(card.expiresAt)} <span class="countdown" data-until="${card.expiresAt}"></span></p>` : ''}
    ${resolutionLine(view)}
    ${view.note === null ? '' : html`<p class="note">${view.note}</p>`}
    ${view.decidable ? stepUpNote(view) : ''}
    ${view.decidable ? decideForm(view) : ''}
    ${view.decidable ? editFormHtml(view.card, view.csrf, view.stepUp === null || view.stepUp.fresh) : ''}
  </footer>
  <details class="events" open>
    <summary>Timeline</summary>
    ${timelineList(view.timeline)}
    <p class="more"><a href="/console/audit?proposal=${card.proposalId}">Audit entries of this proposal</a></p>
  </details>
</article>`;
}

/** Agents whose kill switch is pulled, with when: said on the pending page until they are restored. */
function revokedAgentsSection(revoked: readonly { agent: string; at: string }[]): Html {
  if (revoked.length === 0) return html``;
  return html`<section class="revoked-agents" aria-label="Revoked agents">
  <h2>Revoked agents</h2>
  <p class="muted">countersign refuses their proposals until an admin runs <code>countersign restore --agent ID</code>.</p>
  <ul>${revoked.map((r) => html`<li><b>${r.agent}</b> since ${when(r.at)}</li>`)}</ul>
</section>`;
}

export function pendingPage(cards: Html[], total: number, revoked: readonly { agent: string; at: string }[] = [], batch: Html | null = null): Html {
  return html`<h1>Pending proposals <span class="count" id="pending-count">${total}</span></h1>
<p class="lede">Agents' actions waiting for a person. New cards appear here as agents propose them.</p>
${revokedAgentsSection(revoked)}
${batch ?? ''}
<div id="cards" class="cards">${cards.length > 0 ? cards : ''}</div>
<p class="empty-state" id="empty"${cards.length > 0 ? raw(' hidden') : ''}>Nothing is waiting for you. Run <code>npm run demo</code> to send a few example proposals.</p>`;
}

export function loginPage(options: { error: string | null; loginCsrf: string; person: string; next: string }): Html {
  return html`<section class="login">
  <h1>Sign in</h1>
  <p>Sign in with your person id from the policy and your console key.</p>
  ${options.error === null ? '' : html`<p class="error" role="alert">${options.error}</p>`}
  <form method="post" action="/console/login">
    <input type="hidden" name="csrf" value="${options.loginCsrf}">
    ${options.next === '/console' ? '' : html`<input type="hidden" name="next" value="${options.next}">`}
    <label>Person <input name="person" autocomplete="username" required maxlength="100" value="${options.person}"></label>
    <label>Console key <input name="key" type="password" autocomplete="current-password" required maxlength="200"></label>
    <button type="submit" class="approve">Sign in</button>
  </form>
  <p class="muted">With the built-in example policy, <code>npm start</code> prints a one-time sign-in link instead.</p>
</section>`;
}

export interface AuditForm {
  q: string;
  agent: string;
  actor: string;
  status: string;
  since: string;
  until: string;
  proposal: string;
}

function summary(e: StoredAuditEvent): string {
  // What the agent wrote is shown as it is everywhere else: hidden characters in the open.
  const text = showHidden(JSON.stringify(e.data));
  return truncate(text, 300);
}

export function auditPage(form: AuditForm, result: { events: StoredAuditEvent[]; next: string | null } | null, error: string | null, nextHref: string | null): Html {
  const input = (name: keyof AuditForm, label: string, placeholder: string) =>
    html`<label>${label} <input name="${name}" value="${form[name]}" placeholder="${placeholder}"></label>`;
  const rows = (result?.events ?? []).map(
    (e) => html`<tr class="type-${e.type}">
    <td class="at" data-label="At">${when(e.at)}</td><td class="event" data-label="Event"><code>${e.type}</code></td><td data-label="Actor">${e.actor}</td><td data-label="Agent">${e.agent ?? ''}</td>
    <td data-label="Proposal">${e.proposal_id === null ? '' : html`<a href="/console/proposals/${e.proposal_id}">${e.proposal_id}</a>`}</td>
    <td class="data" data-label="Data"><code>${summary(e)}</code></td></tr>`,
  );
  return html`<h1>Audit</h1>
<form class="search" method="get" action="/console/audit">
  <label class="words">Words <input name="q" value="${form.q}" placeholder="refund 4711" autofocus></label>
  ${input('agent', 'Agent', 'billing-agent')}
  ${input('actor', 'Actor', 'person:alice')}
  <label>Status <select name="status"><option value="">any</option>${STATUSES.map((s) => html`<option${s === form.status ? raw(' selected') : ''}>${s}</option>`)}</select></label>
  ${input('since', 'Since', '24h, 7d or 2026-01-31')}
  ${input('until', 'Until', '2026-02-01T12:00')}
  ${input('proposal', 'Proposal', 'p_…')}
  <button type="submit">Search</button>
</form>
${error === null ? '' : html`<p class="error" role="alert">${error}</p>`}
${
  result === null
    ? ''
    : html`<p class="muted" id="result-count">${result.events.length} entr${result.events.length === 1 ? 'y' : 'ies'}, newest first</p>
<table class="audit"><thead><tr><th>At</th><th>Event</th><th>Actor</th><th>Agent</th><th>Proposal</th><th>Data</th></tr></thead>
<tbody>${rows}</tbody></table>
${nextHref === null ? '' : html`<p><a href="${nextHref}">Older entries</a></p>`}`
}`;
}

export function messagePage(title: string, message: string, link: { href: string; text: string } | null): Html {
  return html`<section class="message"><h1>${title}</h1><p>${message}</p>${link === null ? '' : html`<p><a href="${link.href}">${link.text}</a></p>`}</section>`;
}
