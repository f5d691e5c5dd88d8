import { describe, expect, it } from 'vitest';
import { replayPolicy } from '../../../src/app/replay-policy.ts';
import { auditEvent } from '../../../src/core/audit.ts';
import { loadPolicy } from '../../../src/core/policy/load.ts';
import { POLICY_EXTENSIONS } from '../../../src/wiring/platforms.ts';
import { AGENT_SECRETS, createMemoryApp, TEST_POLICY } from '../../helpers/memory/app.ts';
import { T0 } from '../../helpers/memory/clock.ts';

// "What would this policy have decided?": past proposals read back from the audit log and
// evaluated against a changed policy; only the decisions that move are listed.

// Payments up to any amount now need two approvals at critical risk; ops-agent is gone.
const CHANGED = TEST_POLICY.replace(
  '  - name: payments\n    when: action.tool == "payments"\n    effect: approve\n    risk: high\n',
  '  - name: payments\n    when: action.tool == "payments"\n    effect: approve\n    risk: critical\n    approvals: 2\n',
).replace(/  - id: ops-agent\n    secret_env: AGENT_OPS_SECRET\n/, '');
const changed = () => loadPolicy(CHANGED, 'changed.yaml', AGENT_SECRETS, POLICY_EXTENSIONS);

describe('replayPolicy', () => {
  it('lists the proposals whose decision would change, oldest first, naming what changes', async () => {
    const app = await createMemoryApp();
    const refund = await app.submit(); // payments: high, 1 approval
    app.clock.advance(1_000);
    const large = await app.submit({ context: { value: { amount: 25_000, currency: 'EUR' } } }); // large-payments: unchanged
    app.clock.advance(1_000);
    const tag = await app.submit({ action: { tool: 'crm', operation: 'tag', target: 'c' }, context: { reversible: true } });
    app.clock.advance(1_000);
    const refund2 = await app.submit({ intent: 'Refund invoice 4712' });
    await app.vote(refund.id, 'alice'); // what happened since does not matter

    const r = await replayPolicy(app.audit, changed(), { since: T0 });
    expect(r).toMatchObject({ replayed: 4, skipped: 0, unchanged: 2, unknown_agents: {} });
    expect(r.changes.map((c) => c.proposal_id)).toEqual([refund.id, refund2.id]);
    expect(r.changes[0]).toEqual(
      {
        proposal_id: refund.id,
        at: new Date(T0).toISOString(),
        agent: 'billing-agent',
        action: refund.action,
        before: { effect: 'approve', risk: 'high', rule: 'payments', route: 'finance', approvers: 'finance', approvals_required: 1 },
        after: { effect: 'approve', risk: 'critical', rule: 'payments', route: 'finance', approvers: 'finance', approvals_required: 2 },
        changed: ['risk', 'approvals_required'],
      },
    );
    expect(r.changes.map((c) => c.proposal_id)).not.toContain(large.id);
    expect(r.changes.map((c) => c.proposal_id)).not.toContain(tag.id);
  });

  it('shows a rule that now needs step-up as a change, and the step-up in both directions', async () => {
    const app = await createMemoryApp();
    const refund = await app.submit();
    const stepUp = TEST_POLICY.replace('    risk: high\n    route: finance\n', '    risk: high\n    step_up: true\n    route: finance\n');
    const r = await replayPolicy(app.audit, loadPolicy(stepUp, 'step-up.yaml', AGENT_SECRETS, POLICY_EXTENSIONS), { since: T0 });
    expect(r.changes).toMatchObject([{ proposal_id: refund.id, changed: ['step_up'], after: { rule: 'payments', step_up: true } }]);
    expect(r.changes[0]?.before).not.toHaveProperty('step_up');

    const later = await createMemoryApp({ policy: stepUp });
    const again = await later.submit();
    const back = await replayPolicy(later.audit, later.policy, { since: T0 });
    expect(back.changes).toEqual([]);
    expect((await replayPolicy(later.audit, changed(), { since: T0 })).changes).toMatchObject([{ proposal_id: again.id, before: { step_up: true }, changed: expect.arrayContaining(['step_up']) }]);
  });

  it('replayed against the same policy, nothing changes', async () => {
    const app = await createMemoryApp();
    await app.submit();
    await app.submit({ action: { tool: 'postgres', operation: 'drop', target: 'db' } });
    const r = await replayPolicy(app.audit, app.policy, { since: T0 });
    expect(r).toEqual({ replayed: 2, skipped: 0, changes: [], unchanged: 2, unknown_agents: {} });
  });

  it('counts the proposals of agents the new policy does not know by agent, without listing them as changes', async () => {
    const app = await createMemoryApp();
    await app.submit({ action: { tool: 'deploy', operation: 'ship', target: 'api' } }, 'ops-agent');
    await app.submit({ intent: 'Ship again', action: { tool: 'deploy', operation: 'ship', target: 'api' } }, 'ops-agent');
    const refund = await app.submit();
    const r = await replayPolicy(app.audit, changed(), { since: T0 });
    expect(r).toMatchObject({ replayed: 3, unchanged: 0, unknown_agents: { 'ops-agent': 2 } });
    expect(r.changes.map((c) => c.proposal_id)).toEqual([refund.id]);
  });

  it('reads only the range it is given', async () => {
    const app = await createMemoryApp();
    await app.submit();
    app.clock.advance(60_000);
    const middle = await app.submit();
    app.clock.advance(60_000);
    await app.submit();
    const r = await replayPolicy(app.audit, changed(), { since: T0 + 30_000, until: T0 + 90_000 });
    expect(r.replayed).toBe(1);
    expect(r.changes.map((c) => c.proposal_id)).toEqual([middle.id]);
  });

  it('skips a proposal whose recorded request cannot be read back, and says when no decision was recorded', async () => {
    const app = await createMemoryApp();
    const edited = await app.submit();
    const received = app.events({ proposal: edited.id, type: 'proposal_received' })[0]!;
    await app.audit.tamper.editData(received.seq, { ...received.data, action: { tool: 'payments' } });
    const at = new Date(app.clock.now()).toISOString();
    await app.audit.append([
      auditEvent('proposal_received', { at, proposal_id: 'p_orphan', agent: 'billing-agent', actor: 'agent:billing-agent' }, {
        idempotency_key: null,
        intent: 'Refund',
        action: { tool: 'payments', operation: 'refund', target: 't', parameters: {} },
        context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
      }),
    ]);
    const r = await replayPolicy(app.audit, app.policy, { since: T0 });
    expect(r).toMatchObject({ replayed: 1, skipped: 1 });
    expect(r.changes).toMatchObject([{ proposal_id: 'p_orphan', before: null, changed: ['(no recorded decision)'] }]);
  });

  it('reports its progress by events scanned, across pages', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    const [received, decided] = app.events({ proposal: p.id });
    // 259 more proposals, written straight to the log: 520 events, two pages.
    for (let i = 0; i < 259; i++) {
      const id = `p_copy${i}`;
      await app.audit.append([received!, decided!].map(({ type, at, agent, actor, data }) => ({ type, at, proposal_id: id, agent, actor, data })));
    }
    const progress: number[] = [];
    const r = await replayPolicy(app.audit, app.policy, { since: T0 }, (n) => progress.push(n));
    expect(progress).toEqual([500, 520]);
    expect(r).toEqual({ replayed: 260, skipped: 0, changes: [], unchanged: 260, unknown_agents: {} });
  });
});
