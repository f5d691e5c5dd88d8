import type { z } from 'zod';
import { CredentialIssueError, type CredentialSpec } from '../../src/core/credential-ports.ts';
import type { SecretSource } from '../../src/core/mcp-ports.ts';

// What every issuer does with its `credentials:` entry before it talks to the downstream: read
// the settings by its kind's schema, and the admin URL from the secret source. Errors name the
// entry and the variable, never a value (the value may be a secret that is not even a URL).

export type Fail = (spec: CredentialSpec, message: string) => CredentialIssueError;

export function failureFor(kind: string): Fail {
  return (spec, message) => new CredentialIssueError(spec.name, `credentials "${spec.name}" (${kind}): ${message}`);
}

/** The entry's settings by the kind's schema: they may not have come through the policy's. */
export function settingsOf<T>(schema: z.ZodType<T>, spec: CredentialSpec, fail: Fail): T {
  const parsed = schema.safeParse(spec.settings);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue !== undefined && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw fail(spec, `${where}${issue?.message ?? 'invalid settings'}`);
  }
  return parsed.data;
}

/** The admin URL from the variable `name`, of one of `protocols` (`example` shows its shape). */
export function adminUrl(spec: CredentialSpec, name: string, secrets: SecretSource, fail: Fail, protocols: readonly string[], example: string): URL {
  const value = secrets.get(name);
  if (value === undefined || value === '') throw fail(spec, `admin_url: the environment variable ${name} is not set`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw fail(spec, `admin_url: ${name} is not a URL (${example})`);
  }
  if (!protocols.includes(parsed.protocol)) throw fail(spec, `admin_url: ${name} must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL`);
  return parsed;
}
