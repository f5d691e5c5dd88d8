import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../adapters/redis/private-server.ts';
import { proposalBody, testAgent } from '../helpers/agent.ts';
import { BASE_POLICY } from '../helpers/app.ts';
// @ts-expect-error: a plain .js module of bin/, no types
import { sourceFingerprint } from '../../bin/source-fingerprint.js';
import { ROOT, envOf, execForm, healthcheck, last, readCompose, readDockerfile } from '../helpers/deploy-files.ts';

// The container's commands, run here as the image would run them (no image can be built on
// these machines): Redis with compose.yaml's command, countersign with the Dockerfile's CMD and
// ENV from a directory laid out like the image (/app: bin/, dist/, node_modules/, package.json;
// no sources), with the variables NODE_ENV=production requires, and the HEALTHCHECK command
// against it while it runs and after it stopped. The build is dist/ when it is exactly the
// sources' (as after `npm install`, in CI), else a private copy (bin/build.js --out): another
// engineer's edit or build must not change what runs under the test.

const current = (() => {
  try {
    return readFileSync(join(ROOT, 'dist/.built'), 'utf8').trim() === sourceFingerprint(ROOT);
  } catch {
    return false;
  }
})();
const OUT = current ? 'dist' : `.build-deploy-${process.pid}-${randomBytes(3).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'countersign-deploy-'));
const app = join(dir, 'app');
const { runtime } = readDockerfile();
const compose = readCompose();
const check = healthcheck(last(runtime, 'HEALTHCHECK')!).command;
const cmd = execForm(last(runtime, 'CMD')!);
// The image's `node` is this machine's.
const asHere = (argv: string[]) => (argv[0] === 'node' ? [process.execPath, ...argv.slice(1)] : argv);

/** An Ed25519 private JWK, as docs/production.md says to make one. */
function signingKey(kid: string): { text: string; d: string } {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return { text: JSON.stringify({ ...jwk, kid }), d: jwk.d! };
}
const tokenKey = signingKey('tokens-2026-12');
const auditKey = signingKey('audit-2026-12');
const secrets = { billing: randomBytes(24).toString('hex'), ops: randomBytes(24).toString('hex') };

let redis: ChildProcess | null = null;
let redisPort = 0;
let port = 0;
let env: Record<string, string> = {};

function run(argv: string[], options: { env: Record<string, string>; cwd?: string }): ChildProcess {
  const [program, ...args] = asHere(argv);
  return spawn(program!, args, { cwd: options.cwd ?? app, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs to the end: exit code and everything printed. */
function finish(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

/** Resolves with the output so far once `line` shows; rejects if the process exits first. */
function waitForLine(child: ChildProcess, line: RegExp, what: string): Promise<string> {
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      output += c.toString('utf8');
      if (line.test(output)) resolve(output);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${String(code)}) first:\n${output}`)));
  });
}

beforeAll(async () => {
  const building = current ? Promise.resolve({ code: 0, output: '' }) : finish(spawn(process.execPath, [join(ROOT, 'bin/build.js'), '--out', OUT], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  // Redis exactly as compose.yaml starts it, on a free port of the loopback, its files in our directory.
  redisPort = await freePort();
  const redisArgs = [...compose.services['redis']!.command!, '--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  redis = run(redisArgs, { env: { PATH: process.env['PATH'] ?? '' }, cwd: dir });
  await waitForLine(redis, /Ready to accept connections/, 'redis-server');

  const built = await building;
  expect(built.code, built.output).toBe(0);
  // /app as the runtime stage copies it.
  mkdirSync(join(app, 'bin'), { recursive: true });
  for (const f of ['countersign.js', 'source-fingerprint.js']) copyFileSync(join(ROOT, 'bin', f), join(app, 'bin', f));
  copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(ROOT, OUT), join(app, 'dist'));
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));

  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, BASE_POLICY);
  port = await freePort();
  env = {
    ...envOf(runtime),
    PATH: process.env['PATH'] ?? '',
    PORT: String(port),
    POLICY_FILE: policyFile, // compose.yaml mounts it read-only at the image's POLICY_FILE
    COUNTERSIGN_DATA_DIR: join(dir, 'data'),
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    PUBLIC_URL: 'https://countersign.example.test',
    TOKEN_SIGNING_KEY: tokenKey.text,
    AUDIT_SIGNING_KEY: auditKey.text,
    COUNTERSIGN_PREFIX: `deploy-${randomBytes(4).toString('hex')}`,
    AGENT_BILLING_SECRET: secrets.billing,
    AGENT_OPS_SECRET: secrets.ops,
    LOG_LEVEL: 'info',
  };
}, 60_000);

