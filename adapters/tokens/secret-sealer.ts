import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { SecretSealer } from '../../src/core/credential-ports.ts';

// AES-256-GCM with a key derived (HKDF-SHA-256) from countersign's token signing key: a
// credential waiting for its hand-over is never in Redis in plain text, and reading Redis alone
// does not open it (unless the signing key is the development one, which Redis also holds).
// The proposal id is the associated data: a sealed secret moved to another proposal does not open.

export function createSecretSealer(keyMaterial: string): SecretSealer {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(keyMaterial, 'utf8'), Buffer.from('countersign'), Buffer.from('credential pickup v1'), 32));
  return {
    seal(plain, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
    },
    open(sealed, context) {
      try {
        const raw = Buffer.from(sealed, 'base64url');
        if (raw.length < 28) return null;
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(raw.subarray(12, 28));
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      } catch {
        return null;
      }
    },
  };
}
