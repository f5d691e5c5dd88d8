import { SignJWT, createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createJwtSigner, generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';

// The signer's claim checks: explicit typing (RFC 8725 §3.11), issuer, audience, and the
// upgrade window for tokens minted before typing (header typ "JWT").

const ISSUER = 'https://cs.example';
let keyText: string;
let jwk: JWK;

beforeAll(async () => {
  keyText = await generateSigningKey();
  jwk = JSON.parse(keyText) as JWK;
});

function claims(iatSeconds = Math.floor(Date.now() / 1000)) {
  return { sub: 'ops-agent', aud: 'deploy', jti: 't_1', iat: iatSeconds, exp: iatSeconds + 300, proposal_id: 'p_1', action_digest: 'd', approvers: [] as string[] };
}

/** A token with countersign's own key and kid, but the header and claims given here. */
async function forge(typ: string | undefined, c: Record<string, unknown> = { ...claims(), iss: ISSUER }): Promise<string> {
  return new SignJWT(c).setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid!, ...(typ === undefined ? {} : { typ }) }).sign(await importJWK(jwk, 'EdDSA'));
}

describe('execution token typing and claims', () => {
  it('signs with typ countersign-exec+jwt and verifies its own tokens', async () => {
    const signer = await createJwtSigner(keyText, () => ISSUER);
    const token = await signer.sign(claims());
    expect(decodeProtectedHeader(token).typ).toBe('countersign-exec+jwt');
    expect(await signer.verify(token, Date.now())).toMatchObject({ ...claims(), iss: ISSUER });
    expect(await signer.verify(token, Date.now(), { audience: 'deploy' })).not.toBeNull();
  });

  it('writes what a downstream verifies against the JWKS, byte for byte the token jose would sign', async () => {
    const signer = await createJwtSigner(keyText, () => ISSUER);
    const c = claims();
    const token = await signer.sign(c);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(signer.jwks() as { keys: JWK[] }), { issuer: ISSUER, audience: 'deploy', algorithms: ['EdDSA'] });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', kid: jwk.kid, typ: 'countersign-exec+jwt' });
    expect(payload).toEqual({ ...c, iss: ISSUER });
    // Ed25519 signatures are deterministic: the same header and claims give the same token.
    const { sub, aud, jti, iat, exp, ...rest } = c;
    const byJose = await new SignJWT(rest)
      .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid!, typ: 'countersign-exec+jwt' })
      .setIssuer(ISSUER).setSubject(sub).setAudience(aud).setJti(jti).setIssuedAt(iat).setExpirationTime(exp)
      .sign(await importJWK(jwk, 'EdDSA'));
    expect(token).toBe(byJose);
  });

  it('refuses another typ, another issuer, an unexpected audience', async () => {
    const signer = await createJwtSigner(keyText, () => ISSUER);
    expect(await signer.verify(await forge('countersign-exec+jwt'), Date.now())).not.toBeNull();
    expect(await signer.verify(await forge('at+jwt'), Date.now())).toBeNull();
    expect(await signer.verify(await forge(undefined), Date.now())).toBeNull();
    expect(await signer.verify(await forge('countersign-exec+jwt', { ...claims(), iss: 'https://other.example' }), Date.now())).toBeNull();
    expect(await signer.verify(await forge('countersign-exec+jwt'), Date.now(), { audience: 'payments' })).toBeNull();
    // Outcome reports ignore expiry, not typing.
    expect(await signer.verify(await forge('at+jwt'), Date.now(), { ignoreExpiry: true })).toBeNull();
  });

  it('accepts tokens minted before typing (typ JWT) only when issued before the upgrade window ends', async () => {
    const now = Date.now();
    const legacy = await forge('JWT', { ...claims(Math.floor(now / 1000)), iss: ISSUER });
    expect(await (await createJwtSigner(keyText, () => ISSUER)).verify(legacy, now)).toBeNull();
    const upgrading = await createJwtSigner(keyText, () => ISSUER, { legacyTokensIssuedBefore: now + 60_000 });
    expect(await upgrading.verify(legacy, now)).toMatchObject({ jti: 't_1' });
    const after = await forge('JWT', { ...claims(Math.floor((now + 120_000) / 1000)), iss: ISSUER });
    expect(await upgrading.verify(after, now + 120_000)).toBeNull();
    // The window is for the old header only: other types stay refused in it.
    expect(await upgrading.verify(await forge('at+jwt'), now)).toBeNull();
    expect(await upgrading.verify(await forge(undefined), now)).toBeNull();
  });
});
