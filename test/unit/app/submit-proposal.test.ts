import { describe, expect, it } from 'vitest';
import { restoreAgent, revokeAgent } from '../../../src/app/revoke-agent.ts';
import { IMPLICIT_KEY_TTL_SECONDS, submitProposal } from '../../../src/app/submit-proposal.ts';
import { AgentRevokedError, ConflictError } from '../../../src/core/errors.ts';
import { PROPOSAL_ID_PATTERN } from '../../../src/core/ids.ts';
import { createMemoryApp, TEST_POLICY } from '../../helpers/memory/app.ts';
import { T0 } from '../../helpers/memory/clock.ts';

// submitProposal: the policy's decision becomes the proposal's status, the first audit events
// are committed with it, and the after-commit flow gets exactly one commit per new proposal.

describe('a proposal the policy sends to people', () => {
  it('is stored pending with its deadline, audited, and put in the card outbox in the same step; the relay posts one card per platform of the route', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ intent: 'Refund invoice 4711', context: { value: { amount: 420, currency: 'EUR' } } });

    expect(p.id).toMatch(PROPOSAL_ID_PATTERN);
    expect(p).toMatchObject({ agent: 'billing-agent', status: 'pending', created_at: T0, expires_at: T0 + 15 * 60_000, resolution: null, approvals: [], version: 1 });
    expect(p.decision).toMatchObject({ effect: 'approve', risk: 'high', rule: 'payments', route: 'finance', approvers: 'finance', approvals_required: 1 });
    expect(await app.get(p.id)).toEqual(p);
    expect(app.trail(p.id)).toEqual(['proposal_received', 'policy_decided']);
    const [received, decided] = app.events({ proposal: p.id });
    expect(received).toMatchObject({ actor: 'agent:billing-agent', data: { intent: 'Refund invoice 4711', idempotency_key: null } });
    expect(decided).toMatchObject({ actor: 'policy', data: { effect: 'approve', rule: 'payments' } });

    // Its expiry is the pending set's deadline (the sweep's), its cards the outbox's: no job for either.
    expect(app.jobs.notified).toEqual([]);
    expect(app.outbox.waiting()).toEqual([p.id]);
    expect(await app.relayCards()).toEqual([]);
    expect(app.channel('slack').posts.map((c) => c.card.proposalId)).toEqual([p.id]);
    expect(app.channel('console').posts.map((c) => c.card.proposalId)).toEqual([p.id]);
    expect(app.channel('teams').posts).toEqual([]);
    expect(app.changes.published).toEqual([]);
    expect(app.metrics.submitted).toEqual(['approve']);
    expect(app.metrics.decisions).toEqual([]);
    expect(app.ledger.saved).toEqual([]);
  });

  it("takes the matching rule's risk, quorum and ttl, and the route's platforms", async () => {
    const app = await createMemoryApp();
    const large = await app.submit({ context: { value: { amount: 25_000, currency: 'EUR' } } });
    expect(large.decision).toMatchObject({ rule: 'large-payments', risk: 'critical', approvals_required: 2, ttl_ms: 30 * 60_000 });
    expect(large.expires_at).toBe(T0 + 30 * 60_000);

    const other = await app.submit({ action: { tool: 'crm', operation: 'export', target: 'all' } });
    expect(other.decision).toMatchObject({ rule: 'default', route: 'secops', approvers: 'security', risk: 'medium' });
    await app.relayCards();
    expect(['slack', 'teams', 'console'].filter((platform) => app.channel(platform).posts.some((c) => c.card.proposalId === other.id))).toEqual(['slack', 'teams', 'console']);
  });

  it('fills the context defaults before the rules see it (production unless told otherwise)', async () => {
    const app = await createMemoryApp();
    const drop = await app.submit({ action: { tool: 'postgres', operation: 'drop', target: 'db' } });
    expect(drop.status).toBe('rejected');
    const staging = await app.submit({ action: { tool: 'postgres', operation: 'drop', target: 'db' }, context: { environment: 'staging' } });
    expect(staging.status).toBe('pending');
  });
});

