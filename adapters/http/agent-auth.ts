import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AuthError, type AuthFailureCode } from '../../src/core/errors.ts';
import type { AgentSpec, Policy } from '../../src/core/policy/model.ts';
import { AGENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sameSecret, verifySignature, type SignatureCheck } from '../../src/core/signing.ts';

// Who is calling: an agent (HMAC-signed request, or an OIDC workload-identity JWT) or an
// admin (bearer COUNTERSIGN_ADMIN_TOKEN). Identity comes from the credential, never the body.

export type Caller =
  /**
   * `requestKey` names a signed request (null for bearer tokens): a retry of the same bytes has
   * the same key. `signedAt`: when the credential says the request was made (the signed
   * timestamp; a JWT's iat), in ms, null when it says nothing; it may be before the request arrived.
   */
  | { kind: 'agent'; agent: AgentSpec; via: 'hmac' | 'oidc' | 'mcp_key'; requestKey: string | null; signedAt: number | null }
  | { kind: 'admin' };

export interface RequestCredentials {
  method: string;
  /** Path and query as received: the signature covers them. */
  route: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function header(headers: RequestCredentials['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A short, non-secret name for one signed request: a retry of the same bytes has the same one. */
function requestKey(agent: string, signature: string): string {
  return createHash('sha256').update(`${agent}\n${signature}`).digest('hex').slice(0, 40);
}

const NOBODYS_SECRET = randomBytes(32).toString('base64url');

/** A signature check's reason as the caller reads it (AuthFailureCode). */
const PUBLIC_CODE: Record<Exclude<SignatureCheck, { ok: true }>['reason'], AuthFailureCode> = {
  missing_headers: 'missing_credentials',
  bad_timestamp: 'stale_timestamp',
  stale_timestamp: 'stale_timestamp',
  bad_signature: 'bad_signature',
};

export interface AgentAuthOptions {
  policy: Policy;
  adminToken: string | null;
  now: () => number;
}

export interface AgentAuthenticator {
  /**
   * Throws AuthError (401) with a reason for the audit log. `allowMcpKey`: a bearer that is not
   * a JWT may be an agent's MCP gateway key (only the gateway's `/mcp` takes them).
   */
  authenticate(req: RequestCredentials, allowAdmin: boolean, allowMcpKey?: boolean): Promise<Caller>;
}

export function createAgentAuthenticator(options: AgentAuthOptions): AgentAuthenticator {
  const jwksByIssuer = new Map<string, Promise<JWTVerifyGetKey>>();

  // OIDC discovery, once per issuer: the issuer's document names its JWKS.
  function jwksFor(issuer: string): Promise<JWTVerifyGetKey> {
    let jwks = jwksByIssuer.get(issuer);
    if (jwks === undefined) {
      jwks = (async () => {
        const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`OIDC discovery for ${issuer} answered ${res.status}`);
        const doc = (await res.json()) as { jwks_uri?: unknown };
        if (typeof doc.jwks_uri !== 'string') throw new Error(`OIDC discovery for ${issuer} has no jwks_uri`);
        return createRemoteJWKSet(new URL(doc.jwks_uri));
      })();
      jwks.catch(() => jwksByIssuer.delete(issuer));
      jwksByIssuer.set(issuer, jwks);
    }
    return jwks;
  }

  async function fromJwt(token: string): Promise<Caller> {
    let claims;
    try {
      claims = decodeJwt(token);
    } catch {
      throw new AuthError('malformed_bearer_token', 'invalid_token');
    }
    const agent =
      typeof claims.iss === 'string' && typeof claims.sub === 'string'
        ? options.policy.agentByOidc(claims.iss, claims.sub, claims.aud ?? [])
        : undefined;
    if (agent === undefined || agent.oidc === null) throw new AuthError('unknown_oidc_identity', 'invalid_token');
    let getKey: JWTVerifyGetKey;
    try {
      getKey = await jwksFor(agent.oidc.issuer);
    } catch {
      throw new AuthError('oidc_issuer_unreachable', 'invalid_token');
    }
    let iat: number | undefined;
    try {
      ({ payload: { iat } } = await jwtVerify(token, getKey, {
        issuer: agent.oidc.issuer,
        subject: agent.oidc.subject,
        audience: agent.oidc.audience,
        currentDate: new Date(options.now()),
        clockTolerance: 30,
      }));
    } catch {
      throw new AuthError('invalid_oidc_token', 'invalid_token');
    }
    return { kind: 'agent', agent, via: 'oidc', requestKey: null, signedAt: typeof iat === 'number' ? iat * 1000 : null };
  }

  // Keys are compared by their SHA-256: a map lookup on a digest leaks nothing about the key.
  function fromMcpKey(key: string): Caller {
    const agent = options.policy.agentByMcpKeyHash(createHash('sha256').update(key).digest('hex'));
    if (agent === undefined) throw new AuthError('unknown_mcp_key', 'invalid_token');
    return { kind: 'agent', agent, via: 'mcp_key', requestKey: null, signedAt: null };
  }

  return {
    async authenticate(req, allowAdmin, allowMcpKey = false) {
      const authorization = header(req.headers, 'authorization');
      const bearer = authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
      if (bearer !== undefined) {
        if (options.adminToken !== null && sameSecret(bearer, options.adminToken)) {
          if (!allowAdmin) throw new AuthError('admin_token_not_accepted_here', 'invalid_token');
          return { kind: 'admin' };
        }
        if (allowMcpKey && bearer.split('.').length !== 3) return fromMcpKey(bearer);
        return fromJwt(bearer);
      }
      const agentId = header(req.headers, AGENT_HEADER);
      if (agentId === undefined) throw new AuthError('missing_credentials', 'missing_credentials');
      const agent = options.policy.agentById(agentId);
      const signature = header(req.headers, SIGNATURE_HEADER);
      const timestamp = header(req.headers, TIMESTAMP_HEADER);
      // An agent that does not exist (or signs no requests) is checked against a key nobody has:
      // the caller gets the same code as for a wrong secret, in about the same time.
      const secret = agent?.secret ?? NOBODYS_SECRET;
      const check = verifySignature(secret, timestamp, signature, { method: req.method, path: req.route, body: req.body }, options.now());
      if (agent === undefined) throw new AuthError('unknown_agent', check.ok ? 'bad_signature' : PUBLIC_CODE[check.reason]);
      if (agent.secret === null) throw new AuthError('agent_has_no_signing_secret', check.ok ? 'bad_signature' : PUBLIC_CODE[check.reason]);
      if (!check.ok) throw new AuthError(check.reason, PUBLIC_CODE[check.reason]);
      // Checked above: whole seconds, within the allowed skew of now.
      return { kind: 'agent', agent, via: 'hmac', requestKey: requestKey(agent.id, signature ?? ''), signedAt: Number(timestamp) * 1000 };
    },
  };
}
