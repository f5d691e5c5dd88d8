import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresIssuer, postgresCredentialKeys, postgresRoleFor } from '../../adapters/credentials/postgres-issuer.ts';
import { freePort } from '../../adapters/redis/private-server.ts';
import { CredentialIssueError, type CredentialIssuer, type CredentialSpec } from '../../src/core/credential-ports.ts';
import { newId } from '../../src/core/ids.ts';
import { createMemoryLogger, type MemoryLogger } from '../helpers/memory/logger.ts';
import { testPostgres } from '../helpers/postgres.ts';

// The postgres issuer against the run's private PostgreSQL cluster, in a database of this
// file's own. countersign talks to it as a least-privilege admin (CREATEROLE, owner of the
// tables, no superuser); the test's superuser connection sets up and inspects.

const db = testPostgres();
const ADMIN_ENV = 'ORDERS_DB_ADMIN_URL';
const ADMIN_PASSWORD = `adm1n-${randomBytes(8).toString('hex')}`;
const adminRole = `orders_admin_${randomBytes(4).toString('hex')}`;
let adminUrl: string;
const env = new Map<string, string>();
let logger: MemoryLogger;
let issuer: CredentialIssuer;
const opened: pg.Client[] = [];

function spec(grant: string[], extra: Record<string, unknown> = {}): CredentialSpec {
  return { name: 'orders-db', kind: 'postgres', settings: { admin_url: { env: ADMIN_ENV }, grant, ...extra } };
}

function request(proposalId = newId('p', Date.now()), ttlMs = 600_000) {
  return { proposal_id: proposalId, agent: 'deploy-bot', expires_at: Date.now() + ttlMs };
}

/** A client as the agent would open one; errors are kept, not thrown, so a killed session stays inspectable. */
async function connectAs(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  opened.push(client);
  await client.connect();
  return client;
}

/** The SQLSTATE (or message) a fresh login with this URL gets, or 'ok'. */
async function loginOutcome(url: string): Promise<string> {
  try {
    const c = await connectAs(url);
    await c.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

async function roleExists(role: string): Promise<boolean> {
  const r = await db.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  return r.rowCount === 1;
}

async function csRoles(): Promise<string[]> {
  // Roles are cluster-wide and other test files issue theirs at the same time: only this file's
  // (made by its admin role, which is their member) are compared and dropped.
  const r = await db.admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles r WHERE rolname LIKE $1 AND pg_has_role($2, r.oid, $3)', ['cs\\_%', adminRole, 'MEMBER']);
  return r.rows.map((row) => row.rolname);
}

async function refusal(run: () => Promise<unknown>): Promise<CredentialIssueError> {
  const err = await run().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CredentialIssueError);
  return err as CredentialIssueError;
}

beforeAll(async () => {
  const a = db.admin;
  await a.query(`CREATE ROLE ${adminRole} LOGIN CREATEROLE PASSWORD '${ADMIN_PASSWORD}'`);
  await a.query('CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)');
  await a.query("INSERT INTO orders VALUES (1, 'new'), (2, 'paid')");
  await a.query('CREATE TABLE secrets (id int PRIMARY KEY, value text)');
  await a.query("INSERT INTO secrets VALUES (1, 'launch codes')");
  // The admin grants what it owns: no superuser needed.
  await a.query(`ALTER TABLE orders OWNER TO ${adminRole}`);
  await a.query(`ALTER TABLE secrets OWNER TO ${adminRole}`);
  await a.query(`GRANT CREATE ON SCHEMA public TO ${adminRole} WITH GRANT OPTION`);
  const u = new URL(db.url);
  u.username = adminRole;
  u.password = ADMIN_PASSWORD;
  adminUrl = u.href;
  env.set(ADMIN_ENV, adminUrl);
});

beforeAll(() => {
  logger = createMemoryLogger();
  issuer = createPostgresIssuer({ secrets: { get: (name) => env.get(name) }, logger });
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.end().catch(() => undefined)));
});

afterAll(async () => {
  await issuer.close();
  for (const role of await csRoles()) await db.admin.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => undefined);
  await db.admin.query(`DROP OWNED BY ${adminRole}; DROP ROLE ${adminRole}`).catch(() => undefined);
});

