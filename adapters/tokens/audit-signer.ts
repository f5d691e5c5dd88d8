import { KeyObject, createPublicKey, sign as edSign, verify as edVerify } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkpointBytes, type AuditSigner, type Checkpoint } from '../../src/core/audit-checkpoint.ts';
import { generateSigningKey, parseSigningKeys } from './jwt-signer.ts';

// Audit checkpoints are signed with AUDIT_SIGNING_KEY: Ed25519, in the formats and with the
// rotation rules of TOKEN_SIGNING_KEY (jwt-signer.ts parseSigningKeys: the first key signs,
// the others still verify). The signature is plain Ed25519 over checkpointBytes (RFC 8785
// JSON of the body), base64url: anyone with the public JWK and any Ed25519 library checks it,
// no JOSE needed. The key is read from the environment (or, in development, the data
// directory) and never written to Redis, so write access to Redis is not enough to sign.

const DEV_KEY_FILE = 'audit-signing-key';

export async function createAuditSigner(keyText: string): Promise<AuditSigner> {
  const keys = await parseSigningKeys(keyText, 'AUDIT_SIGNING_KEY');
  const signing = keys[0]!;
  const privateKey = KeyObject.from(signing.privateKey!);
  const jwks = keys.map((k) => ({ ...k.publicJwk }));
  const verifier = createAuditKeyVerifier({ keys: jwks });
  return {
    kid: signing.kid,
    async sign(body) {
      const full = { ...body, kid: signing.kid };
      return { ...full, sig: edSign(null, checkpointBytes(full), privateKey).toString('base64url') };
    },
    verify: (c: Checkpoint) => verifier.verify(c),
    publicJwks: () => ({ keys: jwks.map((k) => ({ ...k })) }),
  };
}

/** The development key of this data directory, if one was made (commands that only check checkpoints never make one). */
export function readDevelopmentAuditKey(dataDir: string): string | null {
  try {
    return readFileSync(resolve(dataDir, DEV_KEY_FILE), 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * The development key, when AUDIT_SIGNING_KEY is unset: made once and kept in the data
 * directory, owner-only (never in Redis, which is what it guards against). Two processes
 * starting at once on one directory end up with the same key: the file appears whole or not at
 * all (written aside, then linked into place, which fails if it exists).
 */
export async function developmentAuditKey(dataDir: string): Promise<{ text: string; path: string; created: boolean }> {
  const path = resolve(dataDir, DEV_KEY_FILE);
  const read = () => readFileSync(path, 'utf8').trim();
  const existing = readDevelopmentAuditKey(dataDir);
  if (existing !== null) return { text: existing, path, created: false };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const text = await generateSigningKey();
  const aside = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(aside, `${text}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(aside, path);
    return { text, path, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { text: read(), path, created: false };
  } finally {
    unlinkSync(aside);
  }
}

/**
 * Checks checkpoints against a published JWK set (`/.well-known/audit-keys.json`, or a file
 * holding it): what `audit verify --keys` uses on a machine without AUDIT_SIGNING_KEY.
 */
export function createAuditKeyVerifier(jwks: unknown): Pick<AuditSigner, 'verify'> {
  const list = (jwks as { keys?: unknown }).keys;
  if (!Array.isArray(list) || list.length === 0) throw new Error('the audit keys are not a JWK set: expected {"keys":[…]}');
  const keys = new Map<string, KeyObject>();
  for (const [i, k] of list.entries()) {
    const jwk = k as { kty?: unknown; crv?: unknown; x?: unknown; kid?: unknown };
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || typeof jwk.kid !== 'string') {
      throw new Error(`audit key ${i}: expected an Ed25519 public JWK with a kid`);
    }
    keys.set(jwk.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }));
  }
  return {
    async verify(c: Checkpoint) {
      const key = keys.get(c.kid);
      if (key === undefined || typeof c.sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(c.sig)) return false;
      const { sig, ...body } = c;
      try {
        return edVerify(null, checkpointBytes(body), key, Buffer.from(sig, 'base64url'));
      } catch {
        return false;
      }
    },
  };
}
