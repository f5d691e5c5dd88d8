import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AppDeps } from '../../src/app/deps.ts';
import { recordAuthFailure } from '../../src/app/record-auth-failure.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import type { AuthFailureLimiter } from '../../src/core/ports.ts';
import type { RequestState } from './console-app.ts';
import { consoleKeyHash } from './platform.ts';
import { page } from './html.ts';
import { cookie, parseCookies, readForm, redirect, sameOrigin, sendHtml } from './http.ts';
import { sameSecret as sameText } from '../../src/core/signing.ts';
import type { SessionStore } from '../../src/core/ports.ts';
import { loginPage, messagePage } from './views.ts';

// Signing in and out. Two ways in: a person's console key (its SHA-256 is in the policy), or
// a one-time link (random token in Redis, short TTL, spent on first use) such as the one
// `npm start` prints for the demo approver. Both end in the same Redis session.

const LOGIN_COOKIE = 'cs_login';
const LOGIN_COOKIE_TTL = 60 * 60;

const randomToken = () => randomBytes(32).toString('base64url');

const PROPOSAL_PAGE = '/console/proposals/';

/** Where a sign-in may return to: a proposal's page of this console, nothing else (no open redirect). */
function returnPath(value: string | null): string {
  return value !== null && value.startsWith(PROPOSAL_PAGE) && PROPOSAL_ID_PATTERN.test(value.slice(PROPOSAL_PAGE.length)) ? value : '/console';
}

export interface SignInOptions {
  deps: AppDeps;
  sessions: SessionStore;
  origins: () => ReadonlySet<string>;
  secureCookies: boolean;
  sessionCookie: (id: string, maxAge?: number) => string;
  failureLimiter?: AuthFailureLimiter | undefined;
}

export function signInRoutes(o: SignInOptions) {
  const { deps, sessions } = o;

  async function auditFailure(deps: AppDeps, req: IncomingMessage, reason: string, person: string | null): Promise<void> {
    await recordAuthFailure(deps, o.failureLimiter, {
      address: req.socket.remoteAddress ?? 'unknown',
      reason,
      via: 'console',
      details: { person: person === null ? null : person.slice(0, 100) },
    });
  }

  const loginCookie = (value: string, maxAge = LOGIN_COOKIE_TTL) => cookie(LOGIN_COOKIE, value, { path: '/console/login', maxAge, secure: o.secureCookies });

  // Login CSRF: a double-submit token in a cookie the login form repeats, so another site
  // cannot sign a browser in as someone else.
  function showLogin(s: RequestState, status: number, error: string | null, person = '', next = '/console') {
    const token = randomToken();
    sendHtml(s.res, status, page({ title: 'Sign in', person: null, csrf: null }, loginPage({ error, loginCsrf: token, person, next })), { 'set-cookie': loginCookie(token) });
  }

  /** A new session (a fresh sign-in, which step-up rules count from); the one it replaces ends. */
  async function startSession(s: RequestState, person: string, next = '/console') {
    const { id } = await sessions.create(person, deps.clock.now());
    if (s.sessionId !== null) await sessions.destroy(s.sessionId);
    deps.logger.info({ person, via: 'console' }, 'console sign-in');
    redirect(s.res, next, { 'set-cookie': [o.sessionCookie(id), loginCookie('', 0)] });
  }

  async function keySignIn(s: RequestState) {
    const form = await readForm(s.req);
    const expected = parseCookies(s.req).get(LOGIN_COOKIE);
    const given = form.get('csrf') ?? '';
    if (expected === undefined || expected === '' || !sameText(given, expected) || !sameOrigin(s.req, o.origins())) {
      return showLogin(s, 403, 'The sign-in form expired or came from another site. Try again.');
    }
    const personId = (form.get('person') ?? '').trim().slice(0, 100);
    const key = (form.get('key') ?? '').trim();
    const next = returnPath(form.get('next'));
    const person = deps.policy.people.get(personId);
    // One answer for "no such person", "no key" and "wrong key": the form reveals nothing.
    const refuse = async (reason: string) => {
      await auditFailure(deps, s.req, reason, personId === '' ? null : personId);
      showLogin(s, 401, 'Unknown person or wrong console key.', personId, next);
    };
    if (person === undefined) return refuse('unknown_person');
    if (await sessions.isLockedOut(person.id)) {
      await auditFailure(deps, s.req, 'too_many_failures', person.id);
      return showLogin(s, 429, 'Too many failed sign-ins for this person. Wait 15 minutes and try again.', personId, next);
    }
    const keyHash = consoleKeyHash(person);
    if (keyHash === null) return refuse('no_console_key');
    const hash = createHash('sha256').update(key).digest('hex');
    if (!sameText(hash, keyHash)) {
      await sessions.recordFailure(person.id);
      return refuse('wrong_console_key');
    }
    await sessions.clearFailures(person.id);
    await startSession(s, person.id, next);
  }

  async function oneTime(s: RequestState) {
    const person = await sessions.consumeOneTime(s.url.searchParams.get('token') ?? '');
    if (person === null || !deps.policy.people.has(person)) {
      await auditFailure(deps, s.req, 'one_time_link_invalid', null);
      const message = 'This sign-in link was already used or has expired. Get a new one with: npx countersign console link PERSON';
      return sendHtml(s.res, 401, page({ title: 'Link expired', person: null, csrf: null }, messagePage('Sign-in link not valid', message, { href: '/console/login', text: 'Sign in with a console key' })));
    }
    await startSession(s, person);
  }

  async function logout(s: RequestState) {
    const form = await readForm(s.req);
    const given = form.get('csrf') ?? '';
    if (s.session !== null && s.sessionId !== null && sameText(given, s.session.csrf) && sameOrigin(s.req, o.origins())) {
      await sessions.destroy(s.sessionId);
    }
    const id = parseCookies(s.req).get('cs_session');
    redirect(s.res, '/console/login', id === undefined ? {} : { 'set-cookie': o.sessionCookie('', 0) });
  }

  return async (s: RequestState, parts: string[], method: string): Promise<void> => {
    const [first, second] = parts;
    if (first === 'logout' && method === 'POST') return logout(s);
    if (first === 'login' && second === undefined && method === 'GET') {
      // `again`: someone signed in asks for a fresh sign-in (a step-up approval needs one).
      const next = returnPath(s.url.searchParams.get('next'));
      if (s.session !== null && s.url.searchParams.get('again') !== '1') return redirect(s.res, next);
      return showLogin(s, 200, null, s.session?.person ?? '', next);
    }
    if (first === 'login' && second === undefined && method === 'POST') return keySignIn(s);
    if (first === 'login' && second === 'once' && method === 'GET') return oneTime(s);
    sendHtml(s.res, 404, page({ title: 'Not found', person: null, csrf: null }, messagePage('Not found', 'There is no such page.', { href: '/console/login', text: 'Sign in' })));
  };
}
