import { createServer } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { BOT_ISSUER, startBotTokenIssuer, type BotTokenIssuer } from '../helpers/bot-token-issuer.ts';
import { cardInvoke, channelMessage, postActivity, startFakeBotConnector, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { waitFor } from '../helpers/fake-slack.ts';

// Bot Framework tokens from a local issuer (OpenID metadata + JWKS over HTTP, its own RSA key)
// that countersign is pointed at through MICROSOFT_BOT_OPENID_METADATA_URL and
// MICROSOFT_BOT_TOKEN_ISSUERS. A valid token is accepted; every invalid one — and the forgeries
// an attacker tries — is a 401 with an `auth_failed` event naming the reason, changes nothing
// (no vote, no channel binding), prints nothing, and never lands in the audit or the logs.

const APP_ID = '11111111-2222-3333-4444-555555555555';
const ALICE = '00000000-0000-0000-0000-0000000a11ce';

let issuer: BotTokenIssuer;
let connector: FakeBotConnector;
let app: TestApp;
const logs: string[] = [];
let pending: string;

beforeAll(async () => {
  issuer = await startBotTokenIssuer();
  connector = await startFakeBotConnector();
  app = await startTestApp({
    env: {
      MICROSOFT_APP_ID: APP_ID,
      MICROSOFT_APP_PASSWORD: 'not-a-real-secret',
      MICROSOFT_BOT_OPENID_METADATA_URL: issuer.metadataUrl,
      MICROSOFT_BOT_TOKEN_ISSUERS: BOT_ISSUER,
      LOG_LEVEL: 'info',
    },
    start: {
      logStream: new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(chunk.toString('utf8'));
          done();
        },
      }),
    },
  });
  pending = await propose();
});
afterAll(async () => {
  await connector.close();
  await issuer.close();
});

async function propose(): Promise<string> {
  const res = await app.billing.propose(proposalBody());
  expect(res.status).toBe(201);
  return res.body.id as string;
}

