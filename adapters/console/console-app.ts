import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from '../../src/app/deps.ts';
import type { ChatPlatform, PlatformServices } from '../../src/app/platforms.ts';
import { platformsFor } from '../../src/app/notify-platforms.ts';
import { getProposal } from '../../src/app/proposals.ts';
import { authorityFrom, recordDecision } from '../../src/app/record-decision.ts';
import { eligibilityNote, refusalSentence, type CardModel } from '../../src/core/card.ts';
import { canDecide, REFUSAL_REASONS as REFUSALS, refusalMessage, signInFreshEnough, type RefusalReason, type RevokedAgents } from '../../src/core/lifecycle.ts';
import { cardFor } from '../../src/app/deliver-notification.ts';
import { CountersignError } from '../../src/core/errors.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { auditRoute } from './audit-page.ts';
import { awayHeader, awayRoute } from './away-page.ts';
import { NOBODY_AWAY, type Absences } from '../../src/core/away.ts';
import { batchForm, decideSelected } from './batch-page.ts';
import { batchableRule } from '../../src/app/batch-decisions.ts';
import { createConsoleChannel } from './console-channel.ts';
import { editRoute } from './edit-form.ts';
import { consoleNotices, noticesBanner } from './notices-banner.ts';
import { html, page } from './html.ts';
import {
  allowedOrigins,
  BodyTooLarge,
  cookie,
  parseCookies,
  readForm,
  redirect,
  sameOrigin,
  SECURITY_HEADERS,
  sendConsoleJson,
  sendHtml,
  wantsJson,
} from './http.ts';
import { sameSecret as sameText } from '../../src/core/signing.ts';
import { SESSION_TTL_SECONDS, type AuthFailureLimiter, type LiveUpdates, type Session, type SessionStore } from '../../src/core/ports.ts';
import { signInRoutes } from './sign-in.ts';
import { timeline } from './timeline.ts';
import { cardHtml, confirmApprovalPage, messagePage, pendingPage, type StepUpView } from './views.ts';

// The web console, mounted at /console on the one HTTP server. People sign in (console key
// or a one-time link), see the cards of routes that list `console: true`, decide through
// recordDecision like on any other platform, watch each proposal's timeline update live,
// and search the audit log.

export interface ConsoleOptions {
  deps: AppDeps;
  sessions: SessionStore;
  live: LiveUpdates;
  /** PUBLIC_URL and the listening address, known once the server listens. */
  urls: () => string[];
  /** Secure cookies (PUBLIC_URL is https). */
  secureCookies: boolean;
  /** Caps audited sign-in failures per address, like the agent API's (the audit chain cannot be trimmed). */
  failureLimiter: AuthFailureLimiter;
}

export const SESSION_COOKIE = 'cs_session';
const MAX_CARDS = 50;
const TIMELINE_LIMIT = 200;
// Audit `at` and the proposal's creation come from replicas' clocks; look back a little.
const TIMELINE_SKEW_MS = 60_000;

const STATIC: Record<string, { type: string; file: string }> = {
  'console.js': { type: 'text/javascript; charset=utf-8', file: 'console.js' },
  'console.css': { type: 'text/css; charset=utf-8', file: 'console.css' },
  'favicon.svg': { type: 'image/svg+xml', file: 'favicon.svg' },
};

export interface RequestState {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  session: Session | null;
  sessionId: string | null;
}

const REFUSAL_REASONS: ReadonlySet<string> = new Set<RefusalReason>(REFUSALS);

/** Where "Sign in again" on a step-up card leads: the sign-in form, then back to the proposal. */
export function signInAgainHref(proposalId: string): string {
  return `/console/login?again=1&next=${encodeURIComponent(`/console/proposals/${proposalId}`)}`;
}