describe('a proposal the policy decides at once', () => {
  it('allowed: approved by the policy, no card, no deadline, and its token issued in the same flow', async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ action: { tool: 'crm', operation: 'tag', target: 'cus_1' }, context: { reversible: true } });

    expect(p).toMatchObject({ status: 'approved', expires_at: null, resolution: { status: 'approved', by: 'policy', reason: 'matched rule "reversible-internal-tagging"', at: T0 } });
    expect(app.trail(p.id)).toEqual(['proposal_received', 'policy_decided', 'decided', 'token_issued']);
    expect(app.events({ proposal: p.id, type: 'decided' })[0]).toMatchObject({ actor: 'policy', data: { status: 'approved', rule: 'reversible-internal-tagging' } });
    expect(app.jobs.notified).toEqual([]);
    expect(app.outbox.waiting()).toEqual([]);
    expect(app.ledger.saved).toHaveLength(1);
    expect((await app.get(p.id)).execution?.mode).toBe('poll');
    expect(app.metrics.submitted).toEqual(['allow']);
    // Decided by the policy, not by people: no time-to-decision.
    expect(app.metrics.decisions).toEqual([]);
  });

  it("denied: rejected with the rule's reason, and nothing follows", async () => {
    const app = await createMemoryApp();
    const p = await app.submit({ action: { tool: 'postgres', operation: 'drop', target: 'db' } }, 'callback-agent');

    expect(p).toMatchObject({ status: 'rejected', expires_at: null, resolution: { status: 'rejected', by: 'policy', reason: 'Dropping production databases is never delegated to agents' } });
    expect(app.trail(p.id)).toEqual(['proposal_received', 'policy_decided', 'decided']);
    expect(app.jobs.notified).toEqual([]);
    expect(app.outbox.waiting()).toEqual([]);
    expect(app.ledger.saved).toEqual([]);
    expect(app.queue.callbacks).toEqual([]);
    expect(app.metrics.submitted).toEqual(['deny']);
  });

  it('a sponsor is in the CEL input: rules can see agent.sponsors', async () => {
    const policy = TEST_POLICY.replace(
      'rules:\n',
      'rules:\n  - name: sponsored\n    when: \'"dana" in agent.sponsors\'\n    effect: deny\n',
    );
    const app = await createMemoryApp({ policy });
    expect((await app.submit({}, 'billing-agent')).decision.rule).toBe('sponsored');
    expect((await app.submit({}, 'ops-agent')).decision.rule).toBe('payments');
  });
});

describe('idempotency', () => {
  it("returns the first proposal for a repeated key, without a second card, event or metric", async () => {
    const app = await createMemoryApp();
    const agent = app.agent('billing-agent');
    const first = await submitProposal(app.deps, agent, app.input({ idempotency_key: 'refund-4711' }));
    const again = await submitProposal(app.deps, agent, app.input({ idempotency_key: 'refund-4711' }));

    expect(first.created).toBe(true);
    expect(again).toEqual({ proposal: first.proposal, created: false });
    expect(app.store.all()).toHaveLength(1);
    expect(app.outbox.waiting()).toEqual([first.proposal.id]);
    expect(app.events()).toHaveLength(2);
    expect(app.metrics.submitted).toEqual(['approve']);
  });

  it('returns the first proposal as it is now (already decided), not as it was', async () => {
    const app = await createMemoryApp();
    const first = await app.submit({ idempotency_key: 'k1' });
    await app.vote(first.id, 'alice');
    const again = await submitProposal(app.deps, app.agent('billing-agent'), app.input({ idempotency_key: 'k1' }));
    expect(again.created).toBe(false);
    expect(again.proposal.status).toBe('approved');
  });

  it('refuses a key reused for a different request (409), storing nothing', async () => {
    const app = await createMemoryApp();
    const first = await app.submit({ idempotency_key: 'k2' });
    const attempt = app.submit({ idempotency_key: 'k2', action: { target: 'stripe:cus_999' } });
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(attempt).rejects.toThrow(first.id);
    // Only intent, action and context are compared.
    await expect(app.submit({ idempotency_key: 'k2', intent: 'Refund it twice' })).rejects.toBeInstanceOf(ConflictError);
    expect(app.store.all()).toHaveLength(1);
    expect(app.outbox.waiting()).toEqual([first.id]);
  });

  it("keys are per agent: another agent's same key is a new proposal", async () => {
    const app = await createMemoryApp();
    const a = await app.submit({ idempotency_key: 'shared' }, 'billing-agent');
    const b = await app.submit({ idempotency_key: 'shared' }, 'ops-agent');
    expect(b.id).not.toBe(a.id);
    expect(app.store.all()).toHaveLength(2);
  });

  it('dedupes the same signed request without a key for IMPLICIT_KEY_TTL_SECONDS, then takes it as new', async () => {
    const app = await createMemoryApp();
    const first = await app.submit({}, 'billing-agent', 'sig-1');
    app.clock.advance(IMPLICIT_KEY_TTL_SECONDS * 1000 - 1);
    expect((await app.submit({}, 'billing-agent', 'sig-1')).id).toBe(first.id);
    expect((await app.submit({}, 'billing-agent', 'sig-2')).id).not.toBe(first.id);
    app.clock.advance(1);
    expect((await app.submit({}, 'billing-agent', 'sig-1')).id).not.toBe(first.id);
    expect(app.store.all()).toHaveLength(3);
  });

  it('without a request key, identical submissions are separate proposals', async () => {
    const app = await createMemoryApp();
    await app.submit();
    await app.submit();
    expect(app.store.all()).toHaveLength(2);
  });
});

