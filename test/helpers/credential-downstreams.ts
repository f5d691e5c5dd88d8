import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, Redis as RedisClient } from 'ioredis';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import type { CardRef, ThreadReply } from '../../src/core/card.ts';
import type { ChatChannel } from '../../src/core/ports.ts';
import { testPostgres } from './postgres.ts';

// The downstreams a just-in-time credential is for, as the end-to-end tests of issue 15 use
// them: a database of the file's own on the run's PostgreSQL cluster, with a least-privilege
// admin role (CREATEROLE, owner of the tables) that countersign gets; a redis-server of its own
// standing in for a cache, with an admin ACL user that may only change users and kill clients.
// The tests connect with the issued logins the way an agent would.

export interface OrdersDatabase {
  /** countersign's admin URL (ORDERS_DB_ADMIN_URL), after beforeAll. */
  readonly adminUrl: string;
  readonly adminPassword: string;
  /** 'ok', or the SQLSTATE / message a fresh login with `url` gets. */
  loginOutcome(url: string): Promise<string>;
  /** A session as the agent would open one (closed after each test); errors are kept, not thrown. */
  connect(url: string): Promise<pg.Client>;
  roleExists(role: string): Promise<boolean>;
  /** Open sessions of `role`. */
  sessionsOf(role: string): Promise<number>;
}

/** Call at the top of a test file. */
export function ordersDatabase(): OrdersDatabase {
  const db = testPostgres();
  const adminRole = `orders_admin_${randomBytes(4).toString('hex')}`;
  const adminPassword = `adm1n-${randomBytes(8).toString('hex')}`;
  let adminUrl: string | null = null;
  const opened: pg.Client[] = [];

  beforeAll(async () => {
    const a = db.admin;
    await a.query(`CREATE ROLE ${adminRole} LOGIN CREATEROLE PASSWORD '${adminPassword}'`);
    await a.query('CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)');
    await a.query("INSERT INTO orders VALUES (1, 'new'), (2, 'paid')");
    await a.query('CREATE TABLE customers (id int PRIMARY KEY, email text)');
    await a.query("INSERT INTO customers VALUES (1, 'someone@example.com')");
    await a.query(`ALTER TABLE orders OWNER TO ${adminRole}`);
    await a.query(`ALTER TABLE customers OWNER TO ${adminRole}`);
    const u = new URL(db.url);
    u.username = adminRole;
    u.password = adminPassword;
    adminUrl = u.href;
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  afterAll(async () => {
    // Roles are cluster-wide: what a failed test left is removed (the database goes with testPostgres).
    const left = await db.admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles r WHERE rolname LIKE $1 AND pg_has_role($2, r.oid, $3)', ['cs\\_%', adminRole, 'MEMBER']);
    for (const { rolname } of left.rows) await db.admin.query(`DROP OWNED BY ${rolname}; DROP ROLE ${rolname}`).catch(() => undefined);
    await db.admin.query(`DROP OWNED BY ${adminRole}; DROP ROLE ${adminRole}`).catch(() => undefined);
  });

  async function connect(url: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    opened.push(client);
    await client.connect();
    return client;
  }
  return {
    get adminUrl() {
      if (adminUrl === null) throw new Error('ordersDatabase(): used before its beforeAll ran');
      return adminUrl;
    },
    adminPassword,
    connect,
    async loginOutcome(url) {
      try {
        const c = await connect(url);
        await c.query('SELECT 1');
        return 'ok';
      } catch (err) {
        return (err as { code?: string }).code ?? (err as Error).message;
      }
    },
    async roleExists(role) {
      return (await db.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
    },
    async sessionsOf(role) {
      return (await db.admin.query('SELECT 1 FROM pg_stat_activity WHERE usename = $1', [role])).rowCount ?? 0;
    },
  };
}

/** The SQLSTATE of what `sql` gets on `client`, or 'ok'. */
export async function sqlOutcome(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

export interface CacheServer {
  /** countersign's admin URL (CACHE_ADMIN_URL), after beforeAll. */
  readonly adminUrl: string;
  readonly adminPassword: string;
  /** A client as the agent would open one: it does not reconnect, so a killed session stays closed. */
  connect(url: string): RedisClient;
  /** Clients connected as `user`. */
  clientsOf(user: string): Promise<number>;
  users(): Promise<string[]>;
}

/** Call at the top of a test file: a redis-server of its own as the downstream cache. */
export function cacheServer(): CacheServer {
  const adminPassword = `adm1n-${randomBytes(8).toString('hex')}`;
  let server: PrivateRedis | null = null;
  let root: RedisClient | null = null;
  let dir: string | null = null;
  const opened: RedisClient[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'countersign-cache-downstream-'));
    server = await startPrivateRedis({ dir, persist: false, searchPath: process.env['PATH'] ?? '' });
    root = new Redis(server.url, { disableClientInfo: true });
    await root.call('ACL', 'SETUSER', 'csadmin', 'reset', 'on', `>${adminPassword}`, '-@all', '+acl|setuser', '+acl|deluser', '+client|kill');
  });
  afterEach(() => {
    for (const c of opened.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    root?.disconnect();
    await server?.stop();
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  });
  const ready = () => {
    if (server === null || root === null) throw new Error('cacheServer(): used before its beforeAll ran');
    return { server, root };
  };
  return {
    get adminUrl() {
      return `redis://csadmin:${adminPassword}@127.0.0.1:${ready().server.port}/0`;
    },
    adminPassword,
    connect(url) {
      const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, disableClientInfo: true, enableReadyCheck: false });
      client.on('error', () => undefined);
      opened.push(client);
      return client;
    },
    async clientsOf(user) {
      const list = String(await ready().root.call('CLIENT', 'LIST'));
      return list.split('\n').filter((line) => line.split(' ').includes(`user=${user}`)).length;
    },
    async users() {
      return (await ready().root.call('ACL', 'USERS')) as string[];
    },
  };
}

