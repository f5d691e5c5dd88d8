import { describe, expect, it } from 'vitest';
import { ExecutorUnreachableError } from '../../src/core/execution-ports.ts';
import { createMemoryCallbackSender } from '../helpers/memory/callback-sender.ts';
import { T0, createManualClock } from '../helpers/memory/clock.ts';
import { createMemoryExecutionQueue } from '../helpers/memory/execution-queue.ts';
import { createScriptedExecutor } from '../helpers/memory/executor.ts';
import { createMemoryJobScheduler } from '../helpers/memory/job-scheduler.ts';
import { createMemoryLogger } from '../helpers/memory/logger.ts';
import { createMemoryMetrics } from '../helpers/memory/metrics.ts';

// The fakes that only record or answer as scripted: what a use-case test relies on them for.

describe('manual clock', () => {
  it('stands still until moved, forward by advance, anywhere by set', () => {
    const clock = createManualClock();
    expect(clock.now()).toBe(T0);
    expect(clock.advance(1_500)).toBe(T0 + 1_500);
    expect(clock.now()).toBe(T0 + 1_500);
    clock.set(42);
    expect(clock.now()).toBe(42);
    expect(() => clock.advance(-1)).toThrow(/forward/);
  });
});

describe('memory JobScheduler', () => {
  it('records notify jobs in order, and fails the next call on demand without recording it', async () => {
    const jobs = createMemoryJobScheduler();
    await jobs.notify([{ kind: 'post', proposal_id: 'p_1', platform: 'slack' }, { kind: 'update', proposal_id: 'p_1', platform: 'teams', version: 2 }]);
    jobs.failNext(new Error('redis down'), 'notify');
    await expect(jobs.notify([{ kind: 'post', proposal_id: 'p_2', platform: 'slack' }])).rejects.toThrow('redis down');
    await jobs.notify([{ kind: 'post', proposal_id: 'p_3', platform: 'slack' }]);
    expect(jobs.notified.map((j) => `${j.kind} ${j.proposal_id} ${j.platform}`)).toEqual(['post p_1 slack', 'update p_1 teams', 'post p_3 slack']);
    jobs.failNext();
    await expect(jobs.notify([{ kind: 'post', proposal_id: 'p_4', platform: 'slack' }])).rejects.toThrow(/unavailable/);
    jobs.clear();
    expect(jobs.notified).toEqual([]);
  });
});

describe('memory ExecutionQueue', () => {
  it('keeps one execute job per proposal, removable only while it waits', async () => {
    const queue = createMemoryExecutionQueue();
    await queue.enqueueExecution('p_1');
    await queue.enqueueExecution('p_1');
    await queue.enqueueExecution('p_2');
    expect(queue.executions).toEqual(['p_1', 'p_2']);
    expect(queue.start('p_2')).toBe(true);
    expect(await queue.removeExecution('p_2')).toBe(false);
    expect(await queue.removeExecution('p_1')).toBe(true);
    expect(await queue.removeExecution('p_1')).toBe(false);
    expect(queue.waiting()).toEqual([]);
    await queue.enqueueExecution('p_1');
    expect(queue.executions).toEqual(['p_1', 'p_2', 'p_1']);
  });

  it('records token expiries and one callback per proposal and status; fails on demand', async () => {
    const queue = createMemoryExecutionQueue();
    await queue.scheduleTokenExpiry('p_1', T0);
    await queue.enqueueCallback('p_1', 'approved');
    await queue.enqueueCallback('p_1', 'approved');
    await queue.enqueueCallback('p_1', 'succeeded');
    queue.failNext(new Error('queue full'), 'enqueueCallback');
    await queue.enqueueExecution('p_1');
    await expect(queue.enqueueCallback('p_2', 'failed')).rejects.toThrow('queue full');
    expect(queue.tokenExpiries).toEqual([{ proposalId: 'p_1', at: T0 }]);
    expect(queue.callbacks).toEqual([{ proposalId: 'p_1', status: 'approved' }, { proposalId: 'p_1', status: 'succeeded' }]);
    expect(queue.executions).toEqual(['p_1']);
  });
});

const run = (proposal_id: string) => ({ proposal_id, agent: 'billing-agent', action: { tool: 'payments', operation: 'refund', target: 'ch_1', parameters: {} }, approvals: [] });
const body = (proposal_id: string) => JSON.stringify(run(proposal_id));
const spec = (timeout_ms: number) => ({ tool: 'payments', kind: 'webhook', timeout_ms, settings: { url: 'https://exec.example/run' } });

