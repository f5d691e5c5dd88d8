import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CountersignApiError, CountersignClient, type ProposalRequest } from '../../src/client/index.ts';
import { proposalBody } from '../helpers/agent.ts';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';

// The README's first hour, followed literally through the real `countersign` command (child
// processes, real exit codes): the server's address, a busy port, `policy check` on the shipped
// example without its secrets, the console-only example copied to policy.yaml and started (its
// sign-in link works), `policy test` on the example proposal, `propose --wait` that nobody
// answers, `policy replay` of those proposals, and the 401 codes an agent's client sees.

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/countersign.js');
const redisUrl = inject('redisUrl') ?? '';

async function countersign(args: string[], env: Record<string, string> = {}, cwd = ROOT) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'silent', ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

describe("the server's address", () => {
  it('sends a browser to the console (GET and HEAD), and a client that asks for JSON gets a JSON map', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await fetch(`${app.url}/`, { method, redirect: 'manual', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
      expect([res.status, res.headers.get('location')]).toEqual([302, '/console']);
    }
    const json = await fetch(`${app.url}/`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(200);
    expect(await json.json()).toMatchObject({ service: 'countersign', console: '/console', proposals: '/v1/proposals' });
    // Everything else that matches nothing is still a 404.
    expect((await fetch(`${app.url}/nothing-here`)).status).toBe(404);
  });
});

describe('agent 401s', () => {
  it("the client's error names why, and an unknown agent reads as a wrong secret", async () => {
    const body = proposalBody() as unknown as ProposalRequest;
    const reasonOf = (client: CountersignClient) => client.propose(body).then(() => 'accepted', (e: unknown) => (e instanceof CountersignApiError ? `${e.status} ${e.code} ${e.reason}` : String(e)));
    const url = app.url;
    expect(await reasonOf(new CountersignClient({ url, agent: 'billing-agent', secret: 'not-the-secret' }))).toBe('401 unauthorized bad_signature');
    expect(await reasonOf(new CountersignClient({ url, agent: 'nobody-agent', secret: 'not-the-secret' }))).toBe('401 unauthorized bad_signature');
    const tenMinutesAgo = () => Date.now() - 600_000;
    expect(await reasonOf(new CountersignClient({ url, agent: 'billing-agent', secret: app.secrets.billing, now: tenMinutesAgo }))).toBe('401 unauthorized stale_timestamp');
  });
});

describe('countersign start on a busy port', () => {
  it('says which port is in use and what to set, exits 1, and prints no stack trace', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const address = busy.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const dir = mkdtempSync(join(tmpdir(), 'countersign-busy-'));
      const res = await countersign(['start'], { PORT: String(port), HOST: '127.0.0.1', COUNTERSIGN_DATA_DIR: dir, REDIS_URL: redisUrl }, dir);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`countersign: port ${port} is in use on 127.0.0.1; set PORT to a free port`);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    } finally {
      busy.close();
    }
  });
});

describe('countersign policy check', () => {
  it('checks the shipped examples without their secrets (a note names them), and still fails a broken policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-check-'));
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, BASE_POLICY.replace('approvers: security', 'approvers: nobody'));
    const [example, consoleOnly, res] = await Promise.all([
      countersign(['policy', 'check', 'policy.example.yaml']),
      countersign(['policy', 'check', 'policy.console.yaml'], { MY_AGENT_SECRET: 'set' }),
      countersign(['policy', 'check', broken]),
    ]);
    expect(example.code).toBe(0);
    expect(example.stdout).toContain('policy.example.yaml: ok (5 rules, 1 agents, 3 people)');
    expect(example.stdout).toContain('note: checked without AGENT_BILLING_SECRET (not set here)');
    expect(example.stdout).toMatch(/note: with this environment `countersign start` would stop: .*Slack is not configured/);
    expect([consoleOnly.code, consoleOnly.stdout]).toEqual([0, 'policy.console.yaml: ok (4 rules, 1 agents, 1 people)\n']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('nobody');
  });
});

