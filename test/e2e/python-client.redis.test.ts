import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requestTarget, sign, signedHeaders, verifySignature } from '../../src/core/signing.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, signInWithKey } from '../helpers/console.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';

// Issue 18 part 3: the Python client (clients/python) against the real countersign. This file
// starts the app, writes what only the TypeScript code can say (signatures for fixed inputs,
// callbacks the server really sent), then runs `python3 -m unittest` with the URL, the agent and
// its secret; the Python tests decide in the real console over HTTP. Then the example agent
// examples/refund_agent.py gets a console approval from here and reports its outcome.

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const root = join(import.meta.dirname, '..', '..');

function policy(callbackUrl: string): string {
  return `
version: 1
agents:
  - id: py-agent
    secret_env: AGENT_BILLING_SECRET
  - id: py-callback-agent
    secret_env: AGENT_OPS_SECRET
    callback_url: ${callbackUrl}
people:
  alice: { console_key_sha256: ${sha(CONSOLE_KEYS.alice)} }
  bob: { console_key_env: BOB_CONSOLE_KEY }
groups:
  finance: [alice, bob]
channels:
  finance: { console: true }
rules:
  - name: never-drop
    when: action.operation == "drop"
    effect: deny
    reason: Dropping databases is never delegated to agents
  - name: tagging
    when: action.operation == "tag"
    effect: allow
    risk: low
  - name: quick
    when: action.operation == "quick"
    effect: approve
    route: finance
    approvers: finance
    ttl: 1s
  - name: throttled
    when: action.operation == "throttled"
    effect: approve
    route: finance
    approvers: finance
    limits: { pending: 1 }
  - name: refunds
    when: action.tool == "payments"
    effect: approve
    risk: high
    route: finance
    approvers: finance
    editable: [amount, memo]
default: { effect: approve, route: finance, approvers: finance }
`;
}

let app: TestApp;
let callbacks: FakeHttpServer;
let callbackUrl: string;

beforeAll(async () => {
  callbacks = await startFakeHttpServer();
  // A query with an escape: the signature covers the request target exactly as it arrives.
  callbackUrl = `${callbacks.url}/hooks/countersign?tenant=a%20b`;
  app = await startTestApp({ policy: policy(callbackUrl), env: CONSOLE_ENV });
  return () => callbacks.close();
});

interface Run {
  code: number | null;
  output: string;
}

/** Runs a command to its end; `onLine` sees stdout line by line. */
function run(command: string, args: string[], env: Record<string, string>, onLine: (line: string) => void = () => undefined): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env } });
    let output = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Signatures, headers and verdicts of the TypeScript code for fixed inputs, for the Python side to match. */
function signingVectors() {
  const requests = [
    { secret: 'agent-secret', timestamp: 1764590400, method: 'POST', path: '/v1/proposals', body: '{"intent":"Refund"}' },
    { secret: 'agent-secret', timestamp: 1764590400, method: 'get', path: '/v1/proposals/p_0123456789abcdefghijklmnop/wait?timeout=25', body: '' },
    { secret: 'sëcret with ünïcode ✓', timestamp: '1764590401', method: 'POST', path: '/prefix/v1/proposals/p_x/cancel', body: '{"reason":"nicht mehr nötig — 24 800 €"}' },
    { secret: 'x', timestamp: 0, method: 'POST', path: '/hooks/countersign?tenant=a%20b', body: '{}' },
  ];
  const nowMs = 1764590400999;
  const good = sign('agent-secret', 1764590400, { method: 'POST', path: '/v1/proposals', body: '{}' });
  const verify = [
    ['1764590400', good, nowMs],
    ['1764590400', good, nowMs + 300_000],
    ['1764590400', good, nowMs + 301_000],
    ['1764590400', good, nowMs - 301_000],
    ['1764590400', good.replace(/.$/, (c) => (c === '0' ? '1' : '0')), nowMs],
    ['1764590400', good.toUpperCase(), nowMs],
    ['17645904OO', good, nowMs],
    ['١٧٦٤٥٩٠٤٠٠', good, nowMs],
    ['1764590400', undefined, nowMs],
  ] as const;
  return {
    sign: requests.map((r) => ({ ...r, signature: sign(r.secret, r.timestamp, r) })),
    headers: { agent: 'py-agent', secret: 'agent-secret', nowMs, method: 'POST', path: '/v1/proposals', body: '{}', headers: signedHeaders('py-agent', 'agent-secret', { method: 'POST', path: '/v1/proposals', body: '{}' }, nowMs) },
    verify: verify.map(([timestamp, signature, now]) => {
      const check = verifySignature('agent-secret', timestamp, signature, { method: 'POST', path: '/v1/proposals', body: '{}' }, now);
      return { timestamp, signature: signature ?? null, nowMs: now, reason: check.ok ? null : check.reason };
    }),
    targets: ['http://127.0.0.1:3000', 'http://127.0.0.1:3000/', 'https://countersign.example/prefix/v1/proposals?x=1', callbackUrl].map((url) => ({ url, target: requestTarget(url) })),
  };
}

