import { describe, expect, it } from 'vitest';
import { checkClick, decideClick, recordDecision } from '../../../src/app/record-decision.ts';
import { T0 } from '../../helpers/memory/clock.ts';
import { ALICE_TEAMS, createMemoryApp, TEST_POLICY, type MemoryApp } from '../../helpers/memory/app.ts';

// record-decision: the one door through which people decide, from every platform. Who may
// vote (approvers, never the sponsor, never a stranger), how many distinct people it takes,
// when a reason is needed, and a proposal past its deadline expired by the click itself.

const large = { context: { value: { amount: 25_000, currency: 'EUR' } } }; // critical, 2 of finance
const deploy = { action: { tool: 'deploy', operation: 'ship', target: 'api' } }; // medium, 1 of security

const click = (app: MemoryApp, proposalId: string, user: string, vote: 'approve' | 'deny' = 'approve', extra: { platform?: string; trusted?: boolean; reason?: string } = {}) =>
  decideClick(app.deps, { proposalId, platform: extra.platform ?? 'slack', user, trusted: extra.trusted ?? true, vote, ...(extra.reason === undefined ? {} : { reason: extra.reason }) });

describe('approvers and quorum', () => {
  it("counts an approver's vote and waits for the quorum, publishing nothing until the status moves", async () => {
    const app = await createMemoryApp();
    const p = await app.submit(large);
    app.clock.advance(60_000);
    const r = await app.vote(p.id, 'bob');

    expect(r.outcome).toEqual({ kind: 'counted', approvals: 1, required: 2, approvers: ['bob'] });
    expect(r.proposal).toMatchObject({ status: 'pending', version: 2, approvals: [{ person: 'bob', platform: 'slack', vote: 'approve', reason: null, at: T0 + 60_000 }] });
    expect(app.events({ proposal: p.id, type: 'approval_recorded' })[0]).toMatchObject({ actor: 'person:bob', data: { approvals: 1, required: 2, vote: 'approve' } });
    expect(app.changes.published).toEqual([]);
    expect(app.ledger.saved).toEqual([]);
  });

  it('needs distinct people: a second approval by the same person, on any platform, is refused', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(large);
    await app.vote(p.id, 'alice', 'approve', null, 'slack');
    const twice = await app.vote(p.id, 'alice', 'approve', null, 'teams');
    expect(twice.outcome).toMatchObject({ kind: 'refused', why: 'already_voted', status: 'pending' });
    expect(twice.proposal.approvals).toHaveLength(1);

    app.clock.advance(90_000);
    const done = await app.vote(p.id, 'bob');
    expect(done.outcome).toEqual({ kind: 'decided', status: 'approved', approvals: 2, required: 2, approvers: ['alice', 'bob'] });
    expect(done.proposal.resolution).toEqual({ status: 'approved', by: 'bob', reason: null, at: T0 + 90_000 });
    expect(app.trail(p.id)).toEqual(['proposal_received', 'policy_decided', 'approval_recorded', 'approval_refused', 'approval_recorded', 'decided', 'token_issued']);
    expect(app.metrics.decisions).toEqual([{ status: 'approved', seconds: 90 }]);
    expect(app.changes.published.at(-1)).toEqual({ proposalId: p.id, status: 'approved' });
  });

  it("refuses someone outside the rule's approvers, audits it, and changes nothing", async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const r = await app.vote(p.id, 'erin');
    expect(r.outcome).toMatchObject({ kind: 'refused', why: 'not_an_approver', message: 'only members of "finance" may decide on this proposal' });
    expect(r.proposal.version).toBe(1);
    expect(app.events({ type: 'approval_refused' })[0]).toMatchObject({ actor: 'person:erin', data: { person: 'erin', why: 'not_an_approver', vote: 'approve' } });
    // A refusal is not a commit: no card update, no reply.
    expect(app.jobs.notified.filter((j) => j.kind !== 'post')).toEqual([]);
  });

  it("refuses the agent's sponsor although they are in the approvers group, for a deny too", async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    for (const vote of ['approve', 'deny'] as const) {
      const r = await app.vote(p.id, 'dana', vote, 'looks wrong');
      expect(r.outcome).toMatchObject({ kind: 'refused', why: 'sponsor' });
    }
    expect((await app.get(p.id)).status).toBe('pending');
    expect(app.events({ type: 'approval_refused' }).map((e) => e.data['why'])).toEqual(['sponsor', 'sponsor']);
    // Another agent's proposal: dana is an ordinary approver there.
    const other = await app.submit({}, 'ops-agent');
    expect((await app.vote(other.id, 'dana')).outcome.kind).toBe('decided');
  });

  it('refuses a vote on a decided proposal as not pending', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    await app.vote(p.id, 'alice');
    const late = await app.vote(p.id, 'bob', 'deny', 'no');
    expect(late.outcome).toMatchObject({ kind: 'refused', why: 'not_pending' });
    expect(late.proposal.status).toBe('approved');
  });
});

