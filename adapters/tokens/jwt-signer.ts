import { KeyObject, sign as signBytes } from 'node:crypto';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  importPKCS8,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWK,
} from 'jose';
import { ConfigError } from '../../src/core/errors.ts';
import type { ExecutionTokenClaims } from '../../src/core/execution.ts';
import type { PublicJwks, TokenSigner } from '../../src/core/ports.ts';

// Execution tokens: EdDSA (Ed25519) JWTs. TOKEN_SIGNING_KEY holds one of
//   - an Ed25519 private JWK:           {"kty":"OKP","crv":"Ed25519","d":"…","x":"…","kid":"2026-11"}
//   - a JWK set:                        {"keys":[<private JWK that signs>, <older JWKs, public or private>]}
//   - PEM: one or more blocks, PKCS8 "PRIVATE KEY" first (signs), then older keys as "PUBLIC KEY"
//     or "PRIVATE KEY" (openssl genpkey -algorithm ed25519)
// The first key signs; every key is published in the JWKS, so a key can be rotated: put the
// new one first, keep the old one listed until the last token it signed has expired.
// A key without `kid` gets its RFC 7638 thumbprint. Values are never echoed in errors.
//
// Tokens are explicitly typed (RFC 8725 §3.11): header `typ: countersign-exec+jwt`, so no
// other JWT made with the same key (an ID or access token, another product's) can pass for
// an execution token, and a downstream that checks typ tells them from its other JWTs.
// verify checks typ, iss and, when asked, aud: all before redeem spends anything.

const ALG = 'EdDSA';
export const EXECUTION_TOKEN_TYP = 'countersign-exec+jwt';
/** What releases before explicit typing wrote in the header. */
const LEGACY_TYP = 'JWT';

export interface LoadedKey {
  kid: string;
  publicJwk: JWK;
  privateKey: CryptoKey | null;
}

/** The variable a key came from, named in every error about it (AUDIT_SIGNING_KEY takes the same formats). */
export type KeyVariable = 'TOKEN_SIGNING_KEY' | 'AUDIT_SIGNING_KEY';

function failFor(variable: KeyVariable) {
  return (reason: string): never => {
    throw new ConfigError(`${variable}: ${reason}`);
  };
}

async function fromJwk(jwk: JWK, index: number, fail: (reason: string) => never): Promise<LoadedKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') fail(`key ${index + 1} is not an Ed25519 JWK (kty OKP, crv Ed25519)`);
  const publicJwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : await calculateJwkThumbprint(publicJwk);
  let privateKey: CryptoKey | null = null;
  if (typeof jwk.d === 'string') {
    try {
      privateKey = (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, ALG)) as CryptoKey;
    } catch {
      fail(`key ${index + 1} could not be imported`);
    }
  }
  return { kid, publicJwk: { ...publicJwk, kid, alg: ALG, use: 'sig' }, privateKey };
}

async function fromPem(block: string, index: number, fail: (reason: string) => never): Promise<LoadedKey> {
  try {
    const isPrivate = block.includes('PRIVATE KEY');
    const key = isPrivate ? await importPKCS8(block, ALG, { extractable: true }) : await importSPKI(block, ALG, { extractable: true });
    const { d: _private, ...publicPart } = await exportJWK(key);
    const loaded = await fromJwk(publicPart, index, fail);
    return { ...loaded, privateKey: isPrivate ? key : null };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return fail(`PEM block ${index + 1} is not an Ed25519 PKCS8 private key or SPKI public key`);
  }
}

export async function parseSigningKeys(text: string, variable: KeyVariable = 'TOKEN_SIGNING_KEY'): Promise<LoadedKey[]> {
  const fail: (reason: string) => never = failFor(variable);
  const trimmed = text.trim();
  let keys: LoadedKey[];
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      return fail('is neither valid JSON (a JWK or JWK set) nor PEM');
    }
    const list = Array.isArray((parsed as { keys?: unknown }).keys) ? ((parsed as { keys: unknown[] }).keys as JWK[]) : [parsed as JWK];
    keys = await Promise.all(list.map((jwk, i) => fromJwk(jwk, i, fail)));
  } else if (trimmed.startsWith('-----BEGIN')) {
    // Env files often carry PEM on one line with literal "\n".
    const pem = trimmed.replace(/\\n/g, '\n');
    const blocks = pem.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
    keys = await Promise.all(blocks.map((b, i) => fromPem(b, i, fail)));
  } else {
    return fail('must be an Ed25519 JWK, a JWK set ({"keys":[…]}) or PEM');
  }
  if (keys.length === 0) fail('contains no key');
  if (keys[0]!.privateKey === null) fail('the first key signs, so it must be a private key');
  const kids = new Set<string>();
  for (const key of keys) {
    if (kids.has(key.kid)) fail(`two keys have kid "${key.kid}"`);
    kids.add(key.kid);
  }
  return keys;
}

