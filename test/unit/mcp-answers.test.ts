import { describe, expect, it } from 'vitest';
import { iso } from '../../src/core/clock.ts';
import { finishExecution, startInGateway, type Execution, type ExecutionResult } from '../../src/core/execution.ts';
import { MAX_KEPT_RESULT_CHARS, answerFor, keepable, taskOf, type ToolAnswer } from '../../src/core/mcp-answers.ts';
import type { Proposal, Status } from '../../src/core/proposal.ts';

// What the agent's MCP client is told about a call, and how a gateway call is recorded: the
// words an agent (and its model) acts on, so each status must say the right thing.

const NOW = 1_800_000_000_000;
const ID = 'p_01m860000000000000000000aa';

function proposal(overrides: Partial<Proposal> = {}): Proposal {
  return {
    id: ID,
    agent: 'agent-a',
    idempotency_key: null,
    intent: 'refund a duplicate',
    action: { tool: 'payments', operation: 'refund', target: 'ch_1', parameters: { charge: 'ch_1' } },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 0, currency: '' } },
    decision: { effect: 'approve', risk: 'medium', rule: 'refunds', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 600_000 },
    status: 'pending',
    created_at: NOW,
    expires_at: NOW + 600_000,
    approvals: [],
    resolution: null,
    version: 1,
    ...overrides,
  };
}

function execution(overrides: Partial<Execution> = {}): Execution {
  return {
    mode: 'executor',
    token_id: 't_1',
    token_expires_at: NOW + 60_000,
    started_at: NOW + 1000,
    finished_at: NOW + 2000,
    status_code: null,
    outcome: 'failed',
    reason: null,
    duration_ms: 1000,
    response_excerpt: null,
    ...overrides,
  };
}

const allowed = () =>
  proposal({
    status: 'approved',
    expires_at: null,
    decision: { effect: 'allow', risk: 'low', rule: 'reads', reasons: [], route: null, approvers: null, approvals_required: 0, ttl_ms: 0 },
    resolution: { status: 'approved', by: null, reason: null, at: NOW },
  });

function textOf(answer: ToolAnswer | Record<string, unknown>): string {
  const content = (answer as ToolAnswer).content;
  expect(content).toHaveLength(1);
  return content[0]!.text;
}

