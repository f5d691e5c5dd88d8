import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { testRedis } from '../helpers/redis.ts';

// The console's form intakes changed this session (edit, batch, away), under attack: oversized,
// deeply nested, control characters, many ids, and the same request twice at once. Each is
// refused with a status naming what is wrong and stores nothing, or (a duplicate) counts once.
// One app for the file; the console over real HTTP, with its session cookie and CSRF token.

const { redis } = testRedis();
let app: TestApp;
let alice: { cookie: string; csrf: string };

// An editable rule needing two approvals (an edit is the editor's approval: still pending after
// it), with a JSON parameter (`lines`) whose edit text is parsed as JSON.
const POLICY = CONSOLE_POLICY.replace(
  '  - name: payments\n',
  '  - name: invoices\n    when: action.tool == "invoices"\n    effect: approve\n    risk: medium\n    route: finance\n    approvers: finance\n    approvals: 2\n    editable: [amount, memo, lines]\n  - name: payments\n',
);

beforeAll(async () => {
  app = await startTestApp({ policy: POLICY, env: CONSOLE_ENV });
  alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
});

let made = 0;
async function invoice(): Promise<string> {
  const body = { intent: `Send invoice INV-${++made}`, action: { tool: 'invoices', operation: 'send', target: `cus_${made}`, parameters: { amount: 120, memo: 'INV', lines: [{ sku: 'a', qty: 1 }] } } };
  const res = await app.billing.propose(body);
  expect(res.status).toBe(201);
  return res.body.id as string;
}
const proposalOf = async (id: string) => (await app.admin(`/v1/proposals/${id}`)).body;
const auditTypes = async (id: string) => ((await app.admin(`/v1/audit?proposal_id=${id}&limit=100`)).body.events as { type: string }[]).map((e) => e.type);

function post(path: string, fields: [string, string][] | Record<string, string>, json = true) {
  return fetch(`${app.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: alice.cookie, origin: app.url, ...(json ? { accept: 'application/json' } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
}
const edit = (id: string, fields: Record<string, string>) => post(`/console/proposals/${id}/edit`, { csrf: alice.csrf, version: '1', ...fields });

describe('console edit under attack', () => {
  it('a 1 MB value is 413 and a value over 4,000 characters 400 naming the field; nothing stored', async () => {
    const id = await invoice();
    expect((await edit(id, { 'edit:memo': 'x'.repeat(1024 * 1024) })).status).toBe(413);
    const long = await edit(id, { 'edit:memo': 'x'.repeat(5_000) });
    expect(long.status).toBe(400);
    expect(JSON.stringify(await long.json())).toContain('memo');
    expect(await proposalOf(id)).toMatchObject({ status: 'pending', revision: null, approvals: [] });
    expect(await auditTypes(id)).not.toContain('revised');
  });

  it('a JSON value nested deeper than an agent may send (32) is 400 naming the field; nothing stored', async () => {
    const id = await invoice();
    for (const depth of [1_500, 33]) {
      const res = await edit(id, { 'edit:lines': `${'['.repeat(depth)}${']'.repeat(depth)}` });
      expect(res.status, `depth ${depth}`).toBe(400);
      expect(JSON.stringify(await res.json())).toContain('lines');
    }
    // A "__proto__" key (object copies drop it: what was approved would not be what runs).
    const proto = await edit(id, { 'edit:lines': '[{"__proto__": {"admin": true}}]' });
    expect(proto.status).toBe(400);
    expect(JSON.stringify(await proto.json())).toContain('lines');
    expect(await proposalOf(id)).toMatchObject({ status: 'pending', revision: null, approvals: [] });
    expect(await auditTypes(id)).not.toContain('revised');
    // As deep as the agent itself could have sent it (its body's 32 levels, from action.parameters.lines) is saved.
    const deepest = await edit(id, { 'edit:lines': `${'['.repeat(29)}${']'.repeat(29)}` });
    expect(deepest.status).toBe(200);
    expect(await auditTypes(id)).toContain('revised');
  });

  it('the same edit posted twice at once is one revision and one approval', async () => {
    const id = await invoice();
    const [a, b] = await Promise.all([edit(id, { 'edit:amount': '99' }), edit(id, { 'edit:amount': '99' })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const read = await proposalOf(id);
    expect(read.status).toBe('pending');
    expect(read.approvals).toHaveLength(1);
    expect(read.action.parameters.amount).toBe(99);
    expect((await auditTypes(id)).filter((t) => t === 'revised')).toHaveLength(1);
  });
});

describe('console batch under attack', () => {
  it('10,000 ids is 413 (over the form limit), 51 is 400 naming the ids; nothing decided', async () => {
    const id = await invoice();
    const many = (n: number): [string, string][] => [['csrf', alice.csrf], ['vote', 'approve'], ['id', id], ...Array.from({ length: n - 1 }, (_, i): [string, string] => ['id', `p_${String(i).padStart(20, '0')}`])];
    expect((await post('/console/batch', many(10_000))).status).toBe(413);
    const fiftyOne = await post('/console/batch', many(51), false);
    expect(fiftyOne.status).toBe(400);
    expect(await fiftyOne.text()).toMatch(/at most 50/);
    expect(await proposalOf(id)).toMatchObject({ status: 'pending', approvals: [] });
    expect(await auditTypes(id)).not.toContain('approval_recorded');
  });
});

describe('console away under attack', () => {
  const awayKey = () => `{${app.prefix}}:away`;
  const until = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);

  it('a huge or control-character delegate or date is refused; nothing stored', async () => {
    await redis.hdel(awayKey(), 'alice');
    expect((await post('/console/away', { csrf: alice.csrf, action: 'set', until, delegate: 'e'.repeat(1024 * 1024) }, false)).status).toBe(413);
    for (const fields of [
      { delegate: 'erin\u0000', until },
      { delegate: 'erin\r\nX-Injected: 1', until },
      { delegate: 'e'.repeat(10_000), until },
      { delegate: 'erin', until: `${until}\u0000` },
      { delegate: 'erin', until: '9'.repeat(10_000) },
    ]) {
      const res = await post('/console/away', { csrf: alice.csrf, action: 'set', ...fields }, false);
      expect(res.status, JSON.stringify(fields).slice(0, 60)).toBe(400);
      expect(res.headers.get('x-injected')).toBeNull();
    }
    expect(await redis.hget(awayKey(), 'alice')).toBeNull();
  });

  it('two absences set for alice at once: one stands, and the last away_set in the log is the one stored', async () => {
    await redis.hdel(awayKey(), 'alice');
    const [a, b] = await Promise.all([
      post('/console/away', { csrf: alice.csrf, action: 'set', until, delegate: 'bob' }, false),
      post('/console/away', { csrf: alice.csrf, action: 'set', until, delegate: 'erin' }, false),
    ]);
    expect([a.status, b.status]).toEqual([303, 303]);
    const stored = JSON.parse((await redis.hget(awayKey(), 'alice'))!) as { delegate: string };
    expect(['bob', 'erin']).toContain(stored.delegate);
    const log = ((await app.admin('/v1/audit?actor=person:alice&limit=50')).body.events as { type: string; data: { delegate: string } }[]).filter((e) => e.type === 'away_set');
    expect(log.length).toBeGreaterThanOrEqual(2);
    // Newest first: the absence that stands is the one the last event describes.
    expect(log[0]!.data.delegate).toBe(stored.delegate);
  });
});