describe('postgres issuer', () => {
  it('issues a login that can do exactly the granted statements, with a SCRAM password and the expiry as VALID UNTIL', async () => {
    const req = request();
    const issued = await issuer.issue(spec(['SELECT, UPDATE ON orders']), req);

    expect(issued.handle).toBe(postgresRoleFor(req.proposal_id));
    expect(issuer.handleFor(req)).toBe(issued.handle);
    expect(issued.handle).toMatch(/^cs_p_[0-9a-z]{26}$/);
    expect(issued.expires_at).toBe(req.expires_at);
    expect(issued.secret['username']).toBe(issued.handle);
    const password = issued.secret['password']!;
    expect(password.length).toBeGreaterThanOrEqual(32);
    const url = new URL(issued.secret['url']!);
    const admin = new URL(adminUrl);
    expect([url.hostname, url.port, url.pathname]).toEqual([admin.hostname, admin.port, admin.pathname]);
    expect([url.username, url.password]).toEqual([issued.handle, password]);

    const agent = await connectAs(issued.secret['url']!);
    expect((await agent.query('SELECT count(*)::int AS n FROM orders')).rows[0]).toEqual({ n: 2 });
    expect((await agent.query("UPDATE orders SET status = 'shipped' WHERE id = 1")).rowCount).toBe(1);
    await expect(agent.query("INSERT INTO orders VALUES (3, 'new')")).rejects.toMatchObject({ code: '42501' });
    await expect(agent.query('SELECT * FROM secrets')).rejects.toMatchObject({ code: '42501' });
    await expect(agent.query('CREATE TABLE mine (x int)')).rejects.toMatchObject({ code: '42501' });

    const role = await db.admin.query<{ rolvaliduntil: Date; rolconnlimit: number; rolpassword: string; rolsuper: boolean; rolcreaterole: boolean }>(
      'SELECT rolvaliduntil, rolconnlimit, rolpassword, rolsuper, rolcreaterole FROM pg_authid WHERE rolname = $1',
      [issued.handle],
    );
    const row = role.rows[0]!;
    expect(row.rolvaliduntil.getTime()).toBe(req.expires_at);
    expect(row.rolconnlimit).toBe(2);
    // The server only ever saw the verifier, never the password.
    expect(row.rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(row.rolpassword).not.toContain(password);
    expect([row.rolsuper, row.rolcreaterole]).toEqual([false, false]);
    await issuer.revoke(spec(['SELECT, UPDATE ON orders']), issued.handle);
  });

  it('holds the connection limit', async () => {
    const s = spec(['SELECT ON orders'], { connect_limit: 1 });
    const issued = await issuer.issue(s, request());
    await connectAs(issued.secret['url']!);
    expect(await loginOutcome(issued.secret['url']!)).toBe('53300'); // too_many_connections
    await issuer.revoke(s, issued.handle);
  });

  it('revoke ends the open session, refuses new logins, drops the role; a second revoke is fine', async () => {
    const s = spec(['SELECT, UPDATE ON orders']);
    const issued = await issuer.issue(s, request());
    const agent = await connectAs(issued.secret['url']!);
    const pid = (await agent.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // The server's FATAL arrives as 'error' (kept by connectAs), then the socket ends.
    const ended = new Promise<void>((resolve) => agent.once('end', () => resolve()));

    await issuer.revoke(s, issued.handle);
    // By pid: once the role is gone, pg_stat_activity no longer names it.
    const sessions = await db.admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    expect(sessions.rowCount).toBe(0);
    await ended;
    await expect(agent.query('SELECT 1')).rejects.toThrow();
    expect(await roleExists(issued.handle)).toBe(false);
    expect(await loginOutcome(issued.secret['url']!)).toBe('28P01'); // the role is gone: authentication fails

    await issuer.revoke(s, issued.handle);
    expect(logger.at('info').filter((l) => (l.obj as { handle?: string }).handle === issued.handle && l.msg === 'credential revoked')).toHaveLength(2);
  });

  it('revoke keeps what the login created (handed to the admin) and still drops it', async () => {
    const s = spec(['USAGE, CREATE ON SCHEMA public']);
    const issued = await issuer.issue(s, request());
    const agent = await connectAs(issued.secret['url']!);
    const table = `made_${randomBytes(4).toString('hex')}`;
    await agent.query(`CREATE TABLE ${table} (x int)`);

    await issuer.revoke(s, issued.handle);
    expect(await roleExists(issued.handle)).toBe(false);
    const owner = await db.admin.query<{ tableowner: string }>('SELECT tableowner FROM pg_tables WHERE tablename = $1', [table]);
    expect(owner.rows[0]?.tableowner).toBe(adminRole);
  });

  it('a second issue for the same proposal replaces the login: the old password stops working', async () => {
    const s = spec(['SELECT ON orders']);
    const req = request();
    const first = await issuer.issue(s, req);
    const second = await issuer.issue(s, req);
    expect(second.handle).toBe(first.handle);
    expect(await loginOutcome(first.secret['url']!)).toBe('28P01');
    expect(await loginOutcome(second.secret['url']!)).toBe('ok');
    await issuer.revoke(s, second.handle);
  });

  it('issues in the entry\'s database when it names one', async () => {
    const u = new URL(adminUrl);
    u.pathname = '/postgres';
    env.set('OTHER_DB_ADMIN_URL', u.href);
    const s: CredentialSpec = { name: 'orders-db', kind: 'postgres', settings: { admin_url: { env: 'OTHER_DB_ADMIN_URL' }, grant: ['SELECT ON orders'], database: db.database } };
    const issued = await issuer.issue(s, request());
    expect(new URL(issued.secret['url']!).pathname).toBe(`/${db.database}`);
    const agent = await connectAs(issued.secret['url']!);
    expect((await agent.query('SELECT count(*)::int AS n FROM orders')).rows[0]).toEqual({ n: 2 });
    await issuer.revoke(s, issued.handle);
  });

  it.each([
    ['SELECT ON orders; DROP TABLE secrets'],
    ["SELECT ON orders, 'x'"],
    ['SELECT ON orders -- and more'],
    ['SELECT ON orders /* x */'],
    ['SELECT ON orders WITH GRANT OPTION'],
    ['pg_read_all_data'],
    ['SELECT ON orders TO PUBLIC'],
    ['SELECT ON "orders"'],
  ])('refuses the grant %j before anything is created', async (grant) => {
    const before = await csRoles();
    const req = request();
    const err = await refusal(() => issuer.issue(spec(['SELECT ON orders', grant]), req));
    expect(err.message).toContain('orders-db');
    expect(err.message).toContain(`grant "${grant}" is not allowed`);
    expect(await roleExists(postgresRoleFor(req.proposal_id))).toBe(false);
    expect(await csRoles()).toEqual(before);
    expect((await db.admin.query('SELECT count(*)::int AS n FROM secrets')).rows[0]).toEqual({ n: 1 });
    // The policy schema says the same.
    expect(z.object(postgresCredentialKeys).safeParse({ admin_url: { env: ADMIN_ENV }, grant: [grant] }).success).toBe(false);
  });

  it('leaves nothing behind when the database refuses a grant', async () => {
    const req = request();
    const err = await refusal(() => issuer.issue(spec(['SELECT ON orders', 'SELECT ON no_such_table']), req));
    expect(err.message).toMatch(/orders-db.*creating the login: the database refused \[42P01\]/);
    expect(await roleExists(postgresRoleFor(req.proposal_id))).toBe(false);
  });

  it.each([['postgres'], ['orders_admin'], ['CS_upper'], ['cs_x; DROP ROLE postgres'], ['cs_'], ['"cs_x"']])('refuses to revoke %j', async (handle) => {
    const err = await refusal(() => issuer.revoke(spec(['SELECT ON orders']), handle));
    expect(err.message).toContain('not a countersign login');
    expect(await roleExists('postgres')).toBe(true);
    expect(await roleExists(adminRole)).toBe(true);
  });

  it('an unreachable or refusing admin URL is a CredentialIssueError without the admin password', async () => {
    const secretPw = 'Hunter2-admin-secret';
    env.set('DOWN_URL', `postgres://${adminRole}:${secretPw}@127.0.0.1:${await freePort()}/postgres`);
    const down: CredentialSpec = { name: 'down-db', kind: 'postgres', settings: { admin_url: { env: 'DOWN_URL' }, grant: ['SELECT ON orders'] } };
    const e1 = await refusal(() => issuer.issue(down, request()));
    expect(e1.message).toMatch(/down-db.*could not be reached.*ECONNREFUSED/);
    expect(e1.message).not.toContain(secretPw);
    const e2 = await refusal(() => issuer.revoke(down, 'cs_p_whatever'));
    expect(e2.message).not.toContain(secretPw);

    const u = new URL(adminUrl);
    u.password = secretPw;
    env.set('WRONG_PW_URL', u.href);
    const wrong: CredentialSpec = { name: 'wrong-db', kind: 'postgres', settings: { admin_url: { env: 'WRONG_PW_URL' }, grant: ['SELECT ON orders'] } };
    const e3 = await refusal(() => issuer.issue(wrong, request()));
    expect(e3.message).toMatch(/wrong-db.*password authentication failed/);
    expect(e3.message).not.toContain(secretPw);

    const e4 = await refusal(() => issuer.issue({ ...down, settings: { admin_url: { env: 'NOT_SET' }, grant: ['SELECT ON orders'] } }, request()));
    expect(e4.message).toContain('NOT_SET is not set');
  });

  it('never logs or reports a password', async () => {
    logger.clear();
    const s = spec(['SELECT ON orders']);
    const issued = await issuer.issue(s, request());
    await issuer.revoke(s, issued.handle);
    const failed = await refusal(() => issuer.issue(spec(['SELECT ON no_such_table']), request()));
    const logged = JSON.stringify(logger.lines);
    expect(logged).toContain(issued.handle);
    for (const secret of [issued.secret['password']!, ADMIN_PASSWORD]) {
      expect(logged).not.toContain(secret);
      expect(failed.message).not.toContain(secret);
    }
  });
});
