import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { consoleSignInLink } from '../../src/wiring/cli-commands.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';

// The console over plain HTTP: headers, sign-in, CSRF, escaping, decisions through the
// one door (quorum, sponsors, approvers, reasons), live events, one-time links.

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ policy: CONSOLE_POLICY, env: CONSOLE_ENV });
});

function decide(session: { cookie: string; csrf: string }, id: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${app.url}/console/proposals/${id}/decide`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: session.cookie, origin: app.url, ...headers },
    body: new URLSearchParams({ csrf: session.csrf, ...form }).toString(),
  });
}

async function pageText(session: { cookie: string }, path: string): Promise<string> {
  return (await fetch(`${app.url}${path}`, { headers: { cookie: session.cookie } })).text();
}

describe('console pages', () => {
  it('sends strict security headers and has no inline script or style', async () => {
    const res = await fetch(`${app.url}/console/login`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const page = await res.text();
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page).not.toMatch(/\sstyle=|\son[a-z]+=/i);
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
    const js = await fetch(`${app.url}/console/static/console.js`);
    expect(js.headers.get('content-type')).toContain('text/javascript');
  });

  it('redirects a signed-out person to the sign-in form and refuses the event stream', async () => {
    const res = await fetch(`${app.url}/console`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/login');
    expect((await fetch(`${app.url}/console/events`)).status).toBe(401);
  });
});

describe('console sign-in', () => {
  it('accepts a hashed key and a key from a variable, refuses a wrong key and audits it', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    expect(await pageText(alice, '/console')).toContain('signed in as <b>alice</b>');
    const bob = await signInWithKey(app.url, 'bob', CONSOLE_KEYS.bob);
    expect(await pageText(bob, '/console')).toContain('signed in as <b>bob</b>');
    await expect(signInWithKey(app.url, 'alice', 'wrong')).rejects.toThrow('401');
    await expect(signInWithKey(app.url, 'carol', 'anything')).rejects.toThrow('401'); // carol has no console key
    const { body } = await app.admin(`/v1/audit?q=wrong_console_key`);
    expect(body.events[0]).toMatchObject({ type: 'auth_failed', data: { via: 'console', person: 'alice', reason: 'wrong_console_key' } });
    expect(JSON.stringify(body)).not.toContain('wrong"');
  });

  it('locks a person out after repeated failures', async () => {
    for (let i = 0; i < 10; i++) await signInWithKey(app.url, 'dana', 'guess').catch(() => undefined);
    await expect(signInWithKey(app.url, 'dana', 'dana-console-key-0123456789')).rejects.toThrow('429');
  });

  it('refuses a sign-in form posted without its cookie (login CSRF)', async () => {
    const res = await fetch(`${app.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.url },
      body: new URLSearchParams({ csrf: 'forged', person: 'alice', key: CONSOLE_KEYS.alice }).toString(),
    });
    expect(res.status).toBe(403);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('cs_session='))).toBe(false);
  });

  it('signs in once with a one-time link, then never again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-console-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, CONSOLE_POLICY);
    const env = {
      REDIS_URL: inject('redisUrl') ?? '',
      COUNTERSIGN_PREFIX: app.prefix,
      POLICY_FILE: policyFile,
      PUBLIC_URL: app.url,
      AGENT_BILLING_SECRET: app.secrets.billing,
      AGENT_OPS_SECRET: app.secrets.ops,
      ...CONSOLE_ENV,
    };
    const link = await consoleSignInLink(env, 'carol');
    expect(link).toMatch(new RegExp(`^${app.url}/console/login/once\\?token=[A-Za-z0-9_-]{40,}$`));
    const first = await fetch(link, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const cookie = first.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!;
    expect(cookie).toMatch(/Path=\/console; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    expect(await pageText({ cookie: cookie.split(';')[0]! }, '/console')).toContain('signed in as <b>carol</b>');
    expect((await fetch(link, { redirect: 'manual' })).status).toBe(401);
    await expect(consoleSignInLink(env, 'nobody')).rejects.toThrow('no person "nobody"');
  });
});

