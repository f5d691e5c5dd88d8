import { z } from 'zod';
import { parseDuration } from './core/duration.ts';
import { ConfigError } from './core/errors.ts';

// The one place the environment is read (parsed once, in main.ts). Adapters get pieces of
// the typed result and never see process.env. Every variable here is documented in
// .env.example; test/unit/config.test.ts keeps the two in step.

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(blankToUndefined, z.string().trim().optional());
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
const url = z.preprocess(blankToUndefined, z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional());

export const envSchema = z.object({
  PORT: z.preprocess(blankToUndefined, z.coerce.number().int().min(0).max(65535).default(3000)),
  HOST: z.preprocess(blankToUndefined, z.string().default('127.0.0.1')),
  PUBLIC_URL: url,
  REDIS_URL: z.preprocess(blankToUndefined, z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional()),
  REDIS_CLUSTER_NODES: optionalString,
  REDIS_SENTINELS: optionalString,
  REDIS_SENTINEL_NAME: optionalString,
  COUNTERSIGN_PREFIX: z.preprocess(
    blankToUndefined,
    z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." and "-" only').default('countersign'),
  ),
  COUNTERSIGN_DATA_DIR: z.preprocess(blankToUndefined, z.string().default('.countersign')),
  POLICY_FILE: optionalString,
  COUNTERSIGN_ADMIN_TOKEN: z.preprocess(blankToUndefined, z.string().min(24, 'must be at least 24 characters').optional()),
  TOKEN_SIGNING_KEY: optionalString,
  EXECUTION_TOKEN_TTL: duration('5m'),
  SLACK_BOT_TOKEN: optionalString,
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_API_URL: url,
  MICROSOFT_APP_ID: optionalString,
  MICROSOFT_APP_PASSWORD: optionalString,
  MICROSOFT_APP_TENANT_ID: optionalString,
  MICROSOFT_APP_TYPE: z.preprocess(blankToUndefined, z.enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI']).optional()),
  LOG_LEVEL: z.preprocess(blankToUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  NODE_ENV: optionalString,
});

export type Env = z.output<typeof envSchema>;

export interface RedisTarget {
  url: string | null;
  clusterNodes: { host: string; port: number }[];
  sentinels: { host: string; port: number }[];
  sentinelName: string | null;
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
  slack: { botToken: string; signingSecret: string; apiUrl: string | null } | null;
  teams: { appId: string | null; appPassword: string | null; tenantId: string | null; appType: string | null };
  logLevel: Env['LOG_LEVEL'];
  production: boolean;
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

export function loadConfig(raw: Readonly<Record<string, string | undefined>>): Config {
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${String(i.path[0] ?? '(environment)')}: ${i.message}`);
    throw new ConfigError(`invalid environment: ${lines.join('; ')}`);
  }
  const env = parsed.data;
  const production = env.NODE_ENV === 'production';
  const slackParts = [env.SLACK_BOT_TOKEN, env.SLACK_SIGNING_SECRET].filter((v) => v !== undefined).length;
  if (slackParts === 1) {
    throw new ConfigError('SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: set both to turn Slack on, or neither');
  }
  // Teams credentials that cannot work would show up only as failed posts: refuse them at start.
  if (env.MICROSOFT_APP_ID === undefined && (env.MICROSOFT_APP_PASSWORD !== undefined || env.MICROSOFT_APP_TENANT_ID !== undefined)) {
    throw new ConfigError('MICROSOFT_APP_ID: required when MICROSOFT_APP_PASSWORD or MICROSOFT_APP_TENANT_ID is set');
  }
  if (env.MICROSOFT_APP_ID !== undefined && env.MICROSOFT_APP_TYPE !== 'UserAssignedMSI' && env.MICROSOFT_APP_PASSWORD === undefined) {
    throw new ConfigError('MICROSOFT_APP_PASSWORD: required with MICROSOFT_APP_ID (unless MICROSOFT_APP_TYPE=UserAssignedMSI)');
  }
  if (env.MICROSOFT_APP_TYPE !== undefined && env.MICROSOFT_APP_TYPE !== 'MultiTenant' && env.MICROSOFT_APP_TENANT_ID === undefined) {
    throw new ConfigError(`MICROSOFT_APP_TENANT_ID: required when MICROSOFT_APP_TYPE is ${env.MICROSOFT_APP_TYPE}`);
  }
  if (env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_NAME === undefined) {
    throw new ConfigError('REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set');
  }
  if (production) {
    // Every development convenience becomes a start-up error (DESIGN.md, Environment).
    const unsafe: string[] = [];
    if (env.TOKEN_SIGNING_KEY === undefined) unsafe.push('TOKEN_SIGNING_KEY: required (a generated key is for development only)');
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
    },
    prefix: env.COUNTERSIGN_PREFIX,
    dataDir: env.COUNTERSIGN_DATA_DIR,
    policyFile: env.POLICY_FILE ?? null,
    adminToken: env.COUNTERSIGN_ADMIN_TOKEN ?? null,
    tokens: { signingKey: env.TOKEN_SIGNING_KEY ?? null, ttlMs: env.EXECUTION_TOKEN_TTL },
    slack:
      env.SLACK_BOT_TOKEN !== undefined && env.SLACK_SIGNING_SECRET !== undefined
        ? { botToken: env.SLACK_BOT_TOKEN, signingSecret: env.SLACK_SIGNING_SECRET, apiUrl: env.SLACK_API_URL ?? null }
        : null,
    teams: {
      appId: env.MICROSOFT_APP_ID ?? null,
      appPassword: env.MICROSOFT_APP_PASSWORD ?? null,
      tenantId: env.MICROSOFT_APP_TENANT_ID ?? null,
      appType: env.MICROSOFT_APP_TYPE ?? null,
    },
    logLevel: env.LOG_LEVEL,
    production,
    secrets: raw,
  };
}
