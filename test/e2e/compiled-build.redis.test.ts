import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { proposalBody, testAgent } from '../helpers/agent.ts';
import { BASE_POLICY } from '../helpers/app.ts';
import { startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';
import { testRedis } from '../helpers/redis.ts';

// `npm start` runs the compiled build (bin/build.js -> dist/), which reads its Lua scripts and
// the console's static files from beside the compiled code. Most tests run the TypeScript
// sources (the CLI tests run dist/ only when it is exactly current); this one builds its own
// copy (not dist/ itself, which other test files' child processes may be running) and
// starts it. The Teams adapter's dynamic import is not exercised here (Teams is off).

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = `.build-test-${process.pid}-${randomBytes(3).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'countersign-build-'));
const SECRET = randomBytes(16).toString('hex');
const { prefix } = testRedis();
let server: ChildProcess | null = null;
let slack: FakeSlack;

beforeAll(async () => {
  slack = await startFakeSlack();
  const build = spawnSync(process.execPath, [join(ROOT, 'bin/build.js'), '--out', OUT], { encoding: 'utf8' });
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);
}, 60_000);

afterAll(async () => {
  if (server !== null && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
  }
  await slack.close();
  rmSync(join(ROOT, OUT), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('the compiled build', () => {
  it('starts, stores a proposal through its Lua scripts, posts its card and serves the console', async () => {
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }'));
    const program = `const { runCli } = await import(process.argv[1]); process.exitCode = await runCli(['start'], process.env);`;
    server = spawn(process.execPath, ['--input-type=module', '-e', program, join(ROOT, OUT, 'src/cli.js')], {
      env: {
        PATH: process.env['PATH'] ?? '',
        REDIS_URL: inject('redisUrl') ?? '',
        COUNTERSIGN_PREFIX: prefix,
        COUNTERSIGN_DATA_DIR: join(dir, 'data'),
        POLICY_FILE: policyFile,
        AGENT_BILLING_SECRET: SECRET,
        AGENT_OPS_SECRET: randomBytes(16).toString('hex'),
        HOST: '127.0.0.1',
        PORT: '0',
        SLACK_BOT_TOKEN: 'xoxb-build-test',
        SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'),
        SLACK_API_URL: slack.apiUrl,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const m = /"url":"(http:\/\/[^"]+)".*"msg":"countersign is listening"/.exec(output);
        if (m !== null) resolve(m[1]!);
      };
      server!.stdout!.on('data', onData);
      server!.stderr!.on('data', onData);
      server!.once('exit', (code) => reject(new Error(`the compiled server exited (${String(code)}) before listening:\n${output}`)));
    });

    const billing = testAgent(url, 'billing-agent', SECRET);
    const res = await billing.propose(proposalBody());
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('pending');
    const read = await billing.request('GET', `/v1/proposals/${String(res.body.id)}`);
    expect(read.body.id).toBe(res.body.id);
    const post = await waitFor(() => slack.callsTo('chat.postMessage').find((c) => JSON.stringify(c.args).includes(String(res.body.id))), { what: 'the card' });
    expect(post.ok).toBe(true);

    const script = await fetch(`${url}/console/static/console.js`);
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100);
  }, 60_000);
});
