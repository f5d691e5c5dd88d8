import { z } from 'zod';
import { parseDuration } from './core/duration.ts';
import { blankToUndefined, optionalHttpUrl, optionalString } from './core/env-values.ts';
import { ConfigError } from './core/errors.ts';

// The one place the environment is read (parsed once, in main.ts). Adapters get pieces of
// the typed result and never see process.env. Every variable here is documented in
// .env.example; test/unit/config.test.ts keeps the two in step.

const duration = (fallback: string) =>
  z.preprocess(
    (v) => blankToUndefined(v) ?? fallback,
    z.string().transform((text, ctx) => {
      try {
        return parseDuration(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  );
const url = optionalHttpUrl;
/** A duration that may be left unset (undefined); 0 is refused, since unset already means "never". */
const optionalDuration = (zero: string) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .optional()
      .transform((text, ctx) => {
        if (text === undefined) return undefined;
        try {
          const ms = parseDuration(text);
          if (ms > 0) return ms;
          ctx.addIssue({ code: 'custom', message: zero });
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: (e as Error).message });
        }
        return z.NEVER;
      }),
  );

export const envSchema = z.object({
  PORT: z.preprocess(blankToUndefined, z.coerce.number().int().min(0).max(65535).default(3000)),
  HOST: z.preprocess(blankToUndefined, z.string().default('127.0.0.1')),
  PUBLIC_URL: url,
  REDIS_URL: z.preprocess(blankToUndefined, z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional()),
  REDIS_CLUSTER_NODES: optionalString,
  REDIS_SENTINELS: optionalString,
  REDIS_SENTINEL_NAME: optionalString,
  REDIS_ALLOW_EVICTION: z.preprocess(blankToUndefined, z.enum(['true', 'false'], { error: 'must be true or false' }).default('false')),
  COUNTERSIGN_PREFIX: z.preprocess(
    blankToUndefined,
    z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." and "-" only').default('countersign'),
  ),
  COUNTERSIGN_DATA_DIR: z.preprocess(blankToUndefined, z.string().default('.countersign')),
  POLICY_FILE: optionalString,
  COUNTERSIGN_ADMIN_TOKEN: z.preprocess(blankToUndefined, z.string().min(24, 'must be at least 24 characters').optional()),
  TOKEN_SIGNING_KEY: optionalString,
  EXECUTION_TOKEN_TTL: duration('5m'),
  AUDIT_SIGNING_KEY: optionalString,
  MCP_HOLD: duration('50s'),
  SHUTDOWN_TIMEOUT: duration('10s').refine((ms) => ms >= 1000, 'must be at least 1s'),
  AUDIT_WITNESS_URL: url,
  AUDIT_WITNESS_FILE: optionalString,
  AUDIT_RETENTION: optionalDuration('must be longer than 0 (leave it unset to keep the audit log forever)'),
  LOG_LEVEL: z.preprocess(blankToUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  NODE_ENV: optionalString,
});

export type Env = z.output<typeof envSchema>;

/** A platform's part of the environment (src/app/platforms.ts, PlatformModule). */
export interface PlatformEnvSpec {
  readonly id: string;
  readonly env: z.ZodRawShape;
  settings(env: Readonly<Record<string, unknown>>, production: boolean): unknown;
}


export interface RedisTarget {
  url: string | null;
  clusterNodes: { host: string; port: number }[];
  sentinels: { host: string; port: number }[];
  sentinelName: string | null;
  /** Run on a Redis whose maxmemory-policy may delete keys (REDIS_ALLOW_EVICTION=true). */
  allowEviction: boolean;
}

export interface Config {
  port: number;
  host: string;
  publicUrl: string;
  redis: RedisTarget;
  prefix: string;
  dataDir: string;
  policyFile: string | null;
  adminToken: string | null;
  tokens: { signingKey: string | null; ttlMs: number };
  /**
   * The key that signs audit checkpoints (null: a development key), where checkpoints are copied
   * outside Redis, and how long entries are kept (null: forever).
   */
  audit: { signingKey: string | null; witnessUrl: string | null; witnessFile: string | null; retentionMs: number | null };
  /** The MCP gateway: how long a call that needs people is held before "call again". */
  mcp: { holdMs: number };
  /** SIGTERM / SIGINT to exit, whatever Redis does; past it the exit is forced (src/cli.ts). */
  shutdownTimeoutMs: number;
  /** Each platform's settings, from its own variables, by platform id. */
  platforms: ReadonlyMap<string, unknown>;
  logLevel: Env['LOG_LEVEL'];
  production: boolean;
  /** Where to look for programs countersign starts (a private redis-server): PATH. */
  searchPath: string;
  /** The raw environment, only for the policy's `secret_env` look-ups. */
  secrets: Readonly<Record<string, string | undefined>>;
}

function hostPorts(name: string, text: string | undefined): { host: string; port: number }[] {
  if (text === undefined) return [];
  return text.split(',').map((part) => {
    const match = /^\s*([^:\s]+):(\d{1,5})\s*$/.exec(part);
    if (!match) throw new ConfigError(`${name}: "${part.trim()}" is not host:port`);
    return { host: match[1]!, port: Number(match[2]) };
  });
}

export function loadConfig(raw: Readonly<Record<string, string | undefined>>, platforms: readonly PlatformEnvSpec[] = []): Config {
  const shape: z.ZodRawShape = { ...envSchema.shape };
  for (const p of platforms) {
    for (const [name, schema] of Object.entries(p.env)) {
      if (name in shape) throw new ConfigError(`${name}: claimed by platform "${p.id}" and by another part of countersign`);
      (shape as Record<string, z.core.$ZodType>)[name] = schema;
    }
  }
  const parsed = z.object(shape).safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${String(i.path[0] ?? '(environment)')}: ${i.message}`);
    throw new ConfigError(`invalid environment: ${lines.join('; ')}`);
  }
  const all = parsed.data as Readonly<Record<string, unknown>>;
  const env = all as Env;
  const production = env.NODE_ENV === 'production';
  const platformSettings = new Map(platforms.map((p) => [p.id, p.settings(all, production)] as const));
  if (env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_NAME === undefined) {
    throw new ConfigError('REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set');
  }
  if (production) {
    // Every development convenience becomes a start-up error (DESIGN.md, Environment).
    const unsafe: string[] = [];
    if (env.TOKEN_SIGNING_KEY === undefined) unsafe.push('TOKEN_SIGNING_KEY: required (a generated key is for development only)');
    if (env.AUDIT_SIGNING_KEY === undefined) unsafe.push('AUDIT_SIGNING_KEY: required (it signs the audit checkpoints; a generated key is for development only)');
    if (env.REDIS_URL === undefined && env.REDIS_CLUSTER_NODES === undefined && env.REDIS_SENTINELS === undefined) {
      unsafe.push('REDIS_URL: required (or REDIS_CLUSTER_NODES / REDIS_SENTINELS); a private redis-server is for development only');
    }
    if (env.PUBLIC_URL === undefined || !env.PUBLIC_URL.startsWith('https://')) {
      unsafe.push('PUBLIC_URL: must be an https:// URL (it is the issuer of execution tokens and the address in cards)');
    }
    if (unsafe.length > 0) throw new ConfigError(`NODE_ENV=production refuses unsafe defaults: ${unsafe.join('; ')}`);
  }
  const publicUrl = (env.PUBLIC_URL ?? `http://${env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST}:${env.PORT}`).replace(/\/$/, '');
  return {
    port: env.PORT,
    host: env.HOST,
    publicUrl,
    redis: {
      url: env.REDIS_URL ?? null,
      clusterNodes: hostPorts('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES),
      sentinels: hostPorts('REDIS_SENTINELS', env.REDIS_SENTINELS),
      sentinelName: env.REDIS_SENTINEL_NAME ?? null,
      allowEviction: env.REDIS_ALLOW_EVICTION === 'true',
    },
    prefix: env.COUNTERSIGN_PREFIX,
    dataDir: env.COUNTERSIGN_DATA_DIR,
    policyFile: env.POLICY_FILE ?? null,
    adminToken: env.COUNTERSIGN_ADMIN_TOKEN ?? null,
    tokens: { signingKey: env.TOKEN_SIGNING_KEY ?? null, ttlMs: env.EXECUTION_TOKEN_TTL },
    audit: { signingKey: env.AUDIT_SIGNING_KEY ?? null, witnessUrl: env.AUDIT_WITNESS_URL ?? null, witnessFile: env.AUDIT_WITNESS_FILE ?? null, retentionMs: env.AUDIT_RETENTION ?? null },
    mcp: { holdMs: env.MCP_HOLD },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT,
    platforms: platformSettings,
    logLevel: env.LOG_LEVEL,
    production,
    searchPath: raw['PATH'] ?? '',
    secrets: raw,
  };
}