/** The reply a redis command gets ('OK', a value, or the error's first word, e.g. NOPERM). */
export async function redisOutcome(run: () => Promise<unknown>): Promise<string> {
  try {
    return String(await run());
  } catch (err) {
    return (err as Error).message.split(' ')[0] ?? 'error';
  }
}

/** A console channel that keeps every thread reply, for tests that wait on them. */
export function threadRecorder(): { channel: ChatChannel; repliesFor(id: string, match: (r: ThreadReply) => boolean): Promise<ThreadReply> } {
  const replies: ThreadReply[] = [];
  const waiters: (() => void)[] = [];
  return {
    channel: {
      platform: 'console',
      async postCard(target, card): Promise<CardRef> {
        return { platform: 'console', conversation: target, message: `m-${card.proposalId}` };
      },
      async updateCard() {},
      async replyInThread(_ref, reply) {
        replies.push(reply);
        waiters.splice(0).forEach((w) => w());
      },
    },
    async repliesFor(id, match) {
      for (;;) {
        const found = replies.find((r) => r.proposalId === id && match(r));
        if (found !== undefined) return found;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

/** Every value under the Redis prefix, as text (strings, hashes, lists, sets, sorted sets, streams). */
export async function everythingUnder(redis: RedisClient | Cluster, prefix: string): Promise<{ keys: number; text: string }> {
  const node = redis as RedisClient;
  const parts: string[] = [];
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      keys++;
      const type = await node.type(key);
      const value =
        type === 'string'
          ? await node.getBuffer(key).then((b) => b?.toString('latin1'))
          : type === 'hash'
            ? await node.hgetall(key)
            : type === 'list'
              ? await node.lrange(key, 0, -1)
              : type === 'set'
                ? await node.smembers(key)
                : type === 'zset'
                  ? await node.zrange(key, '0', '-1', 'WITHSCORES')
                  : type === 'stream'
                    ? await node.xrange(key, '-', '+')
                    : null;
      parts.push(`${key} ${JSON.stringify(value)}`);
    }
  } while (cursor !== '0');
  return { keys, text: parts.join('\n') };
}

/** The policy of the credentials tests: `credentials:` entries for both downstreams, rules naming them. */
export function credentialsPolicy(opts: { peekTtl?: string; readTtl?: string } = {}): string {
  return `
version: 1
agents:
  - id: billing-agent
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
groups:
  finance: [alice, bob]
  admins: [alice]
channels:
  finance: { console: true }
credentials:
  orders-db:
    kind: postgres
    admin_url: { env: ORDERS_DB_ADMIN_URL }
    grant: ["SELECT, UPDATE ON orders"]
    connect_limit: 2
  cache:
    kind: redis-acl
    admin_url: { env: CACHE_ADMIN_URL }
    acl: "~orders:* +get +set"
  legacy-db:
    kind: postgres
    admin_url: { env: LEGACY_DB_ADMIN_URL }
    grant: ["SELECT ON orders"]
rules:
  - name: orders-migration
    when: action.tool == "postgres" && action.operation == "migrate"
    effect: approve
    route: finance
    approvers: finance
    credentials: { issuer: orders-db, ttl: 10m }
  - name: orders-peek
    when: action.tool == "postgres" && action.operation == "peek"
    effect: approve
    route: finance
    approvers: finance
    credentials: { issuer: orders-db, ttl: ${opts.peekTtl ?? '2s'} }
  - name: orders-read
    when: action.tool == "postgres" && action.operation == "read"
    effect: allow
    credentials: { issuer: orders-db, ttl: ${opts.readTtl ?? '10m'} }
  - name: cache-write
    when: action.tool == "cache"
    effect: approve
    route: finance
    approvers: finance
    credentials: { issuer: cache, ttl: 10m }
  - name: legacy
    when: action.tool == "legacy-db"
    effect: allow
    credentials: { issuer: legacy-db, ttl: 10m }
default: { effect: deny }
`;
}

/** A proposal body for `tool` / `operation`. */
export function taskBody(tool: string, operation: string, note = randomBytes(4).toString('hex')): Record<string, unknown> {
  return { intent: `${operation} on ${tool} (${note})`, action: { tool, operation, target: 'orders', parameters: { note } } };
}