describe('scripted Executor', () => {
  it('answers each send as scripted, records token and body, and closes its connections', async () => {
    const executor = createScriptedExecutor();
    executor.answer({ kind: 'timeout', duration_ms: 10_000 }, (req) => ({ kind: 'response', status_code: 201, body: req.body.toUpperCase(), duration_ms: 3 }));
    const c1 = await executor.connect(spec(10_000));
    expect(await c1.send('tok.one', run('p_a'))).toEqual({ kind: 'timeout', duration_ms: 10_000 });
    expect(await c1.send('tok.two', run('p_b'))).toEqual({ kind: 'response', status_code: 201, body: body('p_b').toUpperCase(), duration_ms: 3 });
    expect(await c1.send('tok.three', run('p_c'))).toMatchObject({ kind: 'response', status_code: 200 });
    expect(executor.open()).toBe(1);
    c1.close();
    c1.close();
    expect(executor.open()).toBe(0);
    await expect(c1.send('tok.four', run('p_d'))).rejects.toThrow(/closed/);
    expect(executor.sent.map((s) => [s.url, s.token, s.body])).toEqual([
      ['https://exec.example/run', 'tok.one', body('p_a')],
      ['https://exec.example/run', 'tok.two', body('p_b')],
      ['https://exec.example/run', 'tok.three', body('p_c')],
    ]);
  });

  it('is unreachable on demand: connect throws ExecutorUnreachableError and nothing is sent', async () => {
    const executor = createScriptedExecutor();
    executor.unreachable(2);
    await expect(executor.connect(spec(1_000))).rejects.toBeInstanceOf(ExecutorUnreachableError);
    await expect(executor.connect(spec(1_000))).rejects.toBeInstanceOf(ExecutorUnreachableError);
    await expect(executor.connect(spec(1_000))).resolves.toBeDefined();
    executor.unreachable(Infinity);
    await expect(executor.connect(spec(1_000))).rejects.toBeInstanceOf(ExecutorUnreachableError);
    executor.reachable();
    await expect(executor.connect(spec(1_000))).resolves.toBeDefined();
    expect(executor.connects).toHaveLength(5);
    expect(executor.sent).toEqual([]);
  });
});

describe('memory CallbackSender', () => {
  it('records every post and answers the scripted statuses or errors, then 200', async () => {
    const sender = createMemoryCallbackSender();
    sender.answer(503, new Error('ECONNRESET'));
    const headers = { 'content-type': 'application/json' };
    expect(await sender.post('https://agent.example/cb', headers, '{"n":1}', 5_000)).toBe(503);
    await expect(sender.post('https://agent.example/cb', headers, '{"n":2}', 5_000)).rejects.toThrow('ECONNRESET');
    expect(await sender.post('https://agent.example/cb', headers, '{"n":3}', 5_000)).toBe(200);
    headers['content-type'] = 'changed';
    expect(sender.posts.map((p) => [p.body, p.headers['content-type'], p.timeoutMs])).toEqual([
      ['{"n":1}', 'application/json', 5_000],
      ['{"n":2}', 'application/json', 5_000],
      ['{"n":3}', 'application/json', 5_000],
    ]);
  });
});

describe('memory Logger and Metrics', () => {
  it('capture lines by level and observations in order', () => {
    const logger = createMemoryLogger();
    logger.info({ proposal: 'p_1' }, 'card posted');
    logger.warn({ err: 'x' }, 'card failed, retrying');
    logger.error({});
    expect(logger.at('warn')).toEqual([{ level: 'warn', obj: { err: 'x' }, msg: 'card failed, retrying' }]);
    expect(logger.said('retrying')).toBe(true);
    expect(logger.said('exploded')).toBe(false);
    expect(logger.lines.map((l) => l.level)).toEqual(['info', 'warn', 'error']);
    logger.clear();
    expect(logger.lines).toEqual([]);

    const metrics = createMemoryMetrics();
    metrics.proposalSubmitted('approve');
    metrics.decisionRecorded('approved', 12.5);
    expect(metrics.submitted).toEqual(['approve']);
    expect(metrics.decisions).toEqual([{ status: 'approved', seconds: 12.5 }]);
  });
});