/** A fresh Ed25519 private JWK as JSON, for development. */
export async function generateSigningKey(): Promise<string> {
  const { privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify({ ...jwk, kid: `dev-${(await calculateJwkThumbprint(jwk)).slice(0, 16)}` });
}

function isClaims(p: Record<string, unknown>): boolean {
  return (
    typeof p['sub'] === 'string' &&
    typeof p['aud'] === 'string' &&
    typeof p['jti'] === 'string' &&
    typeof p['iat'] === 'number' &&
    typeof p['exp'] === 'number' &&
    typeof p['proposal_id'] === 'string' &&
    typeof p['action_digest'] === 'string' &&
    Array.isArray(p['approvers'])
  );
}

export interface JwtSignerOptions {
  /**
   * Upgrade window, ms since the epoch: tokens minted by an older release (header typ "JWT")
   * are accepted when issued before this instant; later ones, and any other typ, are not.
   * Unset: no window. The wiring sets it to start + EXECUTION_TOKEN_TTL (see app-deps.ts).
   */
  legacyTokensIssuedBefore?: number;
}

/** The header's typ as RFC 7515 compares it: case-insensitive, an "application/" prefix implied. */
function normalTyp(typ: unknown): string | null {
  return typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : null;
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');

/** `issuer` is read at each use: the public URL may only be known once the server listens. */
export async function createJwtSigner(keyText: string, issuer: () => string, options: JwtSignerOptions = {}): Promise<TokenSigner> {
  const keys = await parseSigningKeys(keyText);
  const signing = keys[0]!;
  // Signed with node:crypto (tens of µs), not jose's SignJWT, whose WebCrypto sign takes most of
  // a millisecond of a request that waits for the token; jose still verifies what this writes.
  const signingKey = KeyObject.from(signing.privateKey!);
  const header = base64url(JSON.stringify({ alg: ALG, kid: signing.kid, typ: EXECUTION_TOKEN_TYP }));
  const jwks: PublicJwks = { keys: keys.map((k) => ({ ...k.publicJwk })) };
  const keySet = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) });

  return {
    async sign(claims) {
      const { sub, aud, jti, iat, exp, ...rest } = claims;
      // The claims in the order jose wrote them, so tokens read the same as before.
      const payload = base64url(JSON.stringify({ ...rest, iss: issuer(), sub, aud, jti, iat, exp }));
      const input = `${header}.${payload}`;
      return `${input}.${signBytes(null, Buffer.from(input), signingKey).toString('base64url')}`;
    },
    async verify(token, nowMs, check = {}) {
      try {
        let currentDate = new Date(nowMs);
        if (check.ignoreExpiry === true) {
          const iat = decodeJwt(token).iat;
          if (typeof iat !== 'number') return null;
          currentDate = new Date(iat * 1000);
        }
        const { payload, protectedHeader } = await jwtVerify(token, keySet, {
          issuer: issuer(),
          algorithms: [ALG],
          currentDate,
          ...(check.audience === undefined ? {} : { audience: check.audience }),
        });
        if (!isClaims(payload)) return null;
        const typ = normalTyp(protectedHeader.typ);
        const legacy =
          typ === LEGACY_TYP.toLowerCase() && options.legacyTokensIssuedBefore !== undefined && (payload['iat'] as number) * 1000 < options.legacyTokensIssuedBefore;
        if (typ !== EXECUTION_TOKEN_TYP && !legacy) return null;
        return payload as unknown as ExecutionTokenClaims;
      } catch {
        return null;
      }
    },
    jwks: () => jwks,
  };
}