describe('strangers', () => {
  it('a platform user not in the policy is refused, audited under the platform id, and told why', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const r = await click(app, p.id, 'U0NOBODY');
    expect(r.outcome).toMatchObject({ kind: 'refused', why: 'unknown_person', status: 'pending' });
    expect(r.notice).toBe('You are not allowed to decide on this proposal: you are not a person in the policy.');
    expect(r.proposal?.version).toBe(1);
    expect(app.events({ type: 'approval_refused' })[0]).toMatchObject({ proposal_id: p.id, agent: 'billing-agent', actor: 'slack:U0NOBODY', data: { platform: 'slack', platform_user: 'U0NOBODY', why: 'unknown_person' } });
  });

  it('a user the platform cannot vouch for is a stranger even with a listed id; long ids are cut to 64', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    expect((await click(app, p.id, 'U0ALICE', 'approve', { trusted: false })).outcome).toMatchObject({ why: 'unknown_person' });
    await click(app, p.id, 'X'.repeat(200));
    const [, long] = app.events({ type: 'approval_refused' });
    expect(long?.actor).toBe(`slack:${'X'.repeat(64)}`);
    expect(long?.data['platform_user']).toBe('X'.repeat(64));
    expect((await app.get(p.id)).approvals).toEqual([]);
  });

  it("a user id is only matched on its own platform, the platform's way (Teams ids in any case)", async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    expect((await click(app, p.id, 'U0ALICE', 'approve', { platform: 'teams' })).outcome).toMatchObject({ why: 'unknown_person' });
    const r = await click(app, p.id, ALICE_TEAMS.toUpperCase(), 'approve', { platform: 'teams' });
    expect(r.outcome.kind).toBe('decided');
    expect(r.notice).toBeNull();
    expect(r.proposal?.approvals[0]).toMatchObject({ person: 'alice', platform: 'teams' });
  });

  it('a click on a proposal that does not exist is refused and audited without a proposal', async () => {
    const app = await createMemoryApp();
    const r = await click(app, 'p_00000000000000000000000000', 'U0NOBODY');
    expect(r.proposal).toBeNull();
    expect(app.events({ type: 'approval_refused' })[0]).toMatchObject({ proposal_id: null, agent: null });
    await expect(click(app, 'p_00000000000000000000000000', 'U0ALICE')).rejects.toThrow('no proposal');
  });
});

describe('a deny needs a reason at high and critical risk', () => {
  it('refuses a deny without a reason (blank counts as none) on a high-risk proposal, then records one with it', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    for (const reason of [undefined, '   ']) {
      const r = await click(app, p.id, 'U0BOB', 'deny', reason === undefined ? {} : { reason });
      expect(r.outcome).toMatchObject({ kind: 'refused', why: 'reason_required' });
      expect(r.notice).toBe('A reason is required to deny a high-risk proposal.');
    }
    const denied = await click(app, p.id, 'U0BOB', 'deny', { reason: '  duplicate refund  ' });
    expect(denied.outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(denied.proposal?.resolution).toMatchObject({ status: 'denied', by: 'bob', reason: 'duplicate refund' });
    expect(app.ledger.saved).toEqual([]);
  });

  it('a single deny ends a proposal that needed two approvals', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(large);
    await app.vote(p.id, 'alice');
    const r = await app.vote(p.id, 'bob', 'deny', 'not this quarter');
    expect(r.outcome).toEqual({ kind: 'decided', status: 'denied', approvals: 1, required: 2, approvers: ['alice'] });
  });

  it('a medium-risk proposal is denied without a reason', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(deploy, 'ops-agent');
    const r = await app.vote(p.id, 'carol', 'deny');
    expect(r.outcome).toMatchObject({ kind: 'decided', status: 'denied' });
    expect(r.proposal.resolution?.reason).toBeNull();
  });
});

