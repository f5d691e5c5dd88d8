import { describe, expect, it } from 'vitest';
import { decideBatch, decideSelection, pendingBatches } from '../../../src/app/batch-decisions.ts';
import type { AppDeps } from '../../../src/app/deps.ts';
import { ValidationError } from '../../../src/core/errors.ts';
import type { Proposal } from '../../../src/core/proposal.ts';
import { createMemoryApp } from '../../helpers/memory/app.ts';

// Batches on the in-memory fakes: what is offered to whom, and what holds between the check of a
// request and each vote (a proposal decided again meanwhile is not voted on).

const large = { context: { value: { amount: 25_000, currency: 'EUR' } } }; // large-payments: critical
const refund = (n: number) => ({ action: { tool: 'payments', operation: 'refund', target: `cus_${n}` } }); // payments: high

describe('batch decisions', () => {
  it('offers groups by agent and rule to an approver only, never a critical rule, and never to the sponsor', async () => {
    const app = await createMemoryApp();
    const a = await app.submit(refund(1));
    const b = await app.submit(refund(2));
    await app.submit(large);
    const groups = await pendingBatches(app.deps, 'alice', 'slack');
    expect(groups.map((g) => ({ agent: g.agent, rule: g.rule, ids: g.proposals.map((p) => p.id).sort() }))).toEqual([{ agent: 'billing-agent', rule: 'payments', ids: [a.id, b.id].sort() }]);
    expect(await pendingBatches(app.deps, 'dana', 'slack')).toEqual([]);
    expect(await pendingBatches(app.deps, 'erin', 'slack')).toEqual([]);
    // Teams is not on the finance route: nothing there to decide.
    expect(await pendingBatches(app.deps, 'alice', 'teams')).toEqual([]);
  });

  it('refuses a whole request before any vote: too many ids, a bad id, another rule, a deny without its reason', async () => {
    const app = await createMemoryApp();
    const a = await app.submit(refund(1));
    const c = await app.submit(large);
    const base = { person: 'alice', platform: 'slack' as const, vote: 'approve' as const, agent: 'billing-agent', rule: 'payments' };
    const refused = async (req: Parameters<typeof decideBatch>[1]) => (await decideBatch(app.deps, req).catch((e: unknown) => e)) as ValidationError;
    const many = Array.from({ length: 51 }, (_, i) => `p_${String(i).padStart(26, '0')}`);
    expect((await refused({ ...base, proposalIds: many })).issues[0]).toMatchObject({ path: 'proposalIds', message: 'at most 50 proposals at once (got 51)' });
    expect((await refused({ ...base, proposalIds: ['p_../x'] })).issues[0]).toMatchObject({ path: 'proposalIds[0]' });
    expect((await refused({ ...base, proposalIds: [a.id, c.id] })).issues[0]).toMatchObject({ path: 'proposalIds[1]' });
    expect((await refused({ ...base, vote: 'deny', proposalIds: [a.id] })).issues[0]).toMatchObject({ path: 'reason' });
    expect((await decideSelection(app.deps, { ...base, proposalIds: [c.id] }).catch((e: unknown) => e)) as ValidationError).toBeInstanceOf(ValidationError);
    for (const id of [a.id, c.id]) expect(app.events({ proposal: id }).filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused')).toEqual([]);
  });

  it('does not vote on a proposal decided again (now critical) between the check and its vote', async () => {
    const app = await createMemoryApp();
    const a = await app.submit(refund(1));
    const b = await app.submit(refund(2));
    // The store answers the batch's check with the proposal as it was, then b changes: its
    // rule made stricter (as an edit that is decided again would).
    let reads = 0;
    const store = app.deps.store;
    const deps: AppDeps = {
      ...app.deps,
      store: Object.assign(Object.create(store) as typeof store, {
        async get(id: string): Promise<Proposal | null> {
          if (id === b.id && ++reads === 2) {
            const now = (await store.get(id))!;
            await store.commit({ ...now, decision: { ...now.decision, risk: 'critical', rule: 'large-payments', approvals_required: 2 }, version: now.version + 1 }, now.version, []);
          }
          return store.get(id);
        },
      }),
    };
    const result = await decideBatch(deps, { person: 'alice', platform: 'slack', vote: 'approve', agent: 'billing-agent', rule: 'payments', proposalIds: [a.id, b.id] });
    expect(result).toMatchObject({ decided: [a.id], skipped: [{ id: b.id, why: 'changed' }], refused: [] });
    expect(app.events({ proposal: b.id, type: 'approval_recorded' })).toEqual([]);
    expect((await store.get(b.id))!.approvals).toEqual([]);
    expect(app.events({ proposal: a.id, type: 'approval_recorded' })[0]!.data).toMatchObject({ batch: result.batch });
  });
});