describe("the README's next step: policy.console.yaml copied to policy.yaml", () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-next-'));
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  const secretFile = join(dir, '.countersign', 'my-agent-secret');
  const env = { REDIS_URL: redisUrl, COUNTERSIGN_PREFIX: prefix, HOST: '127.0.0.1', PORT: '0' };
  let server: ReturnType<typeof spawn> | undefined;
  let url = '';

  afterAll(async () => {
    if (server === undefined || server.exitCode !== null) return;
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  });

  it('starts with one secret and prints a sign-in link for "you" that opens the console', async () => {
    copyFileSync(join(ROOT, 'policy.console.yaml'), join(dir, 'policy.yaml'));
    mkdirSync(join(dir, '.countersign'));
    const secret = randomBytes(32).toString('hex');
    writeFileSync(secretFile, `${secret}\n`);
    server = spawn(process.execPath, [BIN, 'start'], { cwd: dir, env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'silent', ...env, MY_AGENT_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const link = await new Promise<string>((resolve, reject) => {
      server!.stdout!.on('data', (chunk: Buffer) => {
        out += String(chunk);
        const found = /sign in to the console as "you" \(one-time link, valid 15 minutes\): (\S+)/.exec(out);
        if (found) resolve(found[1]!);
      });
      server!.once('exit', (code) => reject(new Error(`start exited ${code}: ${out}`)));
    });
    url = /countersign is running at (\S+) with policy\.yaml\./.exec(out)?.[1] ?? '';
    expect(link.startsWith(`${url}/console/login/once?token=`)).toBe(true);
    const signIn = await fetch(link, { redirect: 'manual' });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
    expect(await (await fetch(`${url}/console`, { headers: { cookie } })).text()).toContain('signed in as <b>you</b>');
  });

  it('policy test gives the documented answer for examples/proposal.json; console link works in a terminal without the secret', async () => {
    const [res, link] = await Promise.all([
      countersign(['policy', 'test', 'policy.yaml', join(ROOT, 'examples/proposal.json')], {}, dir),
      countersign(['console', 'link', 'you'], env, dir),
    ]);
    expect([link.code, link.stdout]).toEqual([0, expect.stringMatching(/\/console\/login\/once\?token=\S+\n$/)]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('decision: approve (risk high) by rule "payments"');
    expect(res.stdout).toContain('needs 1 approval(s) from group "approvers", posted to route "ops"');
  });

  it('propose --wait exits 3 when nobody decides in time, and the proposal stays pending', async () => {
    const propose = (wait: string) => countersign(['propose', join(ROOT, 'examples/proposal.json'), '--agent', 'my-agent', '--secret-file', secretFile, '--url', url, '--wait', wait], {}, dir);
    const [res, wrong] = await Promise.all([propose('1'), propose('soon')]);
    expect(res.code).toBe(3);
    expect(JSON.parse(res.stdout)).toMatchObject({ status: 'pending', agent: 'my-agent' });
    expect(res.stderr).toMatch(/p_\w+ is still pending after 1 s: nobody decided \(exit 3\)/);
    expect([wrong.code, wrong.stderr]).toEqual([2, 'countersign: --wait "soon": write a number of seconds (--wait 600)\n']);
  });

  it('policy replay lists no unchanged decision, and summarises the proposals of agents the policy does not name', async () => {
    const other = join(dir, 'other.yaml');
    writeFileSync(other, BASE_POLICY);
    const [same, res] = await Promise.all([countersign(['policy', 'replay', 'policy.yaml', '--since', '1h'], env, dir), countersign(['policy', 'replay', other, '--since', '1h'], env, dir)]);
    expect(same.code).toBe(0);
    expect(same.stdout).toBe('replayed 1 proposal(s) since 1h: 0 decision(s) would change, 1 unchanged\n');
    expect(res.stdout).toBe(
      'replayed 1 proposal(s) since 1h: 0 decision(s) would change, 0 unchanged\n' +
        `not compared: 1 proposal(s) from agents not in ${other}: my-agent (1); their requests would be refused\n`,
    );
  });
});
