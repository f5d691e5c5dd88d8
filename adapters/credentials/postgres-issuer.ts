import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { CredentialIssueError } from '../../src/core/credential-ports.ts';
import type { CredentialIssuer, CredentialRequest, CredentialSpec, IssuedCredential } from '../../src/core/credential-ports.ts';
import type { SecretSource } from '../../src/core/mcp-ports.ts';
import type { Logger } from '../../src/core/ports.ts';
import { grantClause, grantProblem, POSTGRES_HANDLE_PATTERN, postgresRoleFor, postgresSettingsSchema } from './postgres-grants.ts';
import type { PostgresSettings } from './postgres-grants.ts';
import { scramSha256Verifier } from './postgres-scram.ts';
import { adminUrl, failureFor, settingsOf as readSettings } from './issuer-settings.ts';

export { postgresCredentialKeys, postgresRoleFor } from './postgres-grants.ts';

// Just-in-time PostgreSQL logins: a role per task with a random password, VALID UNTIL the
// task's expiry, a connection limit and exactly the policy's grants; dropped again (its
// sessions ended first) when the task ends. VALID UNTIL only stops new logins: sessions
// already open live on until revoke, which countersign's ledger and sweep run at expires_at.

export const POSTGRES_KIND = 'postgres';

const CONNECT_TIMEOUT_MS = 5000;
/** A downstream stuck on a lock fails the call (the caller or the sweep tries again) instead of holding it. */
const STATEMENT_TIMEOUT_MS = 10_000;
/** How long revoke waits for each of the role's sessions to end. */
const TERMINATE_WAIT_MS = 5000;

export interface PostgresIssuerDeps {
  secrets: SecretSource;
  logger: Logger;
}

interface AdminTarget {
  /** The admin URL with the entry's database applied: the pool's key (holds the admin password; memory only). */
  url: string;
  parsed: URL;
  username: string;
}

