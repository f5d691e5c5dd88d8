import { describe, expect, it } from 'vitest';
import { CallbackVerificationError, CountersignApiError, CountersignClient } from '../../src/client/index.ts';
import { AGENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signedHeaders, verifySignature } from '../../src/core/signing.ts';

// The agent client against a scripted fetch: every request carries a signature the server's
// own check accepts, answers map to typed errors, wait() loops long-polls, callbacks verify.

const SECRET = 'client-test-secret';
const NOW = 1_800_000_000_000;

interface Seen {
  method: string;
  url: URL;
  body: string;
  signatureOk: boolean;
}

function fakeFetch(answers: { status: number; body: unknown }[], seen: Seen[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const headers = init?.headers as Record<string, string>;
    const body = typeof init?.body === 'string' ? init.body : '';
    const method = init?.method ?? 'GET';
    const check = verifySignature(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], { method, path: `${url.pathname}${url.search}`, body }, NOW);
    seen.push({ method, url, body, signatureOk: check.ok && headers[AGENT_HEADER] === 'billing-agent' });
    const answer = answers.shift() ?? { status: 500, body: { error: 'internal', message: 'no scripted answer' } };
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}

function client(answers: { status: number; body: unknown }[], seen: Seen[], base = 'http://cs.test') {
  return new CountersignClient({ url: base, agent: 'billing-agent', secret: SECRET, fetch: fakeFetch(answers, seen), now: () => NOW });
}

const proposal = (status: string) => ({ id: 'p_1', status });

