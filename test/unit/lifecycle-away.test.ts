import { describe, expect, it } from 'vitest';
import { awayRuleBroken, parseUntil, untilText, type Absence } from '../../src/core/away.ts';
import { buildApprovalCard, eligibilityNote, refusalSentence, summaryLine } from '../../src/core/card.ts';
import { threadReply, timelineEntry } from '../../src/core/event-text.ts';
import { applyVote, canDecide, quorumHolds, type Authority } from '../../src/core/lifecycle.ts';
import type { Proposal } from '../../src/core/proposal.ts';

// Votes by a delegate while an approver is away (src/core/away.ts): whose seat a click fills,
// one human counting once, sponsors never counting, and how it reads.

const T0 = Date.parse('2026-11-24T10:00:00Z');
const DAY = 86_400_000;

function pending(required = 2): Proposal {
  return {
    id: 'p_0000000000aaaaaaaaaaaaaaaa',
    agent: 'billing-agent',
    idempotency_key: null,
    intent: 'refund',
    action: { tool: 'payments', operation: 'refund', target: 'cus_1', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision: { effect: 'approve', risk: 'medium', rule: 'payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: required, ttl_ms: 60_000 },
    status: 'pending',
    created_at: T0,
    expires_at: T0 + 60_000,
    approvals: [],
    resolution: null,
    version: 1,
  };
}

// finance: alice, bob, dana; dana sponsors the agent; erin and sam are people outside finance; sam sponsors too.
const people = ['alice', 'bob', 'dana', 'erin', 'sam'];
const authority: Authority = {
  personExists: (p) => people.includes(p),
  isApprover: (p, g) => g === 'finance' && ['alice', 'bob', 'dana'].includes(p),
  isSponsor: (p, a) => a === 'billing-agent' && (p === 'dana' || p === 'sam'),
  agentExists: (a) => a === 'billing-agent',
};
const NONE: ReadonlyMap<string, number> = new Map();
const vote = (person: string, v: 'approve' | 'deny' = 'approve') => ({ person, platform: 'slack' as const, vote: v, reason: v === 'deny' ? 'no' : null, authenticatedAt: null });
const away = (entries: Record<string, string>, until = T0 + DAY): Map<string, Absence> => new Map(Object.entries(entries).map(([p, d]) => [p, { delegate: d, until, set_at: T0 - 1 }]));

describe('a delegate deciding for someone away', () => {
  it('erin (not in finance) counts for alice, away: the seat is alice, erin cast it; cards and timelines say "erin for alice"', () => {
    const step = applyVote(pending(), vote('erin'), authority, T0 + 1, NONE, away({ alice: 'erin' }));
    expect(step.outcome).toMatchObject({ kind: 'counted', approvals: 1, approvers: ['alice'] });
    expect(step.next!.approvals).toEqual([{ person: 'alice', delegate: 'erin', platform: 'slack', vote: 'approve', reason: null, at: T0 + 1 }]);
    const recorded = step.events.find((e) => e.type === 'approval_recorded')!;
    expect(recorded.actor).toBe('person:erin');
    expect(recorded.data).toMatchObject({ person: 'alice', delegate: 'erin' });
    expect(threadReply(step.next!, recorded)?.text).toBe('erin for alice approved (1 of 2, via slack)');
    expect(timelineEntry(step.next!, recorded).text).toContain('erin for alice approved');
    expect(summaryLine(buildApprovalCard(step.next!, 'https://x/p'))).toContain('1 of 2 approvals: erin for alice');
  });

  it('without the absence (or after its until) erin is not an approver', () => {
    expect(canDecide(pending(), 'erin', authority, T0 + 1, NONE)).toMatchObject({ ok: false, why: 'not_an_approver' });
    expect(canDecide(pending(), 'erin', authority, T0 + DAY, NONE, away({ alice: 'erin' }))).toMatchObject({ ok: false, why: 'not_an_approver' });
  });

  it('bob, a member himself, counts as bob first; then again for alice he is already counted (one human counts once)', () => {
    const a = away({ alice: 'bob' });
    const first = applyVote(pending(), vote('bob'), authority, T0 + 1, NONE, a);
    expect(first.next!.approvals.map((x) => [x.person, x.delegate])).toEqual([['bob', undefined]]);
    const again = applyVote(first.next!, vote('bob'), authority, T0 + 2, NONE, a);
    expect(again.outcome).toMatchObject({ kind: 'refused', why: 'already_voted' });
    expect(again.next).toBeNull();
  });

  it('alice, back, cannot vote again after her delegate voted for her', () => {
    const byErin = applyVote(pending(), vote('erin'), authority, T0 + 1, NONE, away({ alice: 'erin' })).next!;
    expect(applyVote(byErin, vote('alice'), authority, T0 + 2, NONE).outcome).toMatchObject({ kind: 'refused', why: 'already_voted' });
  });

  it('a delegate whose absent person already voted is told so, by name', () => {
    const byAlice = applyVote(pending(), vote('alice'), authority, T0 + 1, NONE).next!;
    const out = applyVote(byAlice, vote('erin'), authority, T0 + 2, NONE, away({ alice: 'erin' })).outcome;
    expect(out).toMatchObject({ kind: 'refused', why: 'already_voted' });
    expect(refusalSentence(out as { why: 'already_voted'; message: string })).toBe('The decision of alice (away, who named you) is already counted.');
    const note = canDecide(byAlice, 'erin', authority, T0 + 2, NONE, away({ alice: 'erin' }));
    expect(eligibilityNote(note as Extract<typeof note, { ok: false }>)).toBe('The decision of alice (away, who named you) is already counted.');
  });

  it('a delegate who sponsors the agent never counts, and the refusal is audited', () => {
    const step = applyVote(pending(), vote('sam'), authority, T0 + 1, NONE, away({ alice: 'sam' }));
    expect(step.outcome).toMatchObject({ kind: 'refused', why: 'sponsor' });
    expect(step.events.map((e) => [e.type, e.actor, (e.data as { why?: string }).why])).toEqual([['approval_refused', 'person:sam', 'sponsor']]);
  });

  it('an absent person who would not qualify (a sponsor, or outside the group) gives the delegate nothing', () => {
    expect(canDecide(pending(), 'erin', authority, T0 + 1, NONE, away({ dana: 'erin' }))).toMatchObject({ ok: false, why: 'not_an_approver' });
    expect(canDecide(pending(), 'erin', authority, T0 + 1, NONE, away({ sam: 'erin' }))).toMatchObject({ ok: false, why: 'not_an_approver' });
  });

  it("a delegate's deny denies", () => {
    const step = applyVote(pending(), vote('erin', 'deny'), authority, T0 + 1, NONE, away({ alice: 'erin' }));
    expect(step.outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(step.next!.approvals[0]).toMatchObject({ person: 'alice', delegate: 'erin', vote: 'deny' });
  });

  it('one hop: erin stands in for alice only, not for whoever named alice', () => {
    const chain = away({ bob: 'alice', alice: 'erin' });
    const first = applyVote(pending(), vote('erin'), authority, T0 + 1, NONE, chain);
    expect(first.next!.approvals.map((x) => x.person)).toEqual(['alice']);
    expect(applyVote(first.next!, vote('erin'), authority, T0 + 2, NONE, chain).outcome).toMatchObject({ kind: 'refused', why: 'already_voted' });
  });

  it("a delegate's approval stops counting when the delegate leaves the policy or comes to sponsor the agent", () => {
    const byErin = applyVote(pending(1), vote('erin'), authority, T0 + 1, NONE, away({ alice: 'erin' })).next!;
    expect(quorumHolds(byErin, authority)).toEqual({ holds: true });
    const sponsorNow: Authority = { ...authority, isSponsor: (p, a) => authority.isSponsor(p, a) || p === 'erin' };
    expect(quorumHolds(byErin, sponsorNow)).toEqual({ holds: false, approvals: 0, required: 1, void: [{ person: 'alice', platform: 'slack', why: 'sponsor', delegate: 'erin' }] });
    const gone: Authority = { ...authority, personExists: (p) => p !== 'erin' && people.includes(p) };
    expect(quorumHolds(byErin, gone)).toMatchObject({ holds: false, void: [{ why: 'unknown_person', delegate: 'erin' }] });
  });
});

describe('absence rules', () => {
  const exists = (p: string) => people.includes(p);
  it('a date means through that day (UTC); a time needs its zone; nonsense and impossible dates are refused', () => {
    expect(parseUntil('2026-12-24')).toBe(Date.parse('2026-12-25T00:00:00Z'));
    expect(untilText(parseUntil('2026-12-24')!)).toBe('the end of 2026-12-24 (UTC)');
    expect(parseUntil('2026-12-24T17:30Z')).toBe(Date.parse('2026-12-24T17:30:00Z'));
    for (const bad of ['2026-02-31', '24.12.2026', '2026-12-24T17:30', 'tomorrow', '']) expect(parseUntil(bad), bad).toBeNull();
  });

  it('the delegate must be another person of the policy; until in the future, at most 90 days ahead', () => {
    const ok = { person: 'alice', delegate: 'bob', until: T0 + DAY };
    expect(awayRuleBroken(ok, T0, exists)).toBeNull();
    expect(awayRuleBroken({ ...ok, delegate: 'mallory' }, T0, exists)).toMatchObject({ field: 'delegate' });
    expect(awayRuleBroken({ ...ok, delegate: 'alice' }, T0, exists)).toMatchObject({ field: 'delegate' });
    expect(awayRuleBroken({ ...ok, until: T0 }, T0, exists)).toMatchObject({ field: 'until' });
    expect(awayRuleBroken({ ...ok, until: T0 + 90 * DAY }, T0, exists)).toBeNull();
    expect(awayRuleBroken({ ...ok, until: T0 + 90 * DAY + 1 }, T0, exists)).toMatchObject({ field: 'until', message: expect.stringContaining('90 days') });
  });
});