// Anything the process prints while a request is handled (botframework-connector used to print the key's PEM).
let printed: string[] = [];
beforeEach(() => {
  printed = [];
  const keep = (...args: unknown[]) => void printed.push(args.map(String).join(' '));
  for (const method of ['error', 'warn', 'log', 'info', 'debug'] as const) vi.spyOn(console, method).mockImplementation(keep);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
    printed.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const approve = (proposal: string, headers: Record<string, string>, activity: Record<string, unknown> = {}) =>
  postActivity(
    app.url,
    { ...cardInvoke(connector.serviceUrl, { conversation: '19:finance@thread.tacv2;messageid=1', message: '1' }, { aad: ALICE }, 'countersign.approve', { proposal }), ...activity },
    headers,
  );

const now = () => Math.floor(Date.now() / 1000);
const auditOf = async (words: string) => (await app.admin<{ events: { type: string; actor: string; data: Record<string, unknown> }[] }>(`/v1/audit?limit=500&q=${words}`)).body.events;

describe('Bot Framework tokens from the configured issuer', () => {
  it.each<[string, () => Promise<string> | string, string, { channelId?: string }?]>([
    ['another audience', () => issuer.token('99999999-2222-3333-4444-555555555555', connector.serviceUrl), 'wrong_audience'],
    ['another issuer', () => issuer.token(APP_ID, connector.serviceUrl, { iss: 'https://api.botframework.evil' }), 'wrong_issuer'],
    ['an expired token', () => issuer.token(APP_ID, connector.serviceUrl, { nbf: now() - 7200, exp: now() - 600 }), 'token_expired'],
    ['a key id the issuer does not publish', () => issuer.token(APP_ID, connector.serviceUrl, { kid: 'rotated-away', stranger: true }), 'unknown_signing_key'],
    ['a bad signature (another key under the published kid)', () => issuer.token(APP_ID, connector.serviceUrl, { stranger: true }), 'bad_signature'],
    ['alg none with the published kid', () => issuer.unsigned(APP_ID, connector.serviceUrl), 'alg_not_allowed'],
    ['HS256 keyed with the public key (key confusion)', () => issuer.keyConfusion(APP_ID, connector.serviceUrl), 'alg_not_allowed'],
    ['a token not valid before ten minutes from now', () => issuer.token(APP_ID, connector.serviceUrl, { nbf: now() + 600 }), 'token_not_yet_valid'],
    ['a serviceurl claim that is not the activity serviceUrl', () => issuer.token(APP_ID, 'https://smba.attacker.example/'), 'service_url_mismatch'],
    ['a key not endorsed for the activity channel', () => issuer.token(APP_ID, connector.serviceUrl), 'key_not_endorsed', { channelId: 'webchat' }],
    ['a malformed token', () => 'not.a-jwt', 'malformed_token'],
  ])('refuses %s: 401, audited with its reason, nothing recorded or printed', async (_name, make, reason, activity = {}) => {
    const token = await make();
    const headers = { authorization: `Bearer ${token}` };
    const click = await approve(pending, headers, activity);
    const channel = `19:${reason}@thread.tacv2`;
    const connect = await postActivity(app.url, { ...channelMessage(connector.serviceUrl, channel, { aad: ALICE }, 'connect finance'), ...activity }, headers);
    expect([click.status, connect.status]).toEqual([401, 401]);
    expect(click.json).toEqual({ error: 'unauthorized' });
    expect(printed).toEqual([]);

    const failures = await waitFor(async () => {
      const found = (await auditOf('auth_failed+teams')).filter((e) => e.data['reason'] === reason);
      return found.length >= 2 ? found : null;
    }, { what: `auth_failed ${reason}` });
    expect(failures[0]).toMatchObject({ type: 'auth_failed', data: { reason, via: 'teams', path: '/api/messages' } });

    // Nothing recorded: the proposal has no vote, the channel no binding.
    expect((await app.admin(`/v1/proposals/${pending}`)).body.status).toBe('pending');
    expect(await auditOf(`approval_recorded+${pending}`)).toEqual([]);
    expect(await auditOf('channel_bound')).toEqual([]);
    expect(connector.calls).toEqual([]);

    // The token (or its claims, which identify it) is nowhere in the audit or the logs.
    const payload = token.split('.')[1] ?? token;
    const audit = JSON.stringify(await auditOf(''));
    for (const text of [audit, logs.join('')]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(payload);
      expect(text).not.toContain('PUBLIC KEY');
    }
    expect(logs.join('')).toContain(`"reason":"${reason}"`);
  });

  it('accepts a valid token: the click counts', async () => {
    const id = await propose();
    const res = await approve(id, { authorization: `Bearer ${await issuer.token(APP_ID, connector.serviceUrl)}` });
    expect(res.status).toBe(200);
    expect(res.json?.type).toBe('application/vnd.microsoft.card.adaptive');
    await waitFor(async () => (await app.admin(`/v1/proposals/${id}`)).body.status === 'approved', { what: 'approved' });
    const [vote] = await auditOf(`approval_recorded+${id}`);
    expect(vote?.actor).toBe('person:alice');
    expect(printed).toEqual([]);
    // The keys came from the configured issuer, not from login.botframework.com, and the
    // metadata was read once for all the requests of this file.
    expect(issuer.requests).toContain('/v1/.well-known/keys');
    expect(issuer.requests.filter((r) => r.endsWith('/openidconfiguration'))).toHaveLength(1);
  });
});

describe('when the signing keys cannot be loaded', () => {
  let down: TestApp;
  beforeAll(async () => {
    // A port that was just free: the metadata request is refused at once.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const port = typeof address === 'object' && address !== null ? address.port : 1;
    down = await startTestApp({
      env: { MICROSOFT_APP_ID: APP_ID, MICROSOFT_APP_PASSWORD: 'not-a-real-secret', MICROSOFT_BOT_OPENID_METADATA_URL: `http://127.0.0.1:${port}/v1/.well-known/openidconfiguration`, MICROSOFT_BOT_TOKEN_ISSUERS: BOT_ISSUER },
    });
  });

  it('answers 503 with Retry-After (the sender is not at fault), audits no auth failure and records nothing', async () => {
    const res = await fetch(`${down.url}/api/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await issuer.token(APP_ID, connector.serviceUrl)}` },
      body: JSON.stringify(cardInvoke(connector.serviceUrl, { conversation: '19:finance@thread.tacv2;messageid=1', message: '1' }, { aad: ALICE }, 'countersign.approve', { proposal: 'p_none' })),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect((await down.admin('/v1/audit?q=auth_failed')).body.events).toEqual([]);
    expect((await down.admin('/v1/audit?q=approval_recorded')).body.events).toEqual([]);
    expect(printed).toEqual([]);
  });
});