describe('checkClick: may this person vote, before the platform asks for a reason', () => {
  it('allows a deny that needs a reason without recording anything', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const check = await checkClick(app.deps, { proposalId: p.id, platform: 'slack', user: 'U0BOB', trusted: true, vote: 'deny' });
    expect(check).toMatchObject({ allowed: true, reasonRequired: true, notice: null });
    const approve = await checkClick(app.deps, { proposalId: p.id, platform: 'slack', user: 'U0BOB', trusted: true, vote: 'approve' });
    expect(approve).toMatchObject({ allowed: true, reasonRequired: false });
    expect(app.trail(p.id)).toEqual(['proposal_received', 'policy_decided']);
    expect((await app.get(p.id)).version).toBe(1);
  });

  it('refuses and audits exactly as a vote would: a non-approver, a sponsor, a stranger', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const whys = [];
    for (const user of ['U0ERIN', 'U0DANA', 'U0NOBODY']) {
      const check = await checkClick(app.deps, { proposalId: p.id, platform: 'slack', user, trusted: true, vote: 'deny' });
      expect(check.allowed).toBe(false);
      expect(check.notice).toMatch(/^You are not allowed to decide on this proposal/);
      if (!check.allowed) whys.push(check.outcome.why);
    }
    expect(whys).toEqual(['not_an_approver', 'sponsor', 'unknown_person']);
    expect(app.events({ type: 'approval_refused' }).map((e) => e.data['why'])).toEqual(whys);
  });
});

describe('a vote after the deadline', () => {
  it('expires the proposal first, then refuses the vote: both committed, in that order', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(15 * 60_000 - 1);
    expect((await app.vote(p.id, 'erin')).proposal.status).toBe('pending');
    app.clock.advance(1);
    const r = await app.vote(p.id, 'alice');

    expect(r.outcome).toMatchObject({ kind: 'refused', why: 'expired', status: 'expired' });
    expect(r.proposal).toMatchObject({ status: 'expired', resolution: { status: 'expired', by: null }, approvals: [] });
    expect(app.trail(p.id).slice(-2)).toEqual(['expired', 'approval_refused']);
    expect(app.changes.published.at(-1)).toEqual({ proposalId: p.id, status: 'expired' });
    expect(app.ledger.saved).toEqual([]);
    // The expiry job that runs later finds nothing to do.
    await app.runDue();
    expect(app.events({ proposal: p.id, type: 'expired' })).toHaveLength(1);
  });

  it('a stranger learns nothing: refused as unknown, and the proposal is not expired by their click', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(20 * 60_000);
    const r = await recordDecision(app.deps, { proposalId: p.id, person: 'mallory', platform: 'console', vote: 'approve' });
    expect(r.outcome).toMatchObject({ why: 'unknown_person' });
    expect((await app.get(p.id)).status).toBe('pending');
  });

  it('checkClick past the deadline expires the proposal too', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(15 * 60_000);
    const check = await checkClick(app.deps, { proposalId: p.id, platform: 'slack', user: 'U0BOB', trusted: true, vote: 'deny' });
    expect(check).toMatchObject({ allowed: false, notice: 'Too late: this proposal has expired.' });
    expect((await app.get(p.id)).status).toBe('expired');
  });
});