describe('the long poll names the status the agent last read', () => {
  it('answers at once when a decision landed between the agent\'s read and its poll; an unknown status is a 400', async () => {
    const { testAgent } = await import('../helpers/agent.ts');
    const agent = testAgent(app.url, 'py-agent', app.secrets.billing);
    const { body } = await agent.propose({ intent: 'Refund INV-7 (long poll)', action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_7', parameters: { amount: 7 } } });
    expect((await agent.request('GET', `/v1/proposals/${body.id}`)).body.status).toBe('pending');
    const alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
    const vote = await fetch(`${app.url}/console/proposals/${body.id}/decide`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: alice.cookie, origin: app.url },
      body: new URLSearchParams({ csrf: alice.csrf, vote: 'approve', confirm: 'yes' }).toString(),
    });
    expect(await vote.json()).toMatchObject({ ok: true, status: 'approved' });
    // Without `status` this poll would sleep on "approved" for its 60 s (past the test's timeout).
    const polled = await agent.request('GET', `/v1/proposals/${body.id}/wait?timeout=60&status=pending`);
    expect(polled.status).toBe(200);
    expect(polled.body).toMatchObject({ status: 'approved', execution_token: expect.any(String) });
    const bad = await agent.request('GET', `/v1/proposals/${body.id}/wait?timeout=1&status=maybe`);
    expect(bad.status).toBe(400);
    expect(bad.body.issues).toEqual([expect.objectContaining({ path: 'status' })]);
  });
});

describe('the Python client against the real server', () => {
  it('passes its unittest suite: signing as the TypeScript code, every call, errors, callbacks, requires_approval', async () => {
    // Two real callbacks first: an allowed action's `approved` (with its token) and a cancel's.
    const { testAgent } = await import('../helpers/agent.ts');
    const caller = testAgent(app.url, 'py-callback-agent', app.secrets.ops);
    const allowed = await caller.propose({ intent: 'Tag the invoice as reviewed', action: { tool: 'crm', operation: 'tag', target: 'invoice:INV-1', parameters: {} }, context: { reversible: true, destination: 'internal' } });
    const pending = await caller.propose({ intent: 'Refund INV-2', action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_2', parameters: { amount: 5 } } });
    await caller.request('POST', `/v1/proposals/${pending.body.id}/cancel`, { reason: 'not needed' });
    const received = [...(await callbacks.waitFor(1, (r) => r.body?.proposal_id === allowed.body.id)), ...(await callbacks.waitFor(1, (r) => r.body?.proposal_id === pending.body.id))];

    const dir = mkdtempSync(join(tmpdir(), 'countersign-py-'));
    const file = join(dir, 'vectors.json');
    writeFileSync(
      file,
      JSON.stringify({
        ...signingVectors(),
        callbacks: {
          agent: 'py-callback-agent',
          secret: app.secrets.ops,
          callback_url: callbackUrl,
          received: received.map((r) => ({ path: r.path, headers: r.headers, raw: r.raw })),
        },
      }),
    );
    const result = await run('python3', ['-m', 'unittest', 'discover', '-s', 'clients/python/tests', '-v'], {
      COUNTERSIGN_URL: app.url,
      COUNTERSIGN_AGENT: 'py-agent',
      COUNTERSIGN_AGENT_SECRET: app.secrets.billing,
      COUNTERSIGN_TEST_APPROVER: 'alice',
      COUNTERSIGN_TEST_APPROVER_KEY: CONSOLE_KEYS.alice,
      COUNTERSIGN_TEST_VECTORS: file,
    });
    if (result.code !== 0) console.log(result.output);
    expect(result.code).toBe(0);
    // Every test ran: none was skipped for want of the server or the vectors.
    expect(result.output).not.toMatch(/skipped/);
    expect(result.output).toMatch(/\nOK\n/);
  }, 60_000);

  it('examples/refund_agent.py proposes, gets a signed-in console approval, refunds and reports the outcome', async () => {
    const bob = await signInWithKey(app.url, 'bob', CONSOLE_KEYS.bob);
    let decided: Promise<Response> | undefined;
    const result = await run('python3', ['examples/refund_agent.py'], { COUNTERSIGN_URL: app.url, COUNTERSIGN_AGENT: 'py-agent', COUNTERSIGN_AGENT_SECRET: app.secrets.billing }, (line) => {
      const id = /^proposed (p_[0-9a-z]{26})/.exec(line)?.[1];
      if (id === undefined || decided !== undefined) return;
      decided = fetch(`${app.url}/console/proposals/${id}/decide`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: bob.cookie, origin: app.url },
        body: new URLSearchParams({ csrf: bob.csrf, vote: 'approve', confirm: 'yes' }).toString(),
      });
    });
    if (result.code !== 0) console.log(result.output);
    expect(result.code).toBe(0);
    expect(decided).toBeDefined();
    expect(await (await decided!).json()).toMatchObject({ ok: true, status: 'approved' });
    const id = /^proposed (p_[0-9a-z]{26})/m.exec(result.output)![1]!;
    const read = (await app.admin(`/v1/proposals/${id}`)).body;
    expect(read).toMatchObject({ agent: 'py-agent', status: 'succeeded', approvals: [{ person: 'bob', platform: 'console', vote: 'approve' }], execution: { mode: 'poll', outcome: 'succeeded' } });
    expect(result.output).toContain(`reported: succeeded`);
    const audit = (await app.admin(`/v1/audit?proposal_id=${id}&limit=50`)).body.events as { type: string; data: Record<string, unknown> }[];
    const finished = audit.find((e) => e.type === 'execution_finished');
    expect(finished?.data).toMatchObject({ status: 'succeeded', response_excerpt: expect.stringMatching(/^refund re_INV-\d{4} created$/) });
  }, 30_000);
});