describe('answerFor', () => {
  it('tells a pending call to call again, with the proposal and when it expires; an error so the model does not read it as done', () => {
    const a = answerFor(proposal(), null) as ToolAnswer;
    expect(a.isError).toBe(true);
    expect(textOf(a)).toBe(`awaiting approval (proposal ${ID}, expires ${iso(NOW + 600_000)}): call again with the same arguments to continue`);
    expect(a._meta).toEqual({ 'countersign/proposal': { id: ID, status: 'pending' } });
  });

  it('tells an approved (or running) call that it is running, even with a result kept', () => {
    for (const status of ['approved', 'executing'] as const) {
      const a = answerFor(proposal({ status }), { content: [{ type: 'text', text: 'early' }] }) as ToolAnswer;
      expect(textOf(a)).toMatch(new RegExp(`^approved, running \\(proposal ${ID}.*call again with the same arguments`));
      expect(a.isError).toBe(true);
    }
  });

  it('names the rule and its reasons when the policy denied the call', () => {
    const rejected = proposal({ status: 'rejected', expires_at: null, decision: { ...proposal().decision, effect: 'deny', rule: 'no-refunds-friday', reasons: ['refunds are frozen', 'ask finance'] } });
    const a = answerFor(rejected, null) as ToolAnswer;
    expect(textOf(a)).toBe(`denied by policy (rule no-refunds-friday): refunds are frozen; ask finance (proposal ${ID})`);
    expect(a.isError).toBe(true);
    expect(textOf(answerFor({ ...rejected, decision: { ...rejected.decision, reasons: [] } }, null))).toBe(`denied by policy (rule no-refunds-friday) (proposal ${ID})`);
  });

  it('says who denied it and why', () => {
    const denied = proposal({ status: 'denied', resolution: { status: 'denied', by: 'alice', reason: 'not this month', at: NOW + 5000 } });
    expect(textOf(answerFor(denied, null))).toBe(`denied by alice: not this month (proposal ${ID})`);
    expect(textOf(answerFor({ ...denied, resolution: { status: 'denied', by: 'bob', reason: null, at: NOW } }, null))).toBe(`denied by bob (proposal ${ID})`);
    expect((answerFor(denied, null) as ToolAnswer).isError).toBe(true);
  });

  it('says an expired call expired and a cancelled one was cancelled (before or after approval)', () => {
    expect(textOf(answerFor(proposal({ status: 'expired' }), null))).toBe(`expired: nobody decided before the deadline (proposal ${ID})`);
    expect(textOf(answerFor(proposal({ status: 'cancelled' }), null))).toBe(`cancelled before a decision (proposal ${ID})`);
    const afterApproval = proposal({ status: 'cancelled', execution: execution({ outcome: 'not_run', reason: 'cancelled' }) });
    expect(textOf(answerFor(afterApproval, null))).toBe(`cancelled after approval, before it ran (proposal ${ID})`);
  });

  it('warns that an unknown outcome was sent and is not retried', () => {
    const a = answerFor(proposal({ status: 'failed', execution: execution({ outcome: 'unknown', reason: 'timeout' }) }), null) as ToolAnswer;
    expect(a.isError).toBe(true);
    expect(textOf(a)).toMatch(/^outcome unknown \(timeout\): the call was sent to the tool but no answer came back; it is not retried\. Check before calling again/);
    expect(textOf(a)).toContain(ID);
  });

  it('says an approved call that did not run was not run, with why', () => {
    const a = answerFor(proposal({ status: 'failed', execution: execution({ outcome: 'not_run', reason: 'token_expired' }) }), null);
    expect(textOf(a)).toBe(`approved, but not run (token_expired) (proposal ${ID})`);
  });

  it('passes on what a failed tool said, from the redacted excerpt', () => {
    const failed = proposal({ status: 'failed', execution: execution({ outcome: 'failed', reason: 'mcp_error_-32602', response_excerpt: 'amount: expected number' }) });
    expect(textOf(answerFor(failed, null))).toBe(`the tool failed (mcp_error_-32602): amount: expected number (proposal ${ID})`);
    expect(textOf(answerFor({ ...failed, execution: execution({ outcome: 'failed', reason: 'tool_error', response_excerpt: null }) }, null))).toBe(
      `the tool failed (tool_error) (proposal ${ID})`,
    );
  });

  it("returns a kept result as the upstream sent it (its own isError too), and says when it is no longer kept", () => {
    const kept = { content: [{ type: 'text', text: 'refunded' }], structuredContent: { id: 're_1' }, isError: false };
    const succeeded = proposal({ status: 'succeeded', execution: execution({ outcome: 'succeeded' }) });
    expect(answerFor(succeeded, kept)).toBe(kept);
    const toolSaidNo = { content: [{ type: 'text', text: 'card declined' }], isError: true };
    expect(answerFor(proposal({ status: 'failed', execution: execution({ reason: 'tool_error' }) }), toolSaidNo)).toBe(toolSaidNo);

    const gone = answerFor(succeeded, null) as ToolAnswer;
    expect(gone.isError).toBe(false);
    expect(textOf(gone)).toBe(`succeeded (proposal ${ID}); the result is no longer kept`);
    expect(gone._meta).toEqual({ 'countersign/proposal': { id: ID, status: 'succeeded' } });
  });
});

