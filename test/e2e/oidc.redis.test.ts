import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.ts';

// Workload identity: a local OIDC issuer (discovery document + JWKS over real HTTP) signs
// JWTs; the policy maps issuer + subject + audience to an agent.

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

let issuer: Server;
let issuerUrl: string;
let app: TestApp;
let signingKey: SigningKey;
let strangerKey: SigningKey;
const SUBJECT = 'system:serviceaccount:ai:deployer';

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  issuer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/keys` }));
    else if (req.url === '/keys') res.end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => issuer.listen(0, '127.0.0.1', () => r()));
  const address = issuer.address();
  issuerUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  const policy = BASE_POLICY.replace(
    'agents:\n',
    `agents:\n  - id: deploy-agent\n    oidc: { issuer: "${issuerUrl}", subject: "${SUBJECT}", audience: countersign }\n`,
  );
  app = await startTestApp({ policy });
});

afterAll(() => new Promise<void>((r) => issuer.close(() => r())));

async function jwt(overrides: { sub?: string; aud?: string; iss?: string; exp?: number; iat?: number; key?: SigningKey } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(overrides.iss ?? issuerUrl)
    .setSubject(overrides.sub ?? SUBJECT)
    .setAudience(overrides.aud ?? 'countersign')
    .setIssuedAt(overrides.iat ?? now)
    .setExpirationTime(overrides.exp ?? now + 300)
    .sign(overrides.key ?? signingKey);
}

async function submit(token: string) {
  const res = await fetch(`${app.url}/v1/proposals`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(proposalBody({ action: { tool: 'k8s', operation: 'rollout', target: 'deploy/api' } })),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('OIDC bearer tokens', () => {
  it('accepts a valid token and takes the agent from it', async () => {
    const res = await submit(await jwt());
    expect(res.status).toBe(201);
    const got = await app.admin<{ agent: string }>(`/v1/proposals/${String(res.body['id'])}`);
    expect(got.body.agent).toBe('deploy-agent');
  });

  it.each([
    ['another audience', { aud: 'someone-else' }, 'unknown_oidc_identity'],
    ['another subject', { sub: 'system:serviceaccount:ai:intruder' }, 'unknown_oidc_identity'],
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 120 }, 'invalid_oidc_token'],
    ['a key the issuer does not publish', { key: undefined as unknown as SigningKey, stranger: true }, 'invalid_oidc_token'],
    ['an unknown issuer', { iss: 'http://127.0.0.1:1' }, 'unknown_oidc_identity'],
  ])('refuses %s with 401 and an audit event', async (_name, overrides, reason) => {
    const { stranger, ...rest } = overrides as typeof overrides & { stranger?: boolean };
    const token = await jwt({ ...rest, ...(stranger ? { key: strangerKey } : {}) } as Parameters<typeof jwt>[0]);
    const res = await submit(token);
    expect(res.status).toBe(401);
    const audit = await app.admin<{ events: { data: { reason: string } }[] }>('/v1/audit?q=auth_failed&limit=1');
    expect(audit.body.events[0]?.data.reason).toBe(reason);
    expect(JSON.stringify(audit.body)).not.toContain(token.split('.')[2]!);
  });
});

describe('the kill switch and OIDC agents', () => {
  const adminPost = async (path: string) => (await (await fetch(`${app.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).json()) as Record<string, string>;

  it('a token issued before the revocation proposes nothing after the restore (its iat is when the agent proposed)', async () => {
    const before = await jwt({ iat: Math.floor(Date.now() / 1000) - 2 });
    await adminPost('/v1/agents/deploy-agent/revoke');
    const restored = await adminPost('/v1/agents/deploy-agent/restore');
    const refused = await submit(before);
    expect(refused.status).toBe(403);
    expect(refused.body['error']).toBe('agent_revoked');
    // Issued after the revocation (iat has whole seconds): accepted.
    expect((await submit(await jwt({ iat: Math.floor(Date.parse(restored['revoked_at']!) / 1000) + 1 }))).status).toBe(201);
  });
});
