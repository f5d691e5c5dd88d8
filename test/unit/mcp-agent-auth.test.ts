import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgentAuthenticator, type AgentAuthenticator, type Caller, type RequestCredentials } from '../../adapters/http/agent-auth.ts';
import { AuthError } from '../../src/core/errors.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';

// Bearer keys for the MCP gateway: taken only where the gateway asks for them (`allowMcpKey`),
// compared by hash, and never in the way of the admin token or an OIDC JWT. The OIDC issuer is
// a real local server (discovery + JWKS), as in test/e2e/oidc.redis.test.ts.

const MCP_KEY_A = 'mcp-key-of-agent-a-0123456789abcdef';
const MCP_KEY_B = 'mcp-key-of-agent-b-fedcba9876543210';
const ADMIN_TOKEN = 'admin-token-0123456789abcdefghij';
const SUBJECT = 'system:serviceaccount:ai:deployer';

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let issuer: Server;
let issuerUrl: string;
let signingKey: SigningKey;
let auth: AgentAuthenticator;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
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

  const hashB = createHash('sha256').update(MCP_KEY_B).digest('hex').toUpperCase();
  const policy = loadPolicy(
    `version: 1
agents:
  - id: agent-a
    sponsors: []
    mcp_key_env: AGENT_A_MCP_KEY
  - id: agent-b
    sponsors: []
    mcp_key_sha256: ${hashB}
  - id: deploy-agent
    sponsors: []
    oidc: { issuer: "${issuerUrl}", subject: "${SUBJECT}", audience: countersign }
default: { effect: deny }
`,
    'p.yaml',
    { AGENT_A_MCP_KEY: MCP_KEY_A },
    POLICY_EXTENSIONS,
  );
  auth = createAgentAuthenticator({ policy, adminToken: ADMIN_TOKEN, now: () => Date.now() });
});

afterAll(() => new Promise<void>((r) => issuer.close(() => r())));

function bearer(token: string, route = '/mcp'): RequestCredentials {
  return { method: 'POST', route, headers: { authorization: `Bearer ${token}` }, body: Buffer.from('{}') };
}

async function refusal(call: Promise<Caller>): Promise<AuthError> {
  try {
    await call;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return err as AuthError;
  }
  throw new Error('authenticated, but should have been refused');
}

async function jwt(overrides: { iss?: string; sub?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(overrides.iss ?? issuerUrl)
    .setSubject(overrides.sub ?? SUBJECT)
    .setAudience('countersign')
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(signingKey);
}

describe('MCP keys', () => {
  it("names the agent whose key it is, where the gateway takes keys", async () => {
    const a = await auth.authenticate(bearer(MCP_KEY_A), false, true);
    expect(a).toMatchObject({ kind: 'agent', via: 'mcp_key', requestKey: null, signedAt: null });
    expect(a.kind === 'agent' && a.agent.id).toBe('agent-a');
    // A hash given in upper case in the policy still matches.
    const b = await auth.authenticate(bearer(MCP_KEY_B), false, true);
    expect(b.kind === 'agent' && b.agent.id).toBe('agent-b');
  });

  it('accepts no MCP key where the gateway does not ask for one', async () => {
    for (const allowMcpKey of [undefined, false]) {
      const err = await refusal(auth.authenticate(bearer(MCP_KEY_A, '/v1/proposals'), false, allowMcpKey));
      // Read as a (malformed) OIDC token: nothing about MCP keys is looked up here.
      expect(err.reason).toBe('malformed_bearer_token');
    }
    expect((await refusal(auth.authenticate(bearer(MCP_KEY_A), true, false))).reason).toBe('malformed_bearer_token');
  });

  it('refuses a key no agent has, its hash, or a near miss, as unknown_mcp_key without echoing it', async () => {
    const sha = createHash('sha256').update(MCP_KEY_A).digest('hex');
    for (const key of ['not-a-key-of-anyone-at-all-000000', sha, `${MCP_KEY_A}x`, MCP_KEY_A.slice(0, -1), MCP_KEY_A.toUpperCase()]) {
      const err = await refusal(auth.authenticate(bearer(key), false, true));
      expect(err.reason).toBe('unknown_mcp_key');
      expect(`${err.message} ${err.reason} ${JSON.stringify(err)}`).not.toContain(key);
    }
  });

  it('refuses the admin token on /mcp as admin_token_not_accepted_here, and takes it where admins are allowed', async () => {
    expect((await refusal(auth.authenticate(bearer(ADMIN_TOKEN), false, true))).reason).toBe('admin_token_not_accepted_here');
    expect(await auth.authenticate(bearer(ADMIN_TOKEN, '/v1/admin'), true, false)).toEqual({ kind: 'admin' });
  });

  it('sends a JWT-shaped bearer the OIDC way even where MCP keys are taken', async () => {
    const ok = await auth.authenticate(bearer(await jwt()), false, true);
    expect(ok).toMatchObject({ kind: 'agent', via: 'oidc' });
    expect(ok.kind === 'agent' && ok.agent.id).toBe('deploy-agent');
    // An identity the policy does not know is an OIDC refusal, not an unknown MCP key.
    expect((await refusal(auth.authenticate(bearer(await jwt({ sub: 'someone-else' })), false, true))).reason).toBe('unknown_oidc_identity');
    expect((await refusal(auth.authenticate(bearer('a.b.c'), false, true))).reason).toBe('malformed_bearer_token');
  });

  it('leaves requests without a bearer to request signing', async () => {
    const err = await refusal(auth.authenticate({ method: 'POST', route: '/mcp', headers: {}, body: Buffer.alloc(0) }, false, true));
    expect(err.reason).toBe('missing_credentials');
  });
});