afterAll(async () => {
  if (redis !== null && redis.exitCode === null) {
    const gone = new Promise((r) => redis!.once('exit', r));
    redis.kill('SIGTERM');
    await gone;
  }
  if (!current) rmSync(join(ROOT, OUT), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe("the container's commands, run directly", () => {
  it("compose.yaml's Redis command keeps every write in the append-only file and never evicts; its health check answers", async () => {
    const config = await finish(run(['redis-cli', '-p', String(redisPort), 'config', 'get', 'appendonly'], { env: { PATH: env['PATH']! } }));
    expect(config.output.trim().split('\n')).toEqual(['appendonly', 'yes']);
    const policy = await finish(run(['redis-cli', '-p', String(redisPort), 'config', 'get', 'maxmemory-policy'], { env: { PATH: env['PATH']! } }));
    expect(policy.output.trim().split('\n')).toEqual(['maxmemory-policy', 'noeviction']);
    const [, cli, ...ping] = compose.services['redis']!.healthcheck!.test; // ["CMD", "redis-cli", "ping"]
    const answer = await finish(run([cli!, '-p', String(redisPort), ...ping], { env: { PATH: env['PATH']! } }));
    expect(answer).toEqual({ code: 0, output: 'PONG\n' });
  });

  it('the CMD refuses to start without the signing keys production requires, naming them', async () => {
    const { TOKEN_SIGNING_KEY: _t, AUDIT_SIGNING_KEY: _a, ...without } = env;
    const refused = await finish(run(cmd, { env: without }));
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('NODE_ENV=production refuses unsafe defaults');
    expect(refused.output).toContain('TOKEN_SIGNING_KEY: required');
    expect(refused.output).toContain('AUDIT_SIGNING_KEY: required');
  });

  it('the CMD serves from the build alone; the HEALTHCHECK passes while it runs and fails once SIGTERM stopped it', async () => {
    const server = run(cmd, { env });
    const exited = finish(server);
    try {
      await waitForLine(server, /"msg":"countersign is listening"/, 'countersign');
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await finish(run(check, { env }))).code).toBe(0);

      const billing = testAgent(url, 'billing-agent', secrets.billing);
      const res = await billing.propose(proposalBody());
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('pending');
      // The keys from the environment are the ones published (not development keys).
      const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: { kid: string; d?: string }[] };
      expect(jwks.keys.map((k) => [k.kid, k.d])).toEqual([['tokens-2026-12', undefined]]);
      const auditKeys = (await (await fetch(`${url}/.well-known/audit-keys.json`)).json()) as { keys: { kid: string; d?: string }[] };
      expect(auditKeys.keys.map((k) => [k.kid, k.d])).toEqual([['audit-2026-12', undefined]]);
      // docs/production.md's `docker compose exec countersign node bin/countersign.js console link alice`.
      const link = await finish(run([cmd[0]!, cmd.at(-2)!, 'console', 'link', 'alice'], { env }));
      expect(link.code, link.output).toBe(0);
      expect(link.output).toMatch(/https:\/\/countersign\.example\.test\/console\/login\/once\?token=\S+/);
    } finally {
      server.kill('SIGTERM');
    }
    const stopped = await exited;
    expect(stopped.code, stopped.output).toBe(0);
    for (const secret of [tokenKey.d, auditKey.d, secrets.billing]) expect(stopped.output).not.toContain(secret);
    // Production writes nothing locally: the image's file system may be read-only.
    expect(existsSync(env['COUNTERSIGN_DATA_DIR']!)).toBe(false);

    const down = await finish(run(check, { env }));
    expect(down.code).not.toBe(0);
  });

  it('the build needs only production dependencies (what the image keeps after npm prune --omit=dev)', () => {
    const deps = new Set(Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies));
    const packages = new Set<string>();
    const walk = (path: string) => {
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        const full = join(path, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (/\.m?js$/.test(entry.name)) {
          // Import statements (line-initial, as tsc writes them) and dynamic imports of a literal.
          const text = readFileSync(full, 'utf8');
          const specs = [...text.matchAll(/^(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm), ...text.matchAll(/^import\s*['"]([^'"]+)['"]/gm), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)];
          for (const m of specs) {
            const spec = m[1]!;
            if (spec.startsWith('.') || spec.startsWith('node:')) continue;
            packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
          }
        }
      }
    };
    walk(join(ROOT, OUT));
    walk(join(app, 'bin'));
    expect(packages.size).toBeGreaterThan(5);
    expect([...packages].filter((p) => !deps.has(p))).toEqual([]);
  });
});
