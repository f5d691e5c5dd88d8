import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisKeys } from '../../adapters/redis/keys.ts';
import type { CommitSubscriber } from '../../src/app/after-commit.ts';
import { proposalBody } from '../helpers/agent.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { restartTestApp, startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY, signInWithKey } from '../helpers/console.ts';
import { waitFor } from '../helpers/fake-slack.ts';

// Issue 13, item 1: an audit write that fails leaves no change behind. The audit stream is
// made unwritable mid-traffic (moved aside, a string in its place: every XADD to it fails);
// each request that would record an event then answers 503 and changes nothing, and once the
// stream is back, `countersign audit verify` is green and the same requests succeed.

const run = promisify(execFile);
const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;

let app: TestApp;
let redis: Redis;
let alice: { cookie: string; csrf: string };
// The approval whose token issue the audit breaks under (see the observer below).
let breakOnApprovalOf: string | null = null;
let brokenAt: State | null = null;

const keys = () => redisKeys(app.prefix);
const aside = () => `${keys().audit}:aside`;

interface State {
  head: Record<string, string>;
  /** The stream, wherever it is kept at the moment. */
  entries: number;
  lastId: string | null;
  pending: string[];
  counts: Record<string, string>;
  proposals: string[];
  idempotency: string[];
  /** Per proposal id asked for: its hash, token slot, pick-up slot. */
  of: Record<string, { hash: Record<string, string>; token: string | null; pickup: string | null }>;
}

type Multi = ReturnType<Redis['multi']>;

/** Queues the reads of a State on `m` (so it can be taken in the same step as the break); `read` parses them. */
function queueState(m: Multi, streamKey: string, ids: readonly string[]): (replies: [Error | null, unknown][]) => State {
  const k = keys();
  m.hgetall(k.auditHead).xlen(streamKey).xrevrange(streamKey, '+', '-', 'COUNT', 1).zrange(k.pending, '0', '-1', 'WITHSCORES').hgetall(k.statusCounts);
  m.keys(`${k.tag}:proposal:*`).keys(`${k.tag}:idem:*`);
  for (const id of ids) m.hgetall(k.proposal(id)).get(k.proposalToken(id)).get(k.pickup(id));
  return (replies) => {
    const v = replies.map(([err, value]) => {
      if (err !== null) throw err;
      return value;
    });
    const of: State['of'] = {};
    ids.forEach((id, i) => {
      of[id] = { hash: v[7 + 3 * i] as Record<string, string>, token: v[8 + 3 * i] as string | null, pickup: v[9 + 3 * i] as string | null };
    });
    return {
      head: v[0] as Record<string, string>,
      entries: v[1] as number,
      lastId: (v[2] as [string, string[]][])[0]?.[0] ?? null,
      pending: v[3] as string[],
      counts: v[4] as Record<string, string>,
      proposals: (v[5] as string[]).sort(),
      idempotency: (v[6] as string[]).sort(),
      of,
    };
  };
}

async function state(ids: readonly string[], streamKey = keys().audit): Promise<State> {
  const m = redis.multi();
  const read = queueState(m, streamKey, ids);
  return read((await m.exec())!);
}

/** Sent at once, on the app's own connection, so every later command of the app finds the stream unwritable. */
function breakAudit(ids: readonly string[] = []): Promise<State> {
  const m = redis.multi().rename(keys().audit, aside()).set(keys().audit, 'not a stream');
  const read = queueState(m, aside(), ids);
  return m.exec().then((replies) => read(replies!.slice(2)));
}

const auditKey = generateSigningKey();

async function repairAudit(): Promise<void> {
  await redis.multi().del(keys().audit).rename(aside(), keys().audit).exec();
}

async function auditVerify(): Promise<{ code: number; stdout: string }> {
  const env = { PATH: process.env['PATH'] ?? '', REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix };
  try {
    const { stdout } = await run(process.execPath, [BIN, 'audit', 'verify', '--keys', `${app.url}/.well-known/audit-keys.json`], { env, timeout: 30_000 });
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, stdout: err.stdout };
  }
}

