import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { waitFor } from '../helpers/fake-slack.ts';

// "Approve selected" / "Deny selected" on the console's pending page: checkboxes on the cards
// that may be decided together, one form post with the CSRF token, each proposal decided on its
// own under one batch id.

let app: TestApp;
let alice: { cookie: string; csrf: string };

const CAROL_KEY = 'carol-console-key-batch-0123456789';

// A step-up rule beside the others: its proposals are never batched either. Carol (in no
// finance group) signs in to decide for alice while alice is away.
const POLICY = CONSOLE_POLICY.replace(
  '  - name: payments\n',
  '  - name: wires\n    when: action.tool == "wire"\n    effect: approve\n    risk: medium\n    step_up: true\n    route: finance\n    approvers: finance\n' +
    '  - name: paired-payments\n    when: action.tool == "payments" && action.operation == "pair"\n    effect: approve\n    risk: medium\n    route: finance\n    approvers: finance\n    approvals: 2\n  - name: payments\n',
).replace('carol: { slack: U0CAROL }', `carol: { slack: U0CAROL, console_key_sha256: ${createHash('sha256').update(CAROL_KEY).digest('hex')} }`);

beforeAll(async () => {
  app = await startTestApp({ policy: POLICY, env: CONSOLE_ENV });
  alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
});

let targets = 0;
/** Each to a target of its own: amounts to one target add up over a day (split-transaction aggregation). */
async function propose(overrides: Record<string, unknown> = {}): Promise<string> {
  const action = { tool: 'payments', operation: 'refund', target: `stripe:cus_batch_${++targets}`, parameters: { amount: 420, currency: 'EUR' } };
  const res = await app.billing.propose(proposalBody({ action, ...overrides }));
  expect(res.status).toBe(201);
  return res.body.id as string;
}

function postBatch(fields: [string, string][], session = alice, headers: Record<string, string> = {}) {
  const body = new URLSearchParams(fields);
  return fetch(`${app.url}/console/batch`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: session.cookie, origin: app.url, ...headers },
    body: body.toString(),
  });
}
const picks = (ids: string[]): [string, string][] => ids.map((id) => ['id', id]);

async function events(id: string): Promise<{ type: string; data: any }[]> {
  return (await app.admin(`/v1/audit?proposal_id=${id}&limit=100`)).body.events;
}
const statusOf = async (id: string) => (await app.billing.request('GET', `/v1/proposals/${id}`)).body.status as string;
const recorded = async (id: string) => (await events(id)).filter((e) => e.type === 'approval_recorded');

