import { SignJWT, createLocalJWKSet, decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { actionBody, executionPolicy, waitForStatus } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer, type RecordedRequest } from '../helpers/executor-server.ts';

// Execution tokens are typed (`typ: countersign-exec+jwt`, RFC 8725 §3.11) and redeem checks
// typ, iss and aud: a JWT made with countersign's own key for anything else, or for another
// tool, or a downstream that expects another audience, gets `{active: false}`. The forgeries
// here are signed with the real key (the worst case: only the claims differ).

let app: TestApp;
let executor: FakeHttpServer;
let signingJwk: JWK;
const held: RecordedRequest[] = [];

beforeAll(async () => {
  signingJwk = JSON.parse(await generateSigningKey()) as JWK;
  executor = await startFakeHttpServer();
  // Every execution is held open: its token stays redeemable while the test looks at it.
  executor.respond = (req) => {
    held.push(req);
    return 'hold';
  };
  app = await startTestApp({ policy: executionPolicy({ executorUrl: executor.url, timeout: '60s' }), env: { TOKEN_SIGNING_KEY: JSON.stringify(signingJwk) } });
});

afterAll(async () => {
  for (const req of held) req.reply(200, '{"ok":true}');
});

/** Proposes an allowed `deploy` action and returns the token its executor received. */
async function heldToken(target: string): Promise<{ id: string; token: string }> {
  const { body } = await app.ops.propose(actionBody('deploy', target));
  expect(body.status).toBe('approved');
  const [req] = await executor.waitFor(1, (r) => r.body?.action?.target === target);
  return { id: body.id as string, token: String(req!.headers.authorization).slice('Bearer '.length) };
}

/** The same token's claims, changed, signed again with countersign's own key. */
async function resign(token: string, change: { header?: Record<string, unknown>; claims?: JWTPayload }): Promise<string> {
  const header = { ...decodeProtectedHeader(token), ...change.header } as { alg: string; [k: string]: unknown };
  const key = await importJWK(signingJwk, 'EdDSA');
  return new SignJWT({ ...decodeJwt(token), ...change.claims }).setProtectedHeader(header).sign(key);
}

async function redeem(body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.url}/v1/tokens/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('typed execution tokens', () => {
  it('are minted with typ countersign-exec+jwt and still verify against the JWKS', async () => {
    const { token } = await heldToken('typed-1');
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'countersign-exec+jwt', kid: signingJwk.kid });
    const jwks = createLocalJWKSet((await (await fetch(`${app.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] });
    const { payload } = await jwtVerify(token, jwks, { issuer: app.url, audience: 'deploy', typ: 'countersign-exec+jwt', algorithms: ['EdDSA'] });
    expect(payload).toMatchObject({ sub: 'ops-agent', aud: 'deploy' });
  });

  it('a token of another typ is not active, and does not spend the real one', async () => {
    const { token } = await heldToken('typed-typ');
    expect((await redeem({ token: await resign(token, { header: { typ: 'at+jwt' } }) })).body).toEqual({ active: false });
    expect((await redeem({ token: await resign(token, { header: { typ: undefined } }) })).body).toEqual({ active: false });
    expect((await redeem({ token })).body).toMatchObject({ active: true, aud: 'deploy' });
  });

  it('a token from another issuer is not active, and does not spend the real one', async () => {
    const { token } = await heldToken('typed-iss');
    expect((await redeem({ token: await resign(token, { claims: { iss: 'https://other.example' } }) })).body).toEqual({ active: false });
    expect((await redeem({ token })).body).toMatchObject({ active: true, iss: app.url });
  });

  it('a token whose aud is not its proposal’s tool is not active', async () => {
    const { token } = await heldToken('typed-aud');
    expect((await redeem({ token: await resign(token, { claims: { aud: 'payments' } }) })).body).toEqual({ active: false });
  });

  it('a downstream that names the audience it expects: another audience is not active and spends nothing; its own is', async () => {
    const { id, token } = await heldToken('typed-downstream');
    expect((await redeem({ token, audience: 'payments' })).body).toEqual({ active: false });
    expect((await redeem({ token, audience: 'deploy' })).body).toMatchObject({ active: true, aud: 'deploy', proposal_id: id });
    expect((await redeem({ token, audience: 'deploy' })).body).toEqual({ active: false });
    // Bad input names the field.
    const bad = await redeem({ token, audience: '' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.issues)).toContain('audience');
  });

  it('the executor still runs to the end with a typed token', async () => {
    const { id } = await heldToken('typed-end');
    held.find((r) => r.body?.action?.target === 'typed-end')!.reply(200, '{"ok":true}');
    await waitForStatus(app.ops, id, (s) => s === 'succeeded');
  });
});
