import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig as loadWith } from '../../src/config.ts';
import { PLATFORMS } from '../../src/wiring/platforms.ts';

const loadConfig = (env: Record<string, string>) => loadWith(env, PLATFORMS);
import { ConfigError } from '../../src/core/errors.ts';

const documented = new Set(
  readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
    .split('\n')
    .map((line) => /^#?\s*([A-Z][A-Z0-9_]+)=/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined),
);

describe('config', () => {
  it('.env.example documents every variable of the schema, and nothing else', () => {
    const schema = new Set([...Object.keys(envSchema.shape), ...PLATFORMS.flatMap((p) => Object.keys(p.env))]);
    expect([...schema].filter((n) => !documented.has(n))).toEqual([]);
    // Agents' secrets are named by the policy, so they are examples, not schema entries.
    const extra = [...documented].filter((n) => !schema.has(n) && !/_SECRET$/.test(n));
    expect(extra).toEqual([]);
  });

  it('gives the defaults of DESIGN.md', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.publicUrl).toBe('http://127.0.0.1:3000');
    expect(c.prefix).toBe('countersign');
    expect(c.tokens.ttlMs).toBe(5 * 60_000);
    expect(c.platforms.get('slack')).toBeNull();
    expect(c.adminToken).toBeNull();
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ EXECUTION_TOKEN_TTL: 'soon' }, 'EXECUTION_TOKEN_TTL'],
    [{ COUNTERSIGN_ADMIN_TOKEN: 'short' }, 'COUNTERSIGN_ADMIN_TOKEN'],
    [{ COUNTERSIGN_PREFIX: 'a b' }, 'COUNTERSIGN_PREFIX'],
    [{ SLACK_BOT_TOKEN: 'xoxb-1' }, 'SLACK_SIGNING_SECRET'],
    [{ REDIS_SENTINELS: 'h:1' }, 'REDIS_SENTINEL_NAME'],
    [{ REDIS_CLUSTER_NODES: 'nohost' }, 'REDIS_CLUSTER_NODES'],
    [{ REDIS_ALLOW_EVICTION: 'yes' }, 'REDIS_ALLOW_EVICTION'],
    [{ NODE_ENV: 'production' }, 'TOKEN_SIGNING_KEY'],
    [{ NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', PUBLIC_URL: 'https://cs.example' }, 'REDIS_URL'],
    [{ NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'http://cs.example' }, 'PUBLIC_URL'],
    [{ NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://cs.example' }, 'AUDIT_SIGNING_KEY'],
    [{ AUDIT_WITNESS_URL: 'ftp://witness.example/cp' }, 'AUDIT_WITNESS_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ AUDIT_RETENTION: 'a year' }, 'AUDIT_RETENTION'],
    [{ AUDIT_RETENTION: '0d' }, 'AUDIT_RETENTION'],
  ])('refuses %o naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it('never puts a wrong secret value into the error', () => {
    try {
      loadConfig({ COUNTERSIGN_ADMIN_TOKEN: 'hunter2' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('accepts a complete production environment', () => {
    const c = loadConfig({ NODE_ENV: 'production', TOKEN_SIGNING_KEY: 'k', AUDIT_SIGNING_KEY: 'a', REDIS_URL: 'rediss://r:6380', PUBLIC_URL: 'https://cs.example/' });
    expect(c.production).toBe(true);
    expect(c.publicUrl).toBe('https://cs.example');
  });

  it('reads the audit signing key and the witnesses (none by default)', () => {
    expect(loadConfig({}).audit).toEqual({ signingKey: null, witnessUrl: null, witnessFile: null, retentionMs: null });
    expect(loadConfig({ AUDIT_RETENTION: '400d' }).audit.retentionMs).toBe(400 * 86_400_000);
    expect(loadConfig({ AUDIT_RETENTION: '' }).audit.retentionMs).toBeNull();
    const c = loadConfig({ AUDIT_SIGNING_KEY: '{"kty":"OKP"}', AUDIT_WITNESS_URL: 'https://witness.example/cp', AUDIT_WITNESS_FILE: '/var/log/countersign/checkpoints.jsonl' });
    expect(c.audit).toEqual({ signingKey: '{"kty":"OKP"}', witnessUrl: 'https://witness.example/cp', witnessFile: '/var/log/countersign/checkpoints.jsonl', retentionMs: null });
  });

  it('treats empty values as unset, as an edited .env.example leaves them', () => {
    const c = loadConfig({ PORT: '', REDIS_URL: '', SLACK_BOT_TOKEN: '', SLACK_SIGNING_SECRET: '' });
    expect(c.port).toBe(3000);
    expect(c.redis.url).toBeNull();
    expect(c.platforms.get('slack')).toBeNull();
  });
});
