import { beforeAll, describe, expect, it } from 'vitest';
import { recordDecision, type DecisionRequest } from '../../src/app/record-decision.ts';
import { verifyAudit } from '../../src/app/search-audit.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

const decide = (req: Omit<DecisionRequest, 'platform'> & { platform?: DecisionRequest['platform'] }) =>
  recordDecision(app.running.deps, { platform: 'slack', ...req });

async function eventsOf(id: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const res = await app.admin<{ events: { type: string; data: Record<string, unknown> }[] }>(`/v1/audit?proposal_id=${id}&limit=500`);
  return res.body.events.reverse();
}

async function largePayment(): Promise<string> {
  const res = await app.billing.propose(proposalBody({ context: { value: { amount: 25_000, currency: 'EUR' } } }));
  expect(res.body.decision).toMatchObject({ rule: 'large-payments', approvals_required: 2, risk: 'critical' });
  return res.body.id;
}

describe('record-decision', () => {
  it('50 concurrent decisions on one proposal leave one decision and a consistent quorum', async () => {
    const id = await largePayment();
    const people = [...Array(20).fill('alice'), ...Array(20).fill('bob'), ...Array(5).fill('dana'), ...Array(5).fill('erin')] as string[];
    const results = await Promise.all(people.map((person, i) => decide({ proposalId: id, person, vote: 'approve', platform: i % 2 ? 'slack' : 'teams' })));

    const kinds = results.map((r) => r.outcome.kind);
    expect(kinds.filter((k) => k === 'decided')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'counted')).toHaveLength(1);
    const whys = results.flatMap((r) => (r.outcome.kind === 'refused' ? [r.outcome.why] : []));
    expect(whys.filter((w) => w === 'sponsor')).toHaveLength(5);
    expect(whys.filter((w) => w === 'not_an_approver')).toHaveLength(5);
    expect(whys.filter((w) => w !== 'sponsor' && w !== 'not_an_approver').every((w) => w === 'already_voted' || w === 'not_pending')).toBe(true);

    const final = (await app.admin<{ status: string; approvals: { person: string }[] }>(`/v1/proposals/${id}`)).body;
    expect(final.status).toBe('approved');
    expect(final.approvals.map((a) => a.person).sort()).toEqual(['alice', 'bob']);
    const events = await eventsOf(id);
    expect(events.filter((e) => e.type === 'approval_recorded')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'decided')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'approval_refused')).toHaveLength(48);
  });

  it('a deny racing approvals ends in exactly one decision', async () => {
    const id = await largePayment();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0 ? decide({ proposalId: id, person: 'alice', vote: 'approve' }) : decide({ proposalId: id, person: 'bob', vote: 'deny', reason: 'duplicate refund' }),
      ),
    );
    expect(results.filter((r) => r.outcome.kind === 'decided')).toHaveLength(1);
    const final = (await app.admin<{ status: string }>(`/v1/proposals/${id}`)).body;
    expect(final.status).toBe('denied');
    expect((await eventsOf(id)).filter((e) => e.type === 'decided')).toHaveLength(1);
  });

  it('needs two distinct people for a 2-approval rule, and never counts the sponsor', async () => {
    const id = await largePayment();
    expect((await decide({ proposalId: id, person: 'dana', vote: 'approve' })).outcome).toMatchObject({ kind: 'refused', why: 'sponsor' });
    expect((await decide({ proposalId: id, person: 'alice', vote: 'approve' })).outcome).toMatchObject({ kind: 'counted', approvals: 1, required: 2 });
    expect((await decide({ proposalId: id, person: 'alice', vote: 'approve', platform: 'teams' })).outcome).toMatchObject({ kind: 'refused', why: 'already_voted' });
    expect((await decide({ proposalId: id, person: 'bob', vote: 'approve' })).outcome).toMatchObject({ kind: 'decided', status: 'approved' });
    expect((await decide({ proposalId: id, person: 'bob', vote: 'deny', reason: 'too late' })).outcome).toMatchObject({ kind: 'refused', why: 'not_pending' });
  });

  it('asks for a reason to deny a critical proposal', async () => {
    const id = await largePayment();
    expect((await decide({ proposalId: id, person: 'alice', vote: 'deny' })).outcome).toMatchObject({ kind: 'refused', why: 'reason_required' });
    expect((await decide({ proposalId: id, person: 'alice', vote: 'deny', reason: 'fraud suspected' })).outcome).toMatchObject({ kind: 'decided', status: 'denied' });
  });
});

describe('expiry', () => {
  it('expires a pending proposal at its ttl through the queue, and refuses later decisions', async () => {
    const { body } = await app.billing.propose(proposalBody({ action: { tool: 'payments', operation: 'quick', target: 'cus_9' } }));
    expect(body.decision.ttl_seconds).toBe(1);
    // No reads in between that could expire it lazily: only the delayed BullMQ job can
    // publish this change.
    expect(await app.running.deps.changes.waitForChange(body.id, 15_000)).toBe('expired');
    // A final status answers a long-poll at once (the 60 s timeout would fail the test).
    const res = await app.billing.request('GET', `/v1/proposals/${body.id}/wait?timeout=60`);
    expect(res.body.status).toBe('expired');
    expect(res.body.resolution).toMatchObject({ status: 'expired', by: null });
    const late = await decide({ proposalId: body.id, person: 'alice', vote: 'approve' });
    expect(late.outcome).toMatchObject({ kind: 'refused', why: 'expired', status: 'expired' });
    expect(late.proposal.status).toBe('expired');
    const events = await eventsOf(body.id);
    expect(events.filter((e) => e.type === 'expired')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'approval_refused', data: { why: 'expired' } });
  });
});

describe('audit chain', () => {
  it('verifies the real log, and names the entry after one is edited in Redis', async () => {
    const audit = app.running.deps.audit;
    const verdict = await verifyAudit(audit);
    expect(verdict).toMatchObject({ ok: true });
    expect(verdict.count).toBeGreaterThan(100);

    // Edit one entry's data in place: streams cannot be edited, so rewrite the stream with
    // the same ids and one changed field, as an attacker with Redis access could.
    const redis = app.running.redis as import('ioredis').Redis;
    const key = `{${app.prefix}}:audit`;
    const entries = (await redis.xrange(key, '-', '+')) as [string, string[]][];
    const victim = Math.floor(entries.length / 2);
    await redis.del(key);
    for (const [i, [id, fields]] of entries.entries()) {
      const copy = [...fields];
      if (i === victim) {
        const at = copy.indexOf('data');
        copy[at + 1] = copy[at + 1]!.replace(/"person":"[a-z]+"/, '"person":"mallory"').replace(/"reason":"[^"]*"/, '"reason":"edited"');
        if (copy[at + 1] === fields[at + 1]) copy[at + 1] = '{"edited":true}';
      }
      await redis.xadd(key, id, ...copy);
    }
    const broken = await verifyAudit(audit);
    const seqAt = (fields: string[]) => Number(fields[fields.indexOf('seq') + 1]);
    expect(broken).toMatchObject({ ok: false, seq: seqAt(entries[victim]![1]), id: entries[victim]![0] });
    expect(broken.ok === false && broken.reason).toContain('edited');
  });
});
