import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters, type RemoteJWKSet } from 'jose';

// The check of the token the Bot Connector puts on every request to /api/messages, as
// Microsoft documents it for a bot ("Authenticate requests from the Bot Connector service"):
// issuer, audience = our app id, lifetime with 5 minutes of skew, an RS* signature by a key of
// the OpenID metadata's JWKS that is endorsed for the activity's channel, and a `serviceurl`
// claim equal to the activity's serviceUrl.
//
// countersign does this itself, with jose, instead of botframework-connector's check, which
// picks its branch (ASE channel, emulator, skill) from fields the sender controls, throws
// untyped jsonwebtoken errors for a forged signature or a future nbf, fetches keys without a
// timeout, and prints the signing key's PEM to stderr on every refused token. The SDK still
// does all the outbound work (credentials, connector clients).

export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512'];
const CLOCK_SKEW_SECONDS = 5 * 60;

/** Why a token was refused: the code the `auth_failed` audit event carries (never the token). */
export type BotTokenRefusal =
  | 'missing_token'
  | 'malformed_token'
  | 'alg_not_allowed'
  | 'wrong_issuer'
  | 'unknown_signing_key'
  | 'bad_signature'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'wrong_audience'
  | 'key_not_endorsed'
  | 'service_url_mismatch'
  | 'invalid_token';

/** The request does not carry a valid Bot Connector token: 401. */
export class BotTokenRefused extends Error {
  constructor(readonly reason: BotTokenRefusal) {
    super(`Bot Framework token refused: ${reason}`);
    this.name = 'BotTokenRefused';
  }
}

/** The signing keys could not be loaded, so no token can be judged: 503, not the sender's fault. */
export class BotKeysUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BotKeysUnavailable';
  }
}

export interface BotTokenCheck {
  appId: string;
  openIdMetadataUrl: string;
  issuers: readonly string[];
}

export interface BotTokenTimings {
  /** The clock token lifetimes are judged by (countersign's injected clock). */
  now?: () => number;
  /** Each fetch of the metadata or the keys. */
  fetchTimeoutMs?: number;
  /** How long the metadata document (which names the JWKS) is used before it is read again. */
  metadataMaxAgeMs?: number;
  /** After a failed load with no keys at hand, requests are answered at once for this long. */
  retryAfterMs?: number;
}

export interface VerifiedBotToken {
  claims: JWTPayload;
}

const refuse = (reason: BotTokenRefusal): never => {
  throw new BotTokenRefused(reason);
};

/** jose's verdicts, as refusal codes; anything else is about loading the keys. */
function refusalOf(e: unknown): BotTokenRefusal | null {
  if (e instanceof errors.JWKSNoMatchingKey) return 'unknown_signing_key';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (e instanceof errors.JWTExpired) return 'token_expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'token_not_yet_valid';
    if (e.claim === 'aud') return 'wrong_audience';
    if (e.claim === 'iss') return 'wrong_issuer';
    return 'invalid_token';
  }
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return 'malformed_token';
  if (e instanceof errors.JOSENotSupported || e instanceof errors.JWKInvalid) return 'invalid_token';
  return null;
}