describe('CountersignClient', () => {
  it('signs each request over method, path and body, including a base path', async () => {
    const seen: Seen[] = [];
    const c = client([{ status: 201, body: proposal('pending') }, { status: 200, body: proposal('pending') }, { status: 200, body: proposal('cancelled') }], seen, 'http://cs.test/gateway/');
    await c.propose({ intent: 'refund', action: { tool: 'payments', operation: 'refund', target: 'x' } });
    await c.get('p_1');
    await c.cancel('p_1', 'changed my mind');
    expect(seen.map((s) => `${s.method} ${s.url.pathname}`)).toEqual(['POST /gateway/v1/proposals', 'GET /gateway/v1/proposals/p_1', 'POST /gateway/v1/proposals/p_1/cancel']);
    expect(seen.every((s) => s.signatureOk)).toBe(true);
    expect(JSON.parse(seen[2]!.body)).toEqual({ reason: 'changed my mind' });
  });

  it('wait() reads once, then long-polls until the proposal is decided, or returns it at the timeout', async () => {
    const seen: Seen[] = [];
    const executor = { mode: 'executor' };
    const c = client([{ status: 200, body: proposal('pending') }, { status: 200, body: proposal('pending') }, { status: 200, body: { ...proposal('approved'), execution: executor } }], seen);
    expect((await c.wait('p_1', { timeout: 300 })).status).toBe('approved');
    expect(seen.map((s) => `${s.url.pathname}?${s.url.searchParams.get('timeout') ?? ''}`)).toEqual(['/v1/proposals/p_1?', '/v1/proposals/p_1/wait?25', '/v1/proposals/p_1/wait?25']);
    const timedOut: Seen[] = [];
    expect((await client([{ status: 200, body: proposal('pending') }], timedOut).wait('p_1', { timeout: 0 })).status).toBe('pending');
    expect(timedOut).toHaveLength(1);
    const final = client([{ status: 200, body: { ...proposal('approved'), execution: executor } }, { status: 200, body: proposal('succeeded') }], []);
    expect((await final.wait('p_1', { timeout: 300, until: 'final' })).status).toBe('succeeded');
  });

  it("wait() returns the read that carries the one-time execution_token, even when waiting until 'final'", async () => {
    const seen: Seen[] = [];
    const c = client(
      [
        { status: 200, body: proposal('pending') },
        { status: 200, body: { ...proposal('approved'), execution_token: 'eyJ.one-time.token' } },
        { status: 200, body: proposal('executing') },
        { status: 200, body: proposal('failed') },
      ],
      seen,
    );
    const p = await c.wait('p_1', { timeout: 300, until: 'final' });
    expect(p).toMatchObject({ status: 'approved', execution_token: 'eyJ.one-time.token' });
    expect(seen).toHaveLength(2);
  });

  it('wait() keeps reading an approved poll-mode proposal until the token and its credential come, without long-polling', async () => {
    const seen: Seen[] = [];
    const credential = { issuer: 'cache', username: 'cs_p_1', password: 'f'.repeat(64), url: 'redis://cs_p_1:ff@127.0.0.1:6390/0', expires_at: '2027-01-15T08:10:00.000Z' };
    const c = client(
      [
        { status: 200, body: proposal('pending') },
        // The approval is committed; the token is not recorded yet.
        { status: 200, body: { ...proposal('approved'), execution: null } },
        // Recorded for poll mode; its login is still being made on the downstream.
        { status: 200, body: { ...proposal('approved'), execution: { mode: 'poll' } } },
        { status: 200, body: { ...proposal('approved'), execution: { mode: 'poll' }, execution_token: 'eyJ.tok', credential } },
      ],
      seen,
    );
    const p = await c.wait('p_1', { timeout: 300 });
    expect(p.execution_token).toBe('eyJ.tok');
    expect(p.credential).toEqual(credential);
    // Typed: a driver takes the URL as it is.
    const url: string | undefined = p.credential?.url;
    expect(url).toMatch(/^redis:\/\//);
    expect(seen.map((s) => s.url.pathname)).toEqual(['/v1/proposals/p_1', '/v1/proposals/p_1/wait', '/v1/proposals/p_1', '/v1/proposals/p_1']);
  });

  it('wait() returns at once when the first read already carries the token (an allowed rule), and stops when someone else took it', async () => {
    const seen: Seen[] = [];
    const allowed = client([{ status: 200, body: { ...proposal('approved'), execution: { mode: 'poll' }, execution_token: 'eyJ.tok' } }], seen);
    expect((await allowed.wait('p_1', { timeout: 300, until: 'final' })).execution_token).toBe('eyJ.tok');
    expect(seen).toHaveLength(1);
    const taken = client([{ status: 200, body: { ...proposal('approved'), execution: { mode: 'poll' } } }, { status: 200, body: { ...proposal('executing'), execution: { mode: 'poll' } } }], []);
    const p = await taken.wait('p_1', { timeout: 300 });
    expect(p.status).toBe('executing');
    expect(p.execution_token).toBeUndefined();
  });

  it('wait() gives up on a token that does not come by the timeout, and a callback or executor execution is not waited for', async () => {
    let now = NOW;
    const seen: Seen[] = [];
    const c = new CountersignClient({ url: 'http://cs.test', agent: 'billing-agent', secret: SECRET, fetch: fakeFetch([{ status: 200, body: { ...proposal('approved'), execution: { mode: 'poll' } } }], seen), now: () => (now += 600) });
    const p = await c.wait('p_1', { timeout: 1 });
    expect(p).toMatchObject({ status: 'approved' });
    expect(seen).toHaveLength(1);
    const callback = client([{ status: 200, body: { ...proposal('approved'), execution: { mode: 'callback' } } }], []);
    expect((await callback.wait('p_1', { timeout: 300 })).execution).toEqual({ mode: 'callback' });
  });

  it('reportOutcome() sends the token and the result', async () => {
    const seen: Seen[] = [];
    await client([{ status: 200, body: proposal('succeeded') }], seen).reportOutcome('p_1', 'tok', { status: 'succeeded', status_code: 200, detail: 'ok' });
    expect(seen[0]!.url.pathname).toBe('/v1/proposals/p_1/outcome');
    expect(JSON.parse(seen[0]!.body)).toEqual({ token: 'tok', status: 'succeeded', status_code: 200, detail: 'ok' });
  });

  it('turns error answers into CountersignApiError with the API code', async () => {
    const c = client([{ status: 409, body: { error: 'conflict', message: 'this proposal is already approved' } }], []);
    const error = await c.cancel('p_1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CountersignApiError);
    expect(error).toMatchObject({ status: 409, code: 'conflict' });
    expect((error as Error).message).toContain('already approved');
  });

  it('verifies callbacks: right secret, path and agent only', () => {
    const c = new CountersignClient({ url: 'http://cs.test', agent: 'billing-agent', secret: SECRET, callbackUrl: 'https://agent.example/hooks/countersign?x=1', now: () => NOW });
    const credential = { issuer: 'orders-db', username: 'cs_p_1', password: 'pw', url: 'postgres://cs_p_1:pw@db.internal:5432/orders', expires_at: '2027-01-15T08:10:00.000Z' };
    const body = JSON.stringify({ proposal_id: 'p_1', status: 'approved', execution_token: 't', credential });
    const headers = signedHeaders('billing-agent', SECRET, { method: 'POST', path: '/hooks/countersign?x=1', body }, NOW);
    expect(c.verifyCallback(headers, body)).toMatchObject({ proposal_id: 'p_1', execution_token: 't' });
    expect(c.verifyCallback(headers, body).credential?.username).toBe('cs_p_1');
    expect(c.verifyCallback(new Headers(headers), Buffer.from(body), '/hooks/countersign?x=1').status).toBe('approved');
    expect(() => c.verifyCallback(headers, body.replace('approved', 'denied'))).toThrow(CallbackVerificationError);
    expect(() => c.verifyCallback(headers, body, '/other')).toThrow('bad_signature');
    expect(() => c.verifyCallback({ ...headers, [AGENT_HEADER]: 'ops-agent' }, body)).toThrow('another agent');
    const stale = signedHeaders('billing-agent', SECRET, { method: 'POST', path: '/hooks/countersign?x=1', body }, NOW - 10 * 60_000);
    expect(() => c.verifyCallback(stale, body)).toThrow('stale_timestamp');
  });
});