const consoleVote = (id: string, vote: 'approve' | 'deny') =>
  fetch(`${app.url}/console/proposals/${id}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', cookie: alice.cookie, origin: app.url },
    body: new URLSearchParams({ csrf: alice.csrf, vote }).toString(),
  });

const auditTypes = async (id: string): Promise<string[]> =>
  ((await app.admin<{ events: { type: string }[] }>(`/v1/audit?proposal_id=${id}&limit=100`)).body.events ?? []).map((e) => e.type).reverse();

/** Submitted while the audit works, with its card posted (so no delivery is left to run in the window). */
async function pendingProposal(): Promise<string> {
  const res = await app.billing.propose(proposalBody());
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  await waitFor(async () => ((await auditTypes(id)).includes('card_posted') ? true : null), { what: `card_posted for ${id}` });
  return id;
}

// Breaks the audit between an approval's commit and its token's: the token issue is the next
// thing the approval's follow-ups send to Redis, after this subscriber has queued the break.
const breakBeforeTokenIssue: CommitSubscriber = {
  name: 'test-break-audit-before-token-issue',
  async onCommitted({ before, after }) {
    if (after.id !== breakOnApprovalOf || before?.status !== 'pending' || after.status !== 'approved') return;
    breakOnApprovalOf = null;
    brokenAt = await breakAudit([after.id]);
  },
};

beforeAll(async () => {
  app = await startTestApp({ policy: CONSOLE_POLICY, env: { ...CONSOLE_ENV, AUDIT_SIGNING_KEY: await auditKey }, start: { observers: [breakBeforeTokenIssue] } });
  redis = app.running.redis as Redis;
  alice = await signInWithKey(app.url, 'alice', CONSOLE_KEYS.alice);
});

afterAll(async () => {
  // A failed test must not leave the stream aside for the cleanup.
  if ((await redis.exists(aside())) === 1) await repairAudit();
});

describe('an audit write that fails changes nothing', () => {
  it('submit, approval click and cancel answer 503 with nothing changed; after repair verify is green and they succeed', async () => {
    const toApprove = await pendingProposal();
    const toCancel = await pendingProposal();
    const ids = [toApprove, toCancel];
    const before = await breakAudit(ids);
    try {
      const submit = await app.billing.propose(proposalBody({ idempotency_key: 'fail-closed-1' }));
      expect(submit.status).toBe(503);
      expect(submit.body).toMatchObject({ error: 'unavailable' });
      expect(submit.headers.get('retry-after')).toBe('2');
      expect(await state(ids, aside())).toEqual(before);

      const approve = await consoleVote(toApprove, 'approve');
      expect(approve.status).toBe(503);
      expect(await approve.json()).toMatchObject({ error: 'unavailable' });
      expect(approve.headers.get('retry-after')).toBe('2');
      expect(await state(ids, aside())).toEqual(before);

      const cancel = await app.billing.request('POST', `/v1/proposals/${toCancel}/cancel`, { reason: 'not needed' });
      expect(cancel.status).toBe(503);
      expect(cancel.body).toMatchObject({ error: 'unavailable' });
      expect(await state(ids, aside())).toEqual(before);
      // Nothing about the store's insides reaches the client.
      for (const body of [submit.body, cancel.body]) expect(JSON.stringify(body)).not.toMatch(/WRONGTYPE|\{t-|lua|script/i);
    } finally {
      await repairAudit();
    }
    const verified = await auditVerify();
    expect(verified.stdout).toMatch(/audit log ok/);
    expect(verified.code).toBe(0);

    const again = await app.billing.propose(proposalBody({ idempotency_key: 'fail-closed-1' }));
    expect(again.status).toBe(201);
    expect((await consoleVote(toApprove, 'approve')).status).toBe(200);
    const cancelled = await app.billing.request('POST', `/v1/proposals/${toCancel}/cancel`, { reason: 'not needed' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(await auditTypes(toApprove)).toEqual(expect.arrayContaining(['approval_recorded', 'decided', 'token_issued']));
    expect((await auditVerify()).code).toBe(0);
  });

  it('a token issue that cannot be audited leaves the approval without a token, and the token unusable; recovery issues it once the stream is back', async () => {
    const id = await pendingProposal();
    breakOnApprovalOf = id;
    try {
      // The approval itself is recorded (the stream worked when it was committed); its token is not.
      const approved = await consoleVote(id, 'approve');
      expect(approved.status).toBe(200);
      const at = brokenAt;
      expect(at).not.toBeNull();
      expect(at!.of[id]!.hash['status']).toBe('approved');
      expect(await state([id], aside())).toEqual(at);
      const p = JSON.parse(at!.of[id]!.hash['doc']!) as { execution?: unknown };
      expect(p.execution).toBeUndefined();
      expect(at!.of[id]!.token).toBeNull();
      expect(at!.of[id]!.pickup).toBeNull();
      // The agent's read finds no token to pick up.
      const read = await app.billing.request('GET', `/v1/proposals/${id}`);
      expect(read.body.status).toBe('approved');
      expect(read.body.execution ?? null).toBeNull();
    } finally {
      await repairAudit();
    }
    expect(await auditTypes(id)).not.toContain('token_issued');
    // No token of this proposal is left issued in the ledger.
    const ledgerStates = await Promise.all((await redis.keys(`${keys().tag}:token:*`)).map((k) => redis.hmget(k, 'proposal_id', 'state')));
    expect(ledgerStates.filter(([pid, st]) => pid === id && st === 'issued')).toEqual([]);
    expect((await auditVerify()).code).toBe(0);

    // Recovery (at start, and periodically) issues the missing token now that the stream takes writes.
    // The same signing key across the restart, as replicas share AUDIT_SIGNING_KEY (each test app has its own data directory).
    app = await restartTestApp(app, { policy: CONSOLE_POLICY, env: { ...CONSOLE_ENV, AUDIT_SIGNING_KEY: await auditKey }, start: { execution: { reconcileGraceMs: 0 } } });
    redis = app.running.redis as Redis;
    const after = await app.admin<{ status: string; execution: { token_id: string } | null }>(`/v1/proposals/${id}`);
    expect(after.body.status).toBe('approved');
    expect(after.body.execution?.token_id).toMatch(/^t_/);
    expect((await auditTypes(id)).filter((t) => t === 'token_issued')).toHaveLength(1);
    const verified = await auditVerify();
    expect(verified.stdout).toMatch(/audit log ok/);
  });
});