describe("a revoked agent's proposal left pending", () => {
  it('is refused at the click (approve, deny, the deny dialog), audited, and never approved', async () => {
    const app = await createMemoryApp();
    const p = await app.submit(deploy, 'ops-agent');
    // The switch pulled and its process gone before it cancelled the pending proposals.
    await app.ledger.markAgentRevoked('ops-agent', app.clock.now());
    app.clock.advance(1_000);
    const r = await click(app, p.id, 'U0CAROL');
    expect(r.outcome).toMatchObject({ kind: 'refused', why: 'agent_revoked', status: 'pending' });
    expect(r.notice).toBe('Not counted: agent "ops-agent" is revoked, so none of its proposals will run.');
    const check = await checkClick(app.deps, { proposalId: p.id, platform: 'slack', user: 'U0ALICE', trusted: true, vote: 'deny' });
    expect(check).toMatchObject({ allowed: false, notice: r.notice });
    expect(await app.get(p.id)).toMatchObject({ status: 'pending', version: 1, approvals: [] });
    expect(app.events({ proposal: p.id, type: 'approval_refused' }).map((e) => [e.actor, e.data['why']])).toEqual([
      ['person:carol', 'agent_revoked'],
      ['person:alice', 'agent_revoked'],
    ]);
    expect(app.ledger.saved).toEqual([]);
    // Another agent's proposals are decided as usual.
    expect((await app.vote((await app.submit()).id, 'alice')).outcome.kind).toBe('decided');
  });
});

const vault = { action: { tool: 'vault', operation: 'read', target: 'secret/prod/key' } };
const STEP_UP_POLICY = TEST_POLICY.replace(
  'rules:\n',
  'rules:\n  - name: vault\n    when: action.tool == "vault"\n    effect: approve\n    risk: high\n    step_up: true\n    route: finance\n    approvers: finance\n',
);

describe('step-up: a rule with step_up: true', () => {
  it('counts an approval only with a sign-in the platform vouches for, within 5 minutes; a deny needs none', async () => {
    const app = await createMemoryApp({ policy: STEP_UP_POLICY });
    const p = await app.submit(vault, 'ops-agent');
    expect(p.decision).toMatchObject({ rule: 'vault', step_up: true });

    // A chat click vouches for no sign-in.
    const chat = await click(app, p.id, 'U0ALICE');
    expect(chat.outcome).toMatchObject({ kind: 'refused', why: 'step_up_required' });
    expect(chat.notice).toBe('Not counted: approvals of this proposal count only in the console, from someone who signed in there within the last 5 minutes.');
    // A sign-in 5 minutes and a millisecond ago is too old; 5 minutes is fine.
    const old = await recordDecision(app.deps, { proposalId: p.id, person: 'bob', platform: 'console', vote: 'approve', authenticatedAt: app.clock.now() - 5 * 60_000 - 1 });
    expect(old.outcome).toMatchObject({ kind: 'refused', why: 'step_up_required' });
    expect(app.events({ proposal: p.id, type: 'approval_refused' }).map((e) => e.data)).toEqual([
      { person: 'alice', platform: 'slack', vote: 'approve', why: 'step_up_required', signed_in_at: null },
      { person: 'bob', platform: 'console', vote: 'approve', why: 'step_up_required', signed_in_at: new Date(app.clock.now() - 5 * 60_000 - 1).toISOString() },
    ]);
    const signedIn = app.clock.now() - 5 * 60_000;
    const fresh = await recordDecision(app.deps, { proposalId: p.id, person: 'bob', platform: 'console', vote: 'approve', authenticatedAt: signedIn });
    expect(fresh.outcome).toMatchObject({ kind: 'decided', status: 'approved' });
    expect(app.events({ proposal: p.id, type: 'approval_recorded' })[0]?.data).toMatchObject({ person: 'bob', signed_in_at: new Date(signedIn).toISOString() });

    const other = await app.submit({ ...vault, intent: 'Read it again' }, 'ops-agent');
    const denied = await click(app, other.id, 'U0ALICE', 'deny', { reason: 'not now' });
    expect(denied.outcome).toMatchObject({ kind: 'decided', status: 'denied' });
  });

  it('leaves every other rule as it was: a chat approval counts, and nothing about sign-ins is recorded', async () => {
    const app = await createMemoryApp({ policy: STEP_UP_POLICY });
    const p = await app.submit(deploy, 'ops-agent');
    expect(p.decision.step_up).toBeUndefined();
    expect((await click(app, p.id, 'U0CAROL')).outcome.kind).toBe('decided');
    expect(app.events({ proposal: p.id, type: 'approval_recorded' })[0]?.data).not.toHaveProperty('signed_in_at');
  });
});