describe('taskOf', () => {
  const TTL = 3_600_000;
  const POLL = 2000;

  it.each<[Status, string]>([
    ['pending', 'working'],
    ['approved', 'working'],
    ['executing', 'working'],
    ['succeeded', 'completed'],
    ['cancelled', 'cancelled'],
    ['failed', 'failed'],
    ['denied', 'failed'],
    ['rejected', 'failed'],
    ['expired', 'failed'],
  ])('maps %s to %s, with a poll interval only while working', (status, task) => {
    const t = taskOf(proposal({ status }), TTL, NOW + 10_000, POLL);
    expect(t.status).toBe(task);
    expect(t.taskId).toBe(ID);
    expect(t.ttl).toBe(TTL);
    expect(t.createdAt).toBe(iso(NOW));
    if (task === 'working') expect(t.pollInterval).toBe(POLL);
    else expect('pollInterval' in t).toBe(false);
  });

  it('says what the task waits for or how it ended', () => {
    const at = (p: Proposal) => taskOf(p, TTL, NOW + 10_000, POLL).statusMessage;
    expect(at(proposal())).toBe(`awaiting approval until ${iso(NOW + 600_000)}`);
    expect(at(proposal({ expires_at: null }))).toBe('awaiting approval');
    expect(at(proposal({ status: 'approved' }))).toBe('approved; running');
    expect(at(proposal({ status: 'executing' }))).toBe('approved; running');
    expect(at(proposal({ status: 'succeeded' }))).toBe('succeeded');
    expect(at(proposal({ status: 'failed', execution: execution({ reason: 'timeout' }) }))).toBe('failed: timeout');
    expect(at(proposal({ status: 'denied', resolution: { status: 'denied', by: 'alice', reason: 'no', at: NOW } }))).toBe('denied by alice: no');
    expect(at(proposal({ status: 'expired' }))).toBe('expired: nobody decided before the deadline');
  });

  it('is last updated at the latest thing that happened to it, never later than now', () => {
    const finished = proposal({ status: 'succeeded', resolution: { status: 'approved', by: 'alice', reason: null, at: NOW + 1000 }, execution: execution({ finished_at: NOW + 9000 }) });
    expect(taskOf(finished, TTL, NOW + 60_000, POLL).lastUpdatedAt).toBe(iso(NOW + 9000));
    expect(taskOf(proposal({ status: 'expired' }), TTL, NOW + 700_000, POLL).lastUpdatedAt).toBe(iso(NOW + 600_000));
    expect(taskOf(proposal({ status: 'expired' }), TTL, NOW + 5000, POLL).lastUpdatedAt).toBe(iso(NOW + 5000));
  });
});

describe('keepable', () => {
  it('keeps a result up to the limit as it is', () => {
    const small = { content: [{ type: 'text', text: 'ok' }], isError: false };
    expect(keepable(small)).toBe(small);
    const pad = JSON.stringify({ content: [{ type: 'text', text: '' }] }).length;
    const atLimit = { content: [{ type: 'text', text: 'x'.repeat(MAX_KEPT_RESULT_CHARS - pad) }] };
    expect(JSON.stringify(atLimit).length).toBe(MAX_KEPT_RESULT_CHARS);
    expect(keepable(atLimit)).toBe(atLimit);
  });

  it('replaces a larger one with a text saying so, keeping whether the tool failed', () => {
    const pad = JSON.stringify({ content: [{ type: 'text', text: '' }], isError: true }).length;
    const over = { content: [{ type: 'text', text: 'x'.repeat(MAX_KEPT_RESULT_CHARS - pad + 1) }], isError: true };
    const kept = keepable(over) as unknown as ToolAnswer;
    expect(kept.isError).toBe(true);
    expect(kept.content).toHaveLength(1);
    expect(kept.content[0]!.text).toBe(`the tool ran, but its result (${MAX_KEPT_RESULT_CHARS + 1} characters) is larger than countersign keeps for pick-up (${MAX_KEPT_RESULT_CHARS})`);
    const fine = keepable({ ...over, isError: false }) as unknown as ToolAnswer;
    expect(fine.isError).toBe(false);
    expect(JSON.stringify(fine).length).toBeLessThan(1000);
  });
});

