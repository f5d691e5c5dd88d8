import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { all, durationMs, envOf, execForm, healthcheck, last, parseUnit, readCompose, readDockerfile, readRoot } from '../helpers/deploy-files.ts';

// What the deployment files promise (docs/production.md), read as files: no image can be built
// here. test/e2e/deploy-commands.redis.test.ts runs their commands.

const defaultShutdownMs = loadConfig({}).shutdownTimeoutMs;
const npmStart = (JSON.parse(readRoot('package.json')) as { scripts: { start: string } }).scripts.start.split(' ');

describe('Dockerfile', () => {
  const { build, runtime, stages } = readDockerfile();

  it('builds with dev dependencies in one stage and ships the build with production dependencies only', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    for (const s of stages) expect(s.base).toMatch(/^node:20[.-]/); // package.json engines: Node 20
    const runs = all(build, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toMatch(/npm run build\b/);
    expect(runs).toMatch(/npm prune --omit=dev\b/);
    // The runtime takes nothing from the build context (no sources, no .env): only the build's results.
    const copies = all(runtime, 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) expect(c).toMatch(/^--from=build\s/);
    const taken = copies.map((c) => c.split(/\s+/)[1]);
    expect(taken).toEqual(expect.arrayContaining(['/app/dist', '/app/node_modules', '/app/bin', '/app/package.json']));
    expect(taken.some((t) => /\/(src|adapters|test)$/.test(t ?? ''))).toBe(false);
    expect(all(runtime, 'RUN')).toEqual([]);
  });

  it('runs as a user other than root, in production, listening beyond the container', () => {
    const user = last(runtime, 'USER');
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const env = envOf(runtime);
    expect(env['NODE_ENV']).toBe('production');
    expect(env['HOST']).toBe('0.0.0.0');
    expect(env['COUNTERSIGN_RUN_FROM']).toBe('dist');
    expect(last(runtime, 'EXPOSE')).toBe(env['PORT']);
  });

  it('starts as `npm start` does, in exec form, stops on SIGTERM and checks readiness with what the image has', () => {
    const cmd = execForm(last(runtime, 'CMD')!);
    expect(cmd).toEqual(npmStart);
    expect(last(runtime, 'STOPSIGNAL')).toBe('SIGTERM');
    const check = healthcheck(last(runtime, 'HEALTHCHECK')!);
    expect(check.command.slice(0, 2)).toEqual(['node', '-e']);
    expect(check.command[2]).toContain('/readyz');
    expect(durationMs(check.options['timeout']!)).toBeLessThanOrEqual(durationMs(check.options['interval']!));
  });

  it('.dockerignore keeps secrets, local state and installs out of the build context', () => {
    const ignored = readRoot('.dockerignore').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['.env', '.git', 'node_modules', 'dist', '.countersign', 'policy.yaml']));
  });
});

describe('compose.yaml', () => {
  const compose = readCompose();
  const redis = compose.services['redis']!;
  const app = compose.services['countersign']!;
  const { runtime } = readDockerfile();

  it('runs Redis with every write in the append-only file, no eviction, on a volume, with a health check', () => {
    const args = redis.command!;
    expect(args[0]).toBe('redis-server');
    expect(args[args.indexOf('--appendonly') + 1]).toBe('yes');
    expect(args[args.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
    const volume = redis.volumes!.find((v) => v.endsWith(':/data'))!;
    expect(Object.keys(compose.volumes ?? {})).toContain(volume.split(':')[0]);
    expect(redis.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(redis.restart).toBe('unless-stopped');
  });

  it('starts countersign once Redis is healthy, in production whatever .env says, with the policy read-only', () => {
    expect(app.build).toBe('.');
    expect(app.depends_on!['redis']!.condition).toBe('service_healthy');
    expect(app.env_file).toBe('.env');
    // environment: wins over env_file: a copy of .env.example (HOST=127.0.0.1, NODE_ENV=) changes nothing.
    expect(app.environment).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0', REDIS_URL: 'redis://redis:6379' });
    const policy = app.volumes!.find((v) => v.endsWith(`:${app.environment!['POLICY_FILE']}:ro`));
    expect(policy).toBe(`./policy.yaml:${envOf(runtime)['POLICY_FILE']}:ro`);
    expect(app.user).toBe(last(runtime, 'USER'));
    expect(app.read_only).toBe(true);
    expect(app.restart).toBe('unless-stopped');
    // Published on the loopback only: TLS terminates in a proxy in front.
    expect(app.ports).toEqual([`127.0.0.1:${app.environment!['PORT']}:${last(runtime, 'EXPOSE')}`]);
  });

  it("checks countersign's health with the image's own command and lets it drain before SIGKILL", () => {
    expect(app.healthcheck!.test).toEqual(['CMD', ...healthcheck(last(runtime, 'HEALTHCHECK')!).command]);
    expect(durationMs(app.stop_grace_period!)).toBeGreaterThan(defaultShutdownMs);
  });
});

describe('deploy/countersign.service', () => {
  const text = readRoot('deploy/countersign.service');
  const unit = parseUnit(text);
  const service = unit.get('Service')!;
  const one = (key: string) => {
    const values = service.get(key);
    expect(values, key).toHaveLength(1);
    return values![0]!;
  };

  it('runs the build as `npm start` does, as a dedicated user, in production, restarting on failure', () => {
    expect(one('ExecStart').split(' ')).toEqual(['/usr/bin/node', ...npmStart.slice(1, -2), '/opt/countersign/bin/countersign.js', 'start']);
    expect(one('User')).not.toMatch(/^(root|0)$/);
    expect(service.get('EnvironmentFile')?.[0]).toMatch(/^\/etc\/countersign\//);
    expect(one('Environment').split(' ')).toEqual(expect.arrayContaining(['NODE_ENV=production', 'COUNTERSIGN_RUN_FROM=dist']));
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(durationMs(one('TimeoutStopSec'))).toBeGreaterThan(defaultShutdownMs);
  });

  it('is hardened: no new privileges, a read-only system but for its state directory', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ReadWritePaths')).toBe(`/var/lib/${one('StateDirectory')}`);
    expect(one('Environment')).toContain(`COUNTERSIGN_DATA_DIR=/var/lib/${one('StateDirectory')}`);
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(service.has('MemoryDenyWriteExecute')).toBe(false); // V8's JIT
    expect(unit.get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
  });

  // systemd-analyze names unknown keys and bad values on stderr (exit 0) and a missing program (exit 1).
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  it.skipIf(analyze.status !== 0)('passes systemd-analyze verify', () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-unit-'));
    try {
      // This machine's node stands in for /usr/bin/node, which verify checks is executable.
      writeFileSync(join(dir, 'countersign.service'), text.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
      const run = spawnSync('systemd-analyze', ['verify', join(dir, 'countersign.service')], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
