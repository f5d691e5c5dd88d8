import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { PlatformModule } from '../../src/app/platforms.ts';
import { envVariableName } from '../../src/core/policy/schema.ts';
import type { PlatformPolicy } from '../../src/core/policy/extensions.ts';
import type { PersonSpec } from '../../src/core/policy/model.ts';
import type { SessionStore } from '../../src/core/ports.ts';

// The built-in web console as a platform, always served (the default channel when no chat is
// set up). In the policy: a route lists `console: true` to show its cards there; a person
// signs in with a console key whose SHA-256 is in the policy (`console_key_sha256`) or that a
// variable holds (`console_key_env`, hashed at load: only the hash is kept), or with a
// one-time link. It has no variables of its own: cookies are Secure when PUBLIC_URL is https.

export const CONSOLE = 'console';

const consolePolicy: PlatformPolicy = {
  id: CONSOLE,
  personKeys: {
    console_key_sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (the SHA-256 of the console key)')
      .transform((hex) => hex.toLowerCase())
      .optional(),
    console_key_env: envVariableName.optional(),
  },
  person: (v, env) => {
    const sha = v['console_key_sha256'] as string | undefined;
    const name = v['console_key_env'] as string | undefined;
    if (sha !== undefined && name !== undefined) throw new Error('give console_key_sha256 or console_key_env, not both');
    if (name !== undefined) {
      const value = env[name];
      if (value === undefined || value.trim() === '') throw new Error(`environment variable ${name} is not set or empty`);
      return { userId: null, details: { key_sha256: createHash('sha256').update(value.trim()).digest('hex') } };
    }
    return sha === undefined ? null : { userId: null, details: { key_sha256: sha } };
  },
  channelKeys: { console: z.boolean().optional() },
  // The console shows a route's cards under the route's own name.
  route: (v, route) => (v['console'] === true ? { target: route, details: {} } : null),
};

/** A proposal's page in the console: the details link on every platform's card. */
export function consoleProposalUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/$/, '')}/console/proposals/${id}`;
}

/** The SHA-256 of the person's console key, or null when they sign in only with one-time links. */
export function consoleKeyHash(person: PersonSpec): string | null {
  const hash = person.accounts.get(CONSOLE)?.details['key_sha256'];
  return typeof hash === 'string' ? hash : null;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export const consolePlatform: PlatformModule<null, Handler> = {
  id: CONSOLE,
  policy: consolePolicy,
  env: {},
  settings: () => null,
  enabled: () => true,
  async create(_settings, services) {
    const { createConsolePlatform } = await import('./console-app.ts');
    return createConsolePlatform(services);
  },
};

/** A one-time sign-in link for `person` (printed at start with the built-in policy, and by `countersign console link`). */
export async function consoleSignInLink(sessions: SessionStore, publicUrl: string, person: string): Promise<string> {
  const token = await sessions.issueOneTime(person);
  return `${publicUrl.replace(/\/$/, '')}/console/login/once?token=${token}`;
}