describe('when the store refuses', () => {
  it('throws, and nothing follows: no card, no expiry, no metric', async () => {
    const app = await createMemoryApp();
    app.store.failNext(new Error('redis down'));
    await expect(app.submit()).rejects.toThrow('redis down');
    expect(app.jobs.notified).toEqual([]);
    expect(app.outbox.waiting()).toEqual([]);
    expect(app.metrics.submitted).toEqual([]);
    expect(app.events()).toEqual([]);
  });
});

describe('a revoked agent at intake', () => {
  it('is judged by when it signed: a request signed before the revocation is refused after the restore; created_at stays the arrival', async () => {
    const app = await createMemoryApp();
    const signedAt = app.clock.now();
    app.clock.advance(1_000);
    await revokeAgent(app.x, 'ops-agent', 'admin');
    app.clock.advance(1_000);
    await restoreAgent(app.x, 'ops-agent', 'admin');
    app.clock.advance(1_000);
    const input = app.input({ action: { tool: 'crm', operation: 'update', target: 'contact:1' } });
    await expect(submitProposal(app.deps, app.agent('ops-agent'), input, { signedAt })).rejects.toBeInstanceOf(AgentRevokedError);
    expect(app.events({ type: 'proposal_received' })).toEqual([]);
    // A signed time ahead of the clock counts as now.
    const { proposal } = await submitProposal(app.deps, app.agent('ops-agent'), input, { signedAt: app.clock.now() + 60_000 });
    expect(proposal.created_at).toBe(app.clock.now());
  });

  it("audits a revoked agent's refusals up to its share a minute, then only logs them; every one is refused", async () => {
    const app = await createMemoryApp();
    await revokeAgent(app.x, 'ops-agent', 'admin');
    await revokeAgent(app.x, 'billing-agent', 'admin');
    const refused = (agent: string) => expect(app.submit({ intent: 'again' }, agent)).rejects.toBeInstanceOf(AgentRevokedError);
    for (let i = 0; i < 45; i++) await refused('ops-agent');
    expect(app.events({ type: 'proposal_refused' })).toHaveLength(30);
    expect(app.logger.at('debug').filter((l) => l.msg === 'proposal of a revoked agent refused')).toHaveLength(15);
    // Another agent has its own share; the next minute, a new one.
    await refused('billing-agent');
    expect(app.events({ type: 'proposal_refused' })).toHaveLength(31);
    app.clock.advance(60_000);
    await refused('ops-agent');
    expect(app.events({ type: 'proposal_refused' })).toHaveLength(32);
  });
});