export function createPostgresIssuer(deps: PostgresIssuerDeps): CredentialIssuer {
  const { secrets, logger } = deps;
  const pools = new Map<string, pg.Pool>();

  const fail = failureFor('postgres');
  const settingsOf = (spec: CredentialSpec): PostgresSettings => readSettings(postgresSettingsSchema, spec, fail);

  function adminTarget(spec: CredentialSpec, settings: PostgresSettings): AdminTarget {
    const parsed = adminUrl(spec, settings.admin_url.env, secrets, fail, ['postgres:', 'postgresql:'], 'postgres://user:password@host:port/database');
    if (settings.database !== undefined) parsed.pathname = `/${settings.database}`;
    return { url: parsed.href, parsed, username: decodeURIComponent(parsed.username) };
  }

  function poolFor(spec: CredentialSpec, target: AdminTarget): pg.Pool {
    const existing = pools.get(target.url);
    if (existing !== undefined) return existing;
    const pool = new pg.Pool({
      connectionString: target.url,
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      application_name: 'countersign-credentials',
    });
    // An idle admin connection the server drops must not crash the process.
    pool.on('error', (err) => {
      logger.warn({ issuer: spec.name, kind: POSTGRES_KIND, reason: redact(err.message, target.parsed) }, 'credential downstream (postgres) dropped an idle admin connection');
    });
    pools.set(target.url, pool);
    return pool;
  }

  /** Runs `work` on one admin connection; any failure becomes a CredentialIssueError carrying no secret. */
  async function withAdmin<T>(spec: CredentialSpec, target: AdminTarget, what: string, work: (client: pg.PoolClient) => Promise<T>, extraSecret?: string): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await poolFor(spec, target).connect();
    } catch (err) {
      throw fail(spec, `${what}: the database could not be reached (${redact(messageOf(err), target.parsed, extraSecret)})`);
    }
    let broken: Error | undefined;
    try {
      return await work(client);
    } catch (err) {
      if (err instanceof CredentialIssueError) throw err;
      // A server-side refusal leaves the connection usable; anything else (a cut socket) does not.
      if (!(err instanceof pg.DatabaseError)) broken = err instanceof Error ? err : new Error(String(err));
      const refused = err instanceof pg.DatabaseError ? `refused${err.code === undefined ? '' : ` [${err.code}]`}` : 'failed';
      throw fail(spec, `${what}: the database ${refused} (${redact(messageOf(err), target.parsed, extraSecret)})`);
    } finally {
      client.release(broken);
    }
  }

  return {
    kind: POSTGRES_KIND,

    handleFor: (request) => postgresRoleFor(request.proposal_id),

    async issue(spec: CredentialSpec, request: CredentialRequest): Promise<IssuedCredential> {
      const settings = settingsOf(spec);
      // Checked here too: the settings may not have come through the policy schema.
      for (const grant of settings.grant) {
        const problem = grantProblem(grant);
        if (problem !== null) throw fail(spec, problem);
      }
      if (!Number.isFinite(request.expires_at) || request.expires_at <= Date.now()) throw fail(spec, 'the expiry is not in the future');
      const target = adminTarget(spec, settings);
      const role = postgresRoleFor(request.proposal_id);
      if (role === target.username) throw fail(spec, "the login would have the admin role's name");
      // base64url: nothing a URL or a client library would need to escape; 43 characters.
      const password = randomBytes(32).toString('base64url');
      const id = pg.escapeIdentifier(role);
      const expiresIso = new Date(request.expires_at).toISOString();

      await withAdmin(
        spec,
        target,
        'creating the login',
        async (client) => {
          // A role left by an earlier attempt for the same proposal is replaced, not reused:
          // its password may be known to no one, or to someone it should not be.
          if (await dropRole(client, role)) logger.warn({ issuer: spec.name, kind: POSTGRES_KIND, handle: role }, 'credential: replaced a login left by an earlier attempt');
          await client.query('BEGIN');
          try {
            await client.query(
              `CREATE ROLE ${id} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT ` +
                `PASSWORD ${pg.escapeLiteral(scramSha256Verifier(password))} VALID UNTIL ${pg.escapeLiteral(expiresIso)} CONNECTION LIMIT ${settings.connect_limit}`,
            );
            // Membership lets a non-superuser admin end the role's sessions and DROP OWNED at revoke.
            await client.query(`GRANT ${id} TO CURRENT_USER`);
            for (const grant of settings.grant) await client.query(`GRANT ${grantClause(grant)} TO ${id}`);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        },
        password,
      );
      logger.info({ issuer: spec.name, kind: POSTGRES_KIND, handle: role, proposal_id: request.proposal_id, expires_at: request.expires_at }, 'credential issued');

      const url = new URL(target.parsed.href);
      url.username = role;
      url.password = password;
      return { handle: role, secret: { username: role, password, url: url.href }, expires_at: request.expires_at };
    },

    async revoke(spec: CredentialSpec, handle: string): Promise<void> {
      if (!POSTGRES_HANDLE_PATTERN.test(handle)) throw fail(spec, 'revoke: not a countersign login (expected cs_ followed by lowercase letters, digits or _)');
      const settings = settingsOf(spec);
      const target = adminTarget(spec, settings);
      if (handle === target.username) throw fail(spec, 'revoke: refusing to drop the admin role');
      const dropped = await withAdmin(spec, target, 'revoke', (client) => dropRole(client, handle));
      logger.info({ issuer: spec.name, kind: POSTGRES_KIND, handle, existed: dropped }, 'credential revoked');
    },

    async close(): Promise<void> {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((pool) => pool.end().catch(() => undefined)));
    },
  };
}

/**
 * Switches the login off, ends its sessions, hands anything it created to the admin and drops
 * it with its privileges. False when there was no such role. Safe to run twice at once: a
 * step that finds the role gone ends quietly.
 */
async function dropRole(client: pg.PoolClient, role: string): Promise<boolean> {
  const id = pg.escapeIdentifier(role);
  const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (found.rowCount === 0) return false;
  try {
    // NOLOGIN first: no new session can start between the terminate and the drop.
    await client.query(`ALTER ROLE ${id} NOLOGIN`);
    await client.query('SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [role, TERMINATE_WAIT_MS]);
    await client.query('BEGIN');
    try {
      // REASSIGN keeps what the login created (with a CREATE grant) instead of destroying data;
      // DROP OWNED then removes every privilege granted to it, whatever the policy says now.
      await client.query(`REASSIGN OWNED BY ${id} TO CURRENT_USER`);
      await client.query(`DROP OWNED BY ${id}`);
      await client.query(`DROP ROLE IF EXISTS ${id}`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } catch (err) {
    // undefined_object: a concurrent revoke dropped it first.
    if (err instanceof pg.DatabaseError && err.code === '42704') return true;
    throw err;
  }
  return true;
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(messageOf).join('; ');
  return err instanceof Error ? err.message || err.name : String(err);
}

/** An error text with the admin URL's password (and any other secret given) cut out. */
function redact(message: string, admin: URL, extraSecret?: string): string {
  let out = message;
  for (const secret of [admin.password, safeDecode(admin.password), extraSecret]) {
    if (secret !== undefined && secret !== '') out = out.split(secret).join('***');
  }
  return out.slice(0, 300);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