describe('a call run in the gateway', () => {
  it('starts only an approved call the policy allowed, not yet run: executing, mode gateway, one event', () => {
    const p = allowed();
    const s = startInGateway(p, 't_grant', NOW + 30_000, NOW);
    expect(s.outcome).toEqual({ started: true });
    expect(s.next?.status).toBe('executing');
    expect(s.next?.execution).toEqual({
      mode: 'gateway',
      token_id: 't_grant',
      token_expires_at: NOW + 30_000,
      started_at: NOW,
      finished_at: null,
      status_code: null,
      outcome: null,
      reason: null,
      duration_ms: null,
      response_excerpt: null,
    });
    expect(s.events).toHaveLength(1);
    expect(s.events[0]).toMatchObject({ type: 'execution_started', proposal_id: ID, agent: 'agent-a', actor: 'system', data: { mode: 'gateway', jti: 't_grant' } });
  });

  it('starts nothing that people approved, that is not approved, or that already has an execution', () => {
    const refused = [
      { ...allowed(), decision: { ...allowed().decision, effect: 'approve' as const } },
      { ...allowed(), status: 'pending' as const },
      { ...allowed(), status: 'rejected' as const, decision: { ...allowed().decision, effect: 'deny' as const } },
      { ...allowed(), execution: execution({ outcome: null, finished_at: null }) },
    ];
    for (const p of refused) {
      const s = startInGateway(p, 't_grant', NOW + 30_000, NOW);
      expect(s).toEqual({ outcome: { started: false }, next: null, events: [] });
    }
  });

  const running = () => startInGateway(allowed(), 't_grant', NOW + 30_000, NOW).next!;

  it('ends succeeded on a tool result, failed / tool_error when the tool said it failed; the excerpt redacted', () => {
    const ok = finishExecution(running(), { kind: 'tool_result', is_error: false, text: 'refunded re_1', duration_ms: 120 }, 'system', NOW + 120);
    expect(ok.outcome).toEqual({ finished: true, status: 'succeeded' });
    expect(ok.next?.execution).toMatchObject({ outcome: 'succeeded', reason: null, duration_ms: 120, finished_at: NOW + 120, response_excerpt: 'refunded re_1' });

    const secret = 'sk_live_0123456789abcdefghijklmnopqrstuv';
    const bad = finishExecution(running(), { kind: 'tool_result', is_error: true, text: `declined; Authorization: Bearer ${secret}`, duration_ms: 80 }, 'system', NOW + 80);
    expect(bad.outcome).toEqual({ finished: true, status: 'failed' });
    expect(bad.next?.execution).toMatchObject({ outcome: 'failed', reason: 'tool_error', status_code: null });
    expect(bad.next?.execution?.response_excerpt).toMatch(/^declined; /);
    expect(JSON.stringify(bad.next)).not.toContain(secret);
    expect(JSON.stringify(bad.events)).not.toContain(secret);
    expect(bad.events[0]).toMatchObject({ type: 'execution_finished', data: { status: 'failed', outcome: 'failed', reason: 'tool_error', http_status: null } });
    // What the agent is told when the result was not kept.
    expect(textOf(answerFor(bad.next!, null))).toMatch(/^the tool failed \(tool_error\): declined; /);
  });

  it('ends failed / mcp_error_<code> on a JSON-RPC error, its message redacted', () => {
    const result: ExecutionResult = { kind: 'tool_error', code: -32602, message: 'invalid params: password=hunter2', duration_ms: 15 };
    const s = finishExecution(running(), result, 'system', NOW + 15);
    expect(s.outcome).toEqual({ finished: true, status: 'failed' });
    expect(s.next?.execution).toMatchObject({ outcome: 'failed', reason: 'mcp_error_-32602', duration_ms: 15 });
    expect(s.next?.execution?.response_excerpt).toContain('invalid params');
    expect(JSON.stringify(s)).not.toContain('hunter2');
    expect(textOf(answerFor(s.next!, null))).toMatch(/^the tool failed \(mcp_error_-32602\): invalid params/);
  });

  it('cuts a long tool text to the excerpt length, and finishes once', () => {
    const s = finishExecution(running(), { kind: 'tool_result', is_error: false, text: 'ok '.repeat(1000), duration_ms: 5 }, 'system', NOW + 5);
    expect(s.next?.execution?.response_excerpt?.length).toBe(500);
    const again = finishExecution(s.next!, { kind: 'tool_result', is_error: true, text: 'late', duration_ms: 5 }, 'system', NOW + 6);
    expect(again).toEqual({ outcome: { finished: false, status: 'succeeded' }, next: null, events: [] });
  });
});