describe('console decisions', () => {
  it('escapes everything the agent wrote', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const { body } = await app.billing.propose(
      proposalBody({
        intent: '<script>alert(1)</script> "quoted" \'single\' & <b>bold</b>',
        action: { tool: 'payments', operation: 'refund', target: '"><img src=x onerror=alert(2)>', parameters: { note: '</pre><script>alert(3)</script>' } },
      }),
    );
    const card = await pageText(alice, `/console/proposals/${body.id}/card`);
    expect(card).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &#39;single&#39; &amp; &lt;b&gt;bold&lt;/b&gt;');
    expect(card).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(card).not.toMatch(/<script|<img|<b>bold/);
  });

  it('refuses a decision without the CSRF token or from another origin', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const { body } = await app.billing.propose(proposalBody());
    expect((await decide({ ...alice, csrf: 'wrong' }, body.id, { vote: 'approve' })).status).toBe(403);
    expect((await decide(alice, body.id, { vote: 'approve' }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await app.admin(`/v1/proposals/${body.id}`)).body.status).toBe('pending');
    const ok = await decide(alice, body.id, { vote: 'approve' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, status: 'approved' });
  });

  it('needs a reason to deny a high-risk proposal, says who may not decide, and counts a quorum', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const bob = await signInWithKey(app.url, 'bob', CONSOLE_KEYS.bob);
    const high = (await app.billing.propose(proposalBody())).body;
    const refused = await decide(alice, high.id, { vote: 'deny' });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ ok: false, why: 'reason_required' });
    expect(await (await decide(alice, high.id, { vote: 'deny', reason: 'not a duplicate' })).json()).toMatchObject({ ok: true, status: 'denied' });
    const { body: got } = await app.admin(`/v1/proposals/${high.id}`);
    expect(got.approvals[0]).toMatchObject({ person: 'alice', platform: 'console', vote: 'deny', reason: 'not a duplicate' });

    // Default route: approvers are "security" (alice, carol); bob is not one of them.
    const other = (await app.ops.propose(proposalBody({ action: { tool: 'crm', operation: 'update', target: 'crm:1', parameters: {} } }))).body;
    expect(await pageText(bob, `/console/proposals/${other.id}/card`)).toContain('Only members of &quot;security&quot; may decide on this proposal.');
    expect(await (await decide(bob, other.id, { vote: 'approve' })).json()).toMatchObject({ ok: false, why: 'not_an_approver' });

    // Two of finance for a large payment (critical: each approval is confirmed, see critical-approvals).
    const large = (await app.ops.propose(proposalBody({ context: { value: { amount: 50_000, currency: 'EUR' } } }))).body;
    expect(await (await decide(alice, large.id, { vote: 'approve', confirm: 'yes' })).json()).toMatchObject({ ok: true, status: 'pending', message: expect.stringContaining('1 of 2') });
    expect(await pageText(alice, `/console/proposals/${large.id}/card`)).toContain('You approved this proposal; waiting for others.');
    expect(await (await decide(bob, large.id, { vote: 'approve', confirm: 'yes' })).json()).toMatchObject({ ok: true, status: 'approved' });
  });

  it('works without the script: a plain form post redirects back with the result', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const { body } = await app.billing.propose(proposalBody());
    const refused = await decide(alice, body.id, { vote: 'deny' }, { accept: 'text/html' });
    expect(refused.status).toBe(303);
    expect(refused.headers.get('location')).toBe(`/console/proposals/${body.id}?result=reason_required`);
    expect(await pageText(alice, refused.headers.get('location')!)).toContain('A reason is required to deny a high-risk proposal.');
    const ok = await decide(alice, body.id, { vote: 'approve' }, { accept: 'text/html' });
    expect(ok.headers.get('location')).toBe(`/console/proposals/${body.id}?result=recorded`);
    const page = await pageText(alice, ok.headers.get('location')!);
    expect(page).toContain('Your decision is recorded.');
    expect(page).toContain('Approved by alice');
  });

  it('does not let a sponsor decide on their agent', async () => {
    // dana sponsors billing-agent and is in finance; her key is locked out above, so use a link.
    const { body } = await app.billing.propose(proposalBody());
    const env = { REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix, POLICY_FILE: writePolicy(), PUBLIC_URL: app.url, AGENT_BILLING_SECRET: 'x', AGENT_OPS_SECRET: 'y', ...CONSOLE_ENV };
    const first = await fetch(await consoleSignInLink(env, 'dana'), { redirect: 'manual' });
    const cookie = first.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
    const page = await pageText({ cookie }, '/console');
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)?.[1] ?? '';
    expect(await pageText({ cookie }, `/console/proposals/${body.id}/card`)).toContain('You sponsor agent &quot;billing-agent&quot;');
    expect(await (await decide({ cookie, csrf }, body.id, { vote: 'approve' })).json()).toMatchObject({ ok: false, why: 'sponsor' });
  });
});

function writePolicy(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'countersign-console-')), 'policy.yaml');
  writeFileSync(file, CONSOLE_POLICY);
  return file;
}

describe('console live updates', () => {
  it('streams a change event when a card is posted and when it is decided', async () => {
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const abort = new AbortController();
    const res = await fetch(`${app.url}/console/events`, { headers: { cookie: alice.cookie }, signal: abort.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const until = async (pattern: RegExp) => {
      const deadline = Date.now() + 5000;
      while (!pattern.test(text) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
      return text;
    };
    await until(/retry: \d+/);
    const { body } = await app.billing.propose(proposalBody());
    expect(await until(new RegExp(`"id":"${body.id}","change":"posted"`))).toContain('event: proposal');
    await decide(alice, body.id, { vote: 'approve' });
    expect(await until(new RegExp(`"id":"${body.id}","change":"(updated|reply)"`))).toMatch(/updated|reply/);
    abort.abort();
  });
});