describe('console: deciding several at once', () => {
  it('shows checkboxes on batchable cards only, and approves the ticked ones with CSRF under one batch id', async () => {
    const ids = [await propose(), await propose(), await propose({ action: { tool: 'crm', operation: 'export', target: 'contacts' } })];
    const critical = await propose({ context: { value: { amount: 50_000, currency: 'EUR' } } });
    const page = await (await fetch(`${app.url}/console`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain('<form id="batch" class="batch" method="post" action="/console/batch"');
    for (const id of ids) expect(page).toContain(`<input type="checkbox" name="id" value="${id}" form="batch">`);
    expect(page).not.toContain(`value="${critical}" form="batch"`);

    // Two rules (payments, the default) in one selection: each group checked, one batch.
    const res = await postBatch([['csrf', alice.csrf], ['vote', 'approve'], ...picks(ids)]);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Approved 3.');
    const batches = new Set<string>();
    for (const id of ids) {
      const list = await recorded(id);
      expect(list).toHaveLength(1);
      expect(list[0]!.data).toMatchObject({ person: 'alice', platform: 'console', vote: 'approve' });
      batches.add(list[0]!.data.batch);
      await waitFor(async () => (await events(id)).some((e) => e.type === 'token_issued'), { what: `token of ${id}` });
      expect(await statusOf(id)).toBe('approved');
    }
    expect(batches.size).toBe(1);
  });

  it('refuses a post without the CSRF token (403) and a selection naming a critical or step-up proposal (400), deciding nothing', async () => {
    const a = await propose();
    const critical = await propose({ context: { value: { amount: 70_000, currency: 'EUR' } } });
    const wire = await propose({ action: { tool: 'wire', operation: 'send', target: 'iban:DE00', parameters: {} } });
    expect(await (await fetch(`${app.url}/console`, { headers: { cookie: alice.cookie } })).text()).not.toContain(`value="${wire}" form="batch"`);
    const noToken = await postBatch([['vote', 'approve'], ...picks([a])]);
    expect(noToken.status).toBe(403);
    const otherSite = await postBatch([['csrf', alice.csrf], ['vote', 'approve'], ...picks([a])], alice, { origin: 'https://evil.example' });
    expect(otherSite.status).toBe(403);
    const named = await postBatch([['csrf', alice.csrf], ['vote', 'approve'], ...picks([a, critical])], alice, { accept: 'application/json' });
    expect(named.status).toBe(400);
    expect(((await named.json()) as { message: string }).message).toMatch(/critical risk: decide it on its own/);
    const stepUp = await postBatch([['csrf', alice.csrf], ['vote', 'approve'], ...picks([wire, a])], alice, { accept: 'application/json' });
    expect(stepUp.status).toBe(400);
    expect(((await stepUp.json()) as { message: string }).message).toMatch(/needs a fresh sign-in \(step_up\): decide it on its own/);
    for (const id of [a, critical, wire]) {
      expect((await events(id)).filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused')).toEqual([]);
      expect(await statusOf(id)).toBe('pending');
    }
  });

  it('a deny of high-risk proposals needs a reason; with one, each is denied', async () => {
    const ids = [await propose(), await propose()];
    const bare = await postBatch([['csrf', alice.csrf], ['vote', 'deny'], ...picks(ids)]);
    expect(bare.status).toBe(400);
    expect(await bare.text()).toContain('a reason is required to deny high-risk proposals');
    for (const id of ids) expect(await recorded(id)).toEqual([]);
    const res = await postBatch([['csrf', alice.csrf], ['vote', 'deny'], ['reason', 'duplicate refunds'], ...picks(ids)], alice, { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect((await res.json()) as object).toMatchObject({ ok: true, decided: ids, message: 'Denied 2.' });
    for (const id of ids) expect(await statusOf(id)).toBe('denied');
    // Submitted again (a double submit): nothing more is recorded.
    const again: Response = await postBatch([['csrf', alice.csrf], ['vote', 'deny'], ['reason', 'duplicate refunds'], ...picks(ids)], alice, { accept: 'application/json' });
    expect(((await again.json()) as { message: string }).message).toBe('Denied 0, 2 already decided.');
    for (const id of ids) expect(await recorded(id)).toHaveLength(1);
  });
});

describe('console: batches, delegates and double submits', () => {
  const votesOf = async (id: string) => (await events(id)).filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused');
  const away = (fields: Record<string, string>) =>
    fetch(`${app.url}/console/away`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: alice.cookie, origin: app.url }, body: new URLSearchParams({ csrf: alice.csrf, ...fields }).toString() });

  it("skips, with nothing in the log, a proposal (needing two) the delegate already approved for alice on its card", async () => {
    const until = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    expect((await away({ action: 'set', until, delegate: 'carol' })).status).toBe(303);
    try {
      const carol = await signInWithKey(app.url, 'carol', CAROL_KEY);
      const pair = () => propose({ action: { tool: 'payments', operation: 'pair', target: `stripe:cus_batch_${++targets}`, parameters: {} } });
      const [x, y] = [await pair(), await pair()];
      const single = await fetch(`${app.url}/console/proposals/${x}/decide`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: carol.cookie, origin: app.url, accept: 'application/json' },
        body: new URLSearchParams({ csrf: carol.csrf, vote: 'approve' }).toString(),
      });
      expect(single.status).toBe(200);
      const res = await postBatch([['csrf', carol.csrf], ['vote', 'approve'], ...picks([x, y])], carol, { accept: 'application/json' });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { batch: string; decided: string[]; skipped: unknown[]; refused: unknown[] };
      expect(body).toMatchObject({ decided: [y], skipped: [{ id: x, why: 'already_voted' }], refused: [] });
      // x: carol's one vote for alice, and no refusal from the batch.
      expect((await votesOf(x)).map((e) => [e.type, e.data.person, e.data.delegate ?? null, e.data.batch ?? null])).toEqual([['approval_recorded', 'alice', 'carol', null]]);
      expect((await votesOf(y)).map((e) => [e.type, e.data.person, e.data.delegate ?? null, e.data.batch ?? null])).toEqual([['approval_recorded', 'alice', 'carol', body.batch]]);
    } finally {
      expect((await away({ action: 'back' })).status).toBe(303);
    }
  });

  it('two submits of one selection at once: each proposal approved once, and no refusal in the log', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await propose());
    const send = () => postBatch([['csrf', alice.csrf], ['vote', 'approve'], ...picks(ids)], alice, { accept: 'application/json' });
    const answers = (await Promise.all([send(), send()])) as Response[];
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as { decided: string[]; skipped: { why: string }[]; refused: unknown[] }[];
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(bodies.flatMap((b) => b.decided).sort()).toEqual([...ids].sort());
    expect(bodies.flatMap((b) => b.refused)).toEqual([]);
    for (const id of ids) {
      expect((await votesOf(id)).map((e) => e.type)).toEqual(['approval_recorded']);
      expect(await statusOf(id)).toBe('approved');
    }
  });
});
