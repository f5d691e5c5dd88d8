import type { AppDeps } from '../../src/app/deps.ts';
import { searchAudit } from '../../src/app/search-audit.ts';
import { parseDuration } from '../../src/core/duration.ts';
import { CountersignError } from '../../src/core/errors.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import type { AuditQuery } from '../../src/core/ports.ts';
import { STATUSES, type Status } from '../../src/core/proposal.ts';
import type { RequestState } from './console-app.ts';
import { page } from './html.ts';
import { sendHtml } from './http.ts';
import type { Session } from '../../src/core/ports.ts';
import { auditPage, type AuditForm } from './views.ts';

// The console's audit search: the API's filters as a form. Every signed-in person of the
// policy may search the whole log (security teams use the console for exactly this).

const PAGE_SIZE = 100;

/** A filter the person typed cannot be read; shown above the form. */
export class InputError extends Error {}

/** `24h`, `7d` (that long ago), or an ISO-8601 date / date-time (UTC unless it says otherwise). */
export function parseWhen(text: string, now: number): number | null {
  const t = text.trim();
  if (t === '') return null;
  if (/^\d+(ms|d|h|m|s)/.test(t)) {
    try {
      return now - parseDuration(t);
    } catch (e) {
      throw new InputError((e as Error).message);
    }
  }
  const withZone = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(t) ? (t.length === 10 ? `${t}T00:00:00Z` : `${t}Z`) : t;
  const ms = Date.parse(withZone);
  if (Number.isNaN(ms)) throw new InputError(`cannot read "${t}" as a time: write 24h, 7d, 2026-01-31 or 2026-01-31T12:00`);
  return ms;
}

export function readAuditForm(q: URLSearchParams): AuditForm {
  const get = (name: string, max = 200) => (q.get(name) ?? '').trim().slice(0, max);
  return { q: get('q', 500), agent: get('agent'), actor: get('actor'), status: get('status'), since: get('since'), until: get('until'), proposal: get('proposal') };
}

export function auditQuery(form: AuditForm, now: number, limit: number, cursor: string | null): AuditQuery {
  const query: AuditQuery = { words: form.q.split(/\s+/).filter(Boolean), limit };
  if (form.agent !== '') query.agent = form.agent;
  if (form.actor !== '') query.actor = form.actor;
  if (form.status !== '') {
    if (!(STATUSES as readonly string[]).includes(form.status)) throw new InputError(`status must be one of ${STATUSES.join(', ')}`);
    query.status = form.status as Status;
  }
  if (form.proposal !== '') {
    if (!PROPOSAL_ID_PATTERN.test(form.proposal)) throw new InputError('proposal must be a proposal id (p_…)');
    query.proposalId = form.proposal;
  }
  const since = parseWhen(form.since, now);
  const until = parseWhen(form.until, now);
  if (since !== null) query.since = since;
  if (until !== null) query.until = until;
  if (cursor !== null) query.cursor = cursor;
  return query;
}

export async function auditRoute(deps: AppDeps, s: RequestState & { session: Session }): Promise<void> {
  const params = s.url.searchParams;
  const form = readAuditForm(params);
  let result: Awaited<ReturnType<typeof searchAudit>> | null = null;
  let error: string | null = null;
  let nextHref: string | null = null;
  try {
    const cursor = params.get('cursor');
    result = await searchAudit(deps.audit, { kind: 'admin' }, auditQuery(form, deps.clock.now(), PAGE_SIZE, cursor === '' ? null : cursor));
    if (result.next !== null) {
      const next = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== ''));
      next.set('cursor', result.next);
      nextHref = `/console/audit?${next.toString()}`;
    }
  } catch (e) {
    if (!(e instanceof InputError) && !(e instanceof CountersignError && e.status === 400)) throw e;
    error = e.message;
  }
  sendHtml(s.res, error === null ? 200 : 400, page({ title: 'Audit', person: s.session.person, csrf: s.session.csrf, nav: 'audit' }, auditPage(form, result, error, nextHref)));
}