export function createConsole(options: ConsoleOptions) {
  const { deps, sessions, live } = options;
  const staticFiles = new Map(
    Object.entries(STATIC).map(([name, s]) => [name, { type: s.type, body: readFileSync(new URL(`./static/${s.file}`, import.meta.url)) }]),
  );
  const origins = () => allowedOrigins(options.urls());
  const sessionCookie = (id: string, maxAge = SESSION_TTL_SECONDS) => cookie(SESSION_COOKIE, id, { path: '/console', maxAge, secure: options.secureCookies });

  async function loadSession(req: IncomingMessage): Promise<{ id: string; session: Session } | null> {
    const id = parseCookies(req).get(SESSION_COOKIE);
    if (id === undefined) return null;
    const session = await sessions.get(id);
    // A person removed from the policy loses the console with their next request.
    if (session === null || !deps.policy.people.has(session.person)) return null;
    return { id, session };
  }

  /** Origin and synchronizer token; false means a 403 was sent. */
  function checkCsrf(s: RequestState, form: URLSearchParams): boolean {
    const given = form.get('csrf') ?? s.req.headers['x-csrf-token'];
    if (s.session === null || typeof given !== 'string' || !sameText(given, s.session.csrf) || !sameOrigin(s.req, origins())) {
      forbidden(s, 'This request did not come from a console page you opened (CSRF check failed). Reload the page and try again.');
      return false;
    }
    return true;
  }

  function forbidden(s: RequestState, message: string): void {
    if (wantsJson(s.req)) sendConsoleJson(s.res, 403, { ok: false, why: 'csrf', message });
    else sendHtml(s.res, 403, page({ title: 'Refused', person: s.session?.person ?? null, csrf: s.session?.csrf ?? null }, messagePage('Refused', message, { href: '/console', text: 'Back to the console' })));
  }

  async function eventsOf(p: Proposal) {
    const r = await deps.audit.search({ words: [], proposalId: p.id, since: p.created_at - TIMELINE_SKEW_MS, limit: TIMELINE_LIMIT });
    return r.events.reverse();
  }

  /** Why this person's click would be refused, said before they click (the same checks as the vote). */
  function noteFor(p: Proposal, person: string, revoked: RevokedAgents, away: Absences): string | null {
    if (p.status !== 'pending') return null;
    const eligible = canDecide(p, person, authorityFrom(deps.policy), deps.clock.now(), revoked, away);
    return eligible.ok ? null : eligibilityNote(eligible);
  }

  /**
   * Whether the console decides on `p`: its route lists the console, or its rule needs step-up
   * (then the console is where its approvals count, whatever platforms its cards go to).
   */
  function decidedHere(p: Proposal): boolean {
    return p.decision.step_up === true || platformsFor(deps, p).includes('console');
  }

  function stepUpOf(p: Proposal, session: Session): StepUpView | null {
    if (p.decision.step_up !== true) return null;
    return { fresh: signInFreshEnough(p, session.created_at, deps.clock.now()), signedInAt: new Date(session.created_at).toISOString(), signInAgain: signInAgainHref(p.id) };
  }

  /** `revoked`: the agents revoked now (store.revokedAgents), read once per page. */
  async function renderCard(p: Proposal, session: Session, revoked: RevokedAgents, away: Absences = NOBODY_AWAY) {
    const onConsole = decidedHere(p);
    const revokedAt = revoked.get(p.agent);
    // A revoked agent's proposal left pending (a revocation that stopped midway) will not run:
    // no buttons, and the card says why.
    const note = noteFor(p, session.person, revoked, away) ?? (p.status === 'pending' && !onConsole ? 'This proposal is decided in chat: its route does not list the console.' : null);
    const decidable = p.status === 'pending' && onConsole && note === null && revokedAt === undefined;
    return cardHtml({
      card: cardFor(deps, p),
      timeline: timeline(p, await eventsOf(p)),
      csrf: session.csrf,
      decidable,
      batchable: decidable && batchableRule(p),
      note,
      agentRevokedAt: revokedAt === undefined ? null : new Date(revokedAt).toISOString(),
      stepUp: stepUpOf(p, session),
    });
  }

  async function proposalFromPath(id: string | undefined): Promise<Proposal | null> {
    if (id === undefined || !PROPOSAL_ID_PATTERN.test(id)) return null;
    try {
      return await getProposal(deps, { kind: 'admin' }, id);
    } catch (e) {
      if (e instanceof CountersignError && e.status === 404) return null;
      throw e;
    }
  }

  async function pending(s: RequestState & { session: Session }) {
    const now = deps.clock.now();
    // Newest first, as the script adds a card that arrives live: the card someone was just called
    // to is at the top (no scrolling on a phone), the page reads the same before and after a
    // reload, and the audit list is newest first too. Each card shows its own expiry.
    const list = (await deps.store.listPending(MAX_CARDS * 4))
      .filter((p) => (p.expires_at === null || p.expires_at > now) && decidedHere(p))
      .sort((a, b) => b.created_at - a.created_at)
      .slice(0, MAX_CARDS);
    const revoked = await deps.store.revokedAgents([...deps.policy.agents.keys()]);
    // Who is away: a delegate gets the buttons of the proposals they may decide for someone.
    const away = await deps.away.list(now);
    const cards = await Promise.all(list.map((p) => renderCard(p, s.session, revoked, away)));
    const revokedList = [...revoked].map(([agent, at]) => ({ agent, at: new Date(at).toISOString() }));
    const banner = noticesBanner(await consoleNotices(deps), now);
    sendHtml(s.res, 200, page({ title: 'Pending', person: s.session.person, csrf: s.session.csrf, live: 'pending', nav: 'pending', away: awayHeader(away.get(s.session.person)) }, html`${banner}${pendingPage(cards, list.length, revokedList, batchForm(s.session.csrf))}`));
  }

  async function proposalPage(s: RequestState & { session: Session }, id: string | undefined, fragment: boolean) {
    const p = await proposalFromPath(id);
    if (p === null) {
      if (fragment) sendConsoleJson(s.res, 404, { ok: false, message: 'no such proposal' });
      else sendHtml(s.res, 404, page({ title: 'Not found', person: s.session.person, csrf: s.session.csrf }, messagePage('Not found', 'There is no proposal with this id.', { href: '/console', text: 'Pending proposals' })));
      return;
    }
    const away = await deps.away.list(deps.clock.now());
    const card = await renderCard(p, s.session, await deps.store.revokedAgents([p.agent]), away);
    if (fragment) {
      sendHtml(s.res, 200, card);
      return;
    }
    const result = s.url.searchParams.get('result');
    const flash =
      result === 'recorded'
        ? 'Your decision is recorded.'
        : result !== null && REFUSAL_REASONS.has(result)
          ? refusalSentence({ why: result as RefusalReason, message: refusalMessage(result as RefusalReason, p) })
          : null;
    const body = html`${flash === null ? '' : html`<p class="flash" role="status">${flash}</p>`}<p><a href="/console">← Pending proposals</a></p>${card}`;
    sendHtml(s.res, 200, page({ title: `${p.action.tool} ${p.action.operation}`, person: s.session.person, csrf: s.session.csrf, live: 'proposal', nav: null, away: awayHeader(away.get(s.session.person)) }, body));
  }

  /**
   * The card whose confirmation an approve of `p` is answered with first (critical risk), or null:
   * none is asked for, or the click would be refused anyway (then the refusal is recorded and
   * said at once, as on every platform).
   */
  async function toConfirm(p: Proposal, session: Session): Promise<CardModel | null> {
    const card = cardFor(deps, p);
    if (card.confirmApproval === null) return null;
    const now = deps.clock.now();
    const revoked = await deps.store.revokedAgents([p.agent]);
    const allowed = canDecide(p, session.person, authorityFrom(deps.policy), now, revoked, await deps.away.list(now)).ok && signInFreshEnough(p, session.created_at, now);
    return allowed ? card : null;
  }

  async function decide(s: RequestState & { session: Session }, id: string | undefined) {
    const form = await readForm(s.req);
    if (!checkCsrf(s, form)) return;
    const p = await proposalFromPath(id);
    const json = wantsJson(s.req);
    if (p === null) {
      sendConsoleJson(s.res, 404, { ok: false, why: 'not_found', message: 'There is no proposal with this id.' });
      return;
    }
    const vote = form.get('vote');
    if (vote !== 'approve' && vote !== 'deny') {
      sendConsoleJson(s.res, 400, { ok: false, why: 'invalid_request', message: 'vote must be approve or deny' });
      return;
    }
    if (!decidedHere(p)) {
      sendConsoleJson(s.res, 403, { ok: false, why: 'not_on_console', message: 'This proposal is decided in chat: its route does not list the console.' });
      return;
    }
    const reason = (form.get('reason') ?? '').slice(0, 1000);
    // The session's own sign-in time, from Redis: never anything the request says.
    const authenticatedAt = s.session.created_at;
    // Nothing is recorded until the same vote comes again with confirm=yes (through the same CSRF and origin checks).
    const confirming = vote === 'approve' && form.get('confirm') !== 'yes' ? await toConfirm(p, s.session) : null;
    if (confirming?.confirmApproval) {
      const c = confirming.confirmApproval;
      if (json) sendConsoleJson(s.res, 200, { ok: false, why: 'confirmation_required', message: c.question, confirmation: c });
      else sendHtml(s.res, 200, page({ title: c.question, person: s.session.person, csrf: s.session.csrf }, confirmApprovalPage(confirming, s.session.csrf, reason)));
      return;
    }
    const { outcome, proposal } = await recordDecision(deps, { proposalId: p.id, person: s.session.person, platform: 'console', vote, reason, authenticatedAt });
    if (outcome.kind === 'refused') {
      if (json) sendConsoleJson(s.res, outcome.why === 'reason_required' ? 400 : 409, { ok: false, why: outcome.why, message: refusalSentence(outcome), status: outcome.status });
      else redirect(s.res, `/console/proposals/${p.id}?result=${outcome.why}`);
      return;
    }
    const message =
      outcome.kind === 'decided'
        ? `Recorded: the proposal is ${outcome.status}.`
        : `Recorded: ${outcome.approvals} of ${outcome.required} approvals so far.`;
    if (json) sendConsoleJson(s.res, 200, { ok: true, status: proposal.status, message });
    else redirect(s.res, `/console/proposals/${p.id}?result=recorded`);
  }

  async function batch(s: RequestState & { session: Session }) {
    const form = await readForm(s.req);
    if (!checkCsrf(s, form)) return;
    await decideSelected(deps, s, form);
  }

  function events(s: RequestState & { session: Session }) {
    s.res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    s.res.write('retry: 3000\n\n');
    const unsubscribe = live.subscribe((n) => s.res.write(`event: ${n.change === 'notice' ? 'notice' : 'proposal'}\ndata: ${JSON.stringify(n)}\n\n`));
    // Proxies drop idle streams; a comment line every 25 s keeps it open.
    const ping = setInterval(() => s.res.write(': ping\n\n'), 25_000);
    ping.unref();
    s.res.on('close', () => {
      clearInterval(ping);
      unsubscribe();
    });
  }

  const signIn = signInRoutes({ deps, sessions, origins, secureCookies: options.secureCookies, sessionCookie, failureLimiter: options.failureLimiter });

  async function route(s: RequestState): Promise<void> {
    const { req, res, url } = s;
    const parts = url.pathname.replace(/\/+$/, '').split('/').slice(2); // after "/console"
    const method = req.method ?? 'GET';
    const [first, second, third] = parts;

    if (first === 'static' && method === 'GET') {
      const file = second === undefined ? undefined : staticFiles.get(second);
      if (file === undefined || third !== undefined) return sendHtml(res, 404, html`not found`);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type, 'cache-control': 'no-cache' });
      res.end(file.body);
      return;
    }
    if (first === 'login' || first === 'logout') return signIn(s, parts, method);
    if (s.session === null) {
      if (wantsJson(req) || first === 'events' || first === 'notices' || third === 'card') return sendConsoleJson(res, 401, { ok: false, why: 'signed_out', message: 'Sign in again.' });
      return redirect(res, '/console/login');
    }
    const signed = s as RequestState & { session: Session };
    if (first === undefined && method === 'GET') return pending(signed);
    if (first === 'events' && method === 'GET') return events(signed);
    if (first === 'notices' && second === undefined && method === 'GET') return sendHtml(res, 200, noticesBanner(await consoleNotices(deps), deps.clock.now()));
    if (first === 'audit' && method === 'GET') return auditRoute(deps, signed);
    if (first === 'away' && second === undefined) return awayRoute(deps, signed, (form) => checkCsrf(signed, form));
    if (first === 'batch' && second === undefined && method === 'POST') return batch(signed);
    if (first === 'proposals' && second !== undefined) {
      if (third === undefined && method === 'GET') return proposalPage(signed, second, false);
      if (third === 'card' && method === 'GET') return proposalPage(signed, second, true);
      if (third === 'decide' && method === 'POST') return decide(signed, second);
      if (third === 'edit' && method === 'POST') return editRoute({ deps, req, res, session: signed.session, checkCsrf: (form) => checkCsrf(signed, form), decidedHere, proposal: proposalFromPath }, second);
    }
    sendHtml(res, 404, page({ title: 'Not found', person: signed.session.person, csrf: signed.session.csrf }, messagePage('Not found', 'There is no such page in the console.', { href: '/console', text: 'Pending proposals' })));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    if (url.pathname !== '/console' && !url.pathname.startsWith('/console/')) {
      sendConsoleJson(res, 404, { error: 'not_found', message: `no route ${req.method ?? ''} ${url.pathname}` });
      return;
    }
    const loaded = await loadSession(req);
    try {
      await route({ req, res, url, session: loaded?.session ?? null, sessionId: loaded?.id ?? null });
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        sendConsoleJson(res, 413, { ok: false, why: 'payload_too_large', message: 'The form is too large.' });
        return;
      }
      throw e;
    }
  }

  return { handle };
}

/** The console as a chat platform: its channel announces changes, its pages live under /console. */
export function createConsolePlatform(services: PlatformServices): ChatPlatform<(req: IncomingMessage, res: ServerResponse) => Promise<void>> {
  const app = createConsole({
    deps: services.deps,
    sessions: services.sessions,
    live: services.live,
    urls: services.urls,
    secureCookies: services.deps.publicUrl.startsWith('https:'),
    failureLimiter: services.failureLimiter,
  });
  return { channel: createConsoleChannel(services.live), mounts: { '/console': app.handle } };
}
