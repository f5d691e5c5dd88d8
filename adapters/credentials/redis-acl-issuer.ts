import { randomBytes } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import { CredentialIssueError } from '../../src/core/credential-ports.ts';
import type { CredentialIssuer, CredentialRequest, CredentialSpec, IssuedCredential } from '../../src/core/credential-ports.ts';
import type { SecretSource } from '../../src/core/mcp-ports.ts';
import type { Logger } from '../../src/core/ports.ts';
import { aclRulesProblem, REDIS_ACL_HANDLE_PATTERN, redisAclSettingsSchema, redisAclUserFor, splitAclRules } from './redis-acl-rules.ts';
import type { RedisAclSettings } from './redis-acl-rules.ts';
import { adminUrl, failureFor, settingsOf as readSettings } from './issuer-settings.ts';

export { redisAclCredentialKeys } from './redis-acl-rules.ts';

// Just-in-time Redis logins: an ACL user per task, made with the policy's rules and a random
// password, deleted again when the task ends. Redis ACL users have no expiry of their own:
// countersign's ledger and sweep revoke at expires_at.

export const REDIS_ACL_KIND = 'redis-acl';

/** Long enough that a downstream stuck behind a cut network fails the call instead of holding it. */
const COMMAND_TIMEOUT_MS = 5000;
const CONNECT_TIMEOUT_MS = 5000;

export interface RedisAclIssuerDeps {
  secrets: SecretSource;
  logger: Logger;
}

interface AdminTarget {
  url: string;
  parsed: URL;
  username: string;
}

export function createRedisAclIssuer(deps: RedisAclIssuerDeps): CredentialIssuer {
  const { secrets, logger } = deps;
  // One admin connection per admin URL, made on first use. Keyed by the URL itself (which
  // holds the admin password): the map lives in memory only and is never logged.
  const admins = new Map<string, Redis>();

  const fail = failureFor('redis-acl');
  const settingsOf = (spec: CredentialSpec): RedisAclSettings => readSettings(redisAclSettingsSchema, spec, fail);

  function adminTarget(spec: CredentialSpec, settings: RedisAclSettings): AdminTarget {
    const parsed = adminUrl(spec, settings.admin_url.env, secrets, fail, ['redis:', 'rediss:'], 'redis://user:password@host:port/db');
    return { url: parsed.href, parsed, username: decodeURIComponent(parsed.username) };
  }

  function adminFor(spec: CredentialSpec, target: AdminTarget): Redis {
    const existing = admins.get(target.url);
    if (existing !== undefined) return existing;
    const admin = new Redis(target.url, {
      lazyConnect: true,
      // Fail each call while the downstream is down (the caller or the sweep tries again)
      // instead of queueing ACL changes to run at some later moment.
      maxRetriesPerRequest: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      // A least-privilege admin user may run ACL and CLIENT KILL only: no INFO (ready check),
      // no CLIENT SETINFO, and AUTH rather than HELLO.
      enableReadyCheck: false,
      disableClientInfo: true,
      protocol: 2,
    });
    // One line per outage, not one per reconnect attempt.
    let down = false;
    admin.on('error', (err: Error) => {
      if (down) return;
      down = true;
      logger.warn({ issuer: spec.name, kind: REDIS_ACL_KIND, reason: redact(err.message, target.parsed) }, 'credential downstream (redis) unreachable');
    });
    admin.on('ready', () => {
      down = false;
    });
    admins.set(target.url, admin);
    return admin;
  }

  /** Runs one admin call, turning any failure into a CredentialIssueError that carries no secret. */
  async function call<T>(spec: CredentialSpec, target: AdminTarget, what: string, run: (admin: Redis) => Promise<T>, extraSecret?: string): Promise<T> {
    try {
      return await run(adminFor(spec, target));
    } catch (err) {
      const reason = redact(err instanceof Error ? err.message : String(err), target.parsed, extraSecret);
      const refused = err instanceof ReplyError ? 'refused' : 'could not be reached';
      throw fail(spec, `${what}: the downstream ${refused} (${reason})`);
    }
  }

  return {
    kind: REDIS_ACL_KIND,

    handleFor: (request: CredentialRequest) => redisAclUserFor(request.proposal_id),

    async issue(spec: CredentialSpec, request: CredentialRequest): Promise<IssuedCredential> {
      const settings = settingsOf(spec);
      // Checked here too: the settings may not have come through the policy schema.
      const problem = aclRulesProblem(settings.acl);
      if (problem !== null) throw fail(spec, problem);
      const target = adminTarget(spec, settings);
      const user = redisAclUserFor(request.proposal_id);
      if (user === target.username) throw fail(spec, 'the login would have the admin user\'s name');
      // Hex: no character that a client library or URL would need to escape.
      const password = randomBytes(32).toString('hex');

      // `reset` first: a user left from an earlier attempt for the same proposal keeps nothing.
      await call(spec, target, 'ACL SETUSER', (admin) => admin.call('ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, ...splitAclRules(settings.acl)), password);
      logger.info({ issuer: spec.name, kind: REDIS_ACL_KIND, handle: user, proposal_id: request.proposal_id, expires_at: request.expires_at }, 'credential issued');

      const url = new URL(target.parsed.href);
      url.username = encodeURIComponent(user);
      url.password = encodeURIComponent(password);
      return {
        handle: user,
        secret: { username: user, password, url: url.href },
        expires_at: request.expires_at,
      };
    },

    async revoke(spec: CredentialSpec, handle: string): Promise<void> {
      if (!REDIS_ACL_HANDLE_PATTERN.test(handle)) throw fail(spec, 'revoke: not a countersign login (expected cs_ followed by lowercase letters, digits or _)');
      const settings = settingsOf(spec);
      const target = adminTarget(spec, settings);
      if (handle === target.username) throw fail(spec, 'revoke: refusing to remove the admin user');
      // Order: switch the login off (no new AUTH), end its open sessions, then delete the user.
      // CLIENT KILL USER only accepts an existing user, so it must come before DELUSER;
      // Redis 7's DELUSER also disconnects the user's clients, and the kill covers a server
      // that does not. SETUSER on a user already gone makes a disabled one that DELUSER then
      // removes, so a second revoke is a no-op with the same commands.
      await call(spec, target, 'ACL SETUSER off', (admin) => admin.call('ACL', 'SETUSER', handle, 'off', 'resetpass'));
      await call(spec, target, 'CLIENT KILL USER', (admin) => admin.call('CLIENT', 'KILL', 'USER', handle));
      await call(spec, target, 'ACL DELUSER', (admin) => admin.call('ACL', 'DELUSER', handle));
      logger.info({ issuer: spec.name, kind: REDIS_ACL_KIND, handle }, 'credential revoked');
    },

    async close(): Promise<void> {
      const all = [...admins.values()];
      admins.clear();
      await Promise.all(
        all.map(async (admin) => {
          // QUIT on a connection that never connected (or is down) would wait for it: just drop it.
          if (admin.status === 'ready') await admin.quit().catch(() => admin.disconnect());
          else admin.disconnect();
        }),
      );
    },
  };
}

/** An error text with the admin URL's password (and any other secret given) cut out. */
function redact(message: string, admin: URL, extraSecret?: string): string {
  let out = message;
  for (const secret of [admin.password, decodeURIComponent(admin.password), extraSecret]) {
    if (secret !== undefined && secret !== '') out = out.split(secret).join('***');
  }
  return out.slice(0, 300);
}