export function botTokenVerifier(check: BotTokenCheck, timings: BotTokenTimings = {}) {
  const fetchTimeoutMs = timings.fetchTimeoutMs ?? 5000;
  const metadataMaxAgeMs = timings.metadataMaxAgeMs ?? 24 * 3600_000;
  const retryAfterMs = timings.retryAfterMs ?? 10_000;
  const now = timings.now ?? Date.now;
  let current: { uri: string; jwks: RemoteJWKSet; loadedAt: number } | null = null;
  let loading: Promise<RemoteJWKSet> | null = null;
  let failedAt = -Infinity;

  async function readMetadata(): Promise<string> {
    const res = await fetch(check.openIdMetadataUrl, { signal: AbortSignal.timeout(fetchTimeoutMs), headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`the OpenID metadata at ${check.openIdMetadataUrl} answered ${res.status}`);
    const doc = (await res.json()) as { jwks_uri?: unknown };
    const uri = typeof doc.jwks_uri === 'string' ? URL.parse(doc.jwks_uri) : null;
    if (uri === null || !/^https?:$/.test(uri.protocol)) throw new Error(`the OpenID metadata at ${check.openIdMetadataUrl} names no http(s) jwks_uri`);
    // Metadata read over TLS must not send us to keys read in the clear.
    if (check.openIdMetadataUrl.startsWith('https:') && uri.protocol !== 'https:') throw new Error(`the OpenID metadata at ${check.openIdMetadataUrl} names a jwks_uri that is not https`);
    return uri.href;
  }

  /** The JWKS named by the metadata; read again after metadataMaxAgeMs, the stale one kept if that fails. */
  function keys(): Promise<RemoteJWKSet> {
    const at = Date.now();
    if (current !== null && at - current.loadedAt < metadataMaxAgeMs) return Promise.resolve(current.jwks);
    if (loading !== null) return loading;
    // Just failed: the keys at hand, if any, rather than another fetch for every request.
    if (at - failedAt < retryAfterMs) {
      return current !== null ? Promise.resolve(current.jwks) : Promise.reject(new BotKeysUnavailable('the Bot Framework signing keys could not be loaded a moment ago'));
    }
    loading = readMetadata()
      .then((uri) => {
        // Same JWKS address: keep the resolver, and with it the keys it has cached.
        const jwks = current?.uri === uri ? current.jwks : createRemoteJWKSet(new URL(uri), { timeoutDuration: fetchTimeoutMs });
        current = { uri, jwks, loadedAt: Date.now() };
        return jwks;
      })
      .catch((e: unknown) => {
        failedAt = Date.now();
        if (current !== null) return current.jwks;
        throw new BotKeysUnavailable(`the Bot Framework signing keys could not be loaded: ${(e as Error).message}`);
      })
      .finally(() => {
        loading = null;
      });
    return loading;
  }

  return {
    async verify(authorization: string, activity: { channelId?: unknown; serviceUrl?: unknown }): Promise<VerifiedBotToken> {
      const parts = authorization.split(' ');
      const token = parts.length === 2 && parts[0] === 'Bearer' && parts[1] !== '' ? parts[1]! : refuse('missing_token');
      let header: ProtectedHeaderParameters;
      let unverified: JWTPayload;
      try {
        header = decodeProtectedHeader(token);
        unverified = decodeJwt(token);
      } catch {
        return refuse('malformed_token');
      }
      // Settled before any key is fetched: `none`, HMAC (key confusion) and strangers' issuers.
      if (typeof header.alg !== 'string' || !ALLOWED_ALGORITHMS.includes(header.alg)) refuse('alg_not_allowed');
      if (typeof unverified.iss !== 'string' || !check.issuers.includes(unverified.iss)) refuse('wrong_issuer');
      if (typeof header.kid !== 'string' || header.kid === '') refuse('unknown_signing_key');
      const jwks = await keys();
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(token, jwks, {
          algorithms: ALLOWED_ALGORITHMS,
          issuer: [...check.issuers],
          audience: check.appId,
          clockTolerance: CLOCK_SKEW_SECONDS,
          requiredClaims: ['exp'],
          currentDate: new Date(now()),
        }));
      } catch (e) {
        const reason = refusalOf(e);
        if (reason === null) throw new BotKeysUnavailable(`the Bot Framework signing keys could not be loaded: ${(e as Error).message}`);
        return refuse(reason);
      }
      // The SDK reads the audience as one string (a list that holds our id would fail later, as a 500).
      if (claims.aud !== check.appId) refuse('wrong_audience');
      // A key Microsoft endorses for some channels only may not sign activities of another.
      const key = jwks.jwks()?.keys.find((k) => k.kid === header.kid) as { endorsements?: unknown } | undefined;
      if (key === undefined) refuse('unknown_signing_key');
      const endorsements = key?.endorsements;
      if (Array.isArray(endorsements) && endorsements.length > 0 && !endorsements.includes(activity.channelId)) refuse('key_not_endorsed');
      // The token names the service it came from; replies go to the activity's serviceUrl.
      if (typeof activity.serviceUrl !== 'string' || claims['serviceurl'] !== activity.serviceUrl) refuse('service_url_mismatch');
      return { claims };
    },
  };
}
