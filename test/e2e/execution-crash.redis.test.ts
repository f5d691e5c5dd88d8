import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { testAgent } from '../helpers/agent.ts';
import { actionBody, executeQueue, executionPolicy, waitForStatus, type ExecuteQueueHandle } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';
import { exited, startApp } from '../helpers/app-child.ts';

// A worker process killed (SIGKILL) in the middle of an execution. The executor has the
// request; whether it acted is unknown. After a restart nothing runs twice and the proposal
// ends in a definite state: failed, outcome unknown, reason "interrupted" (settled by the
// execution sweep once the claim's deadline, executor timeout + lease margin, has passed;
// BullMQ's re-delivery of the stalled job finds the claim and does not run it again).

describe('a worker killed mid-execution', () => {
  const redisUrl = inject('redisUrl');
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  const redis = redisUrl === null ? null : createRedisConnection({ url: redisUrl, role: 'command' });
  let executor: FakeHttpServer;
  let queue: ExecuteQueueHandle;
  let victim: ChildProcess | null = null;
  beforeAll(async () => {
    executor = await startFakeHttpServer();
    executor.respond = () => {
      // The executor has the request: kill the worker before it hears back.
      victim?.kill('SIGKILL');
      return 'hold';
    };
    queue = await executeQueue(prefix);
  });
  afterAll(async () => {
    if (redis === null) return;
    const keys = await (redis as Redis).keys(`{${prefix}}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('is not re-run after a restart, and the proposal ends failed with outcome unknown', async () => {
    if (redisUrl === null || redis === null) throw new Error('no test Redis');
    const dir = mkdtempSync(join(tmpdir(), 'countersign-crash-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, executionPolicy({ executorUrl: executor.url, timeout: '1s' }));
    const secret = randomBytes(24).toString('hex');
    const env = {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      COUNTERSIGN_PREFIX: prefix,
      COUNTERSIGN_DATA_DIR: dir,
      POLICY_FILE: policyFile,
      AGENT_BILLING_SECRET: randomBytes(24).toString('hex'),
      AGENT_OPS_SECRET: secret,
      LOG_LEVEL: 'silent',
      COUNTERSIGN_TEST_EXECUTION: JSON.stringify({ leaseMarginMs: 200, lockDurationMs: 1000, sweepEveryMs: 250 }),
    };

    const first = await startApp(env);
    victim = first.child;
    const submitted = await testAgent(first.url, 'ops-agent', secret).propose(actionBody('deploy', 'crash-1'));
    expect(submitted.body.status).toBe('approved');
    const id = submitted.body.id as string;
    await executor.waitFor(1);
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    const stored = JSON.parse((await redis.hget(`{${prefix}}:proposal:${id}`, 'doc'))!) as { status: string };
    expect(stored.status).toBe('executing');

    const second = await startApp(env);
    const agent = testAgent(second.url, 'ops-agent', secret);
    const done = await waitForStatus(agent, id, (s) => s !== 'executing');
    expect(done.status).toBe('failed');
    expect(done.execution).toMatchObject({ mode: 'executor', outcome: 'unknown', reason: 'interrupted', status_code: null });
    // BullMQ re-delivers the stalled job to the new process; it finds the claim and stops.
    await queue.finished(id);
    expect(executor.requests).toHaveLength(1);

    const audit = await fetch(`${second.url}/v1/audit?proposal_id=${id}&limit=50`, {
      headers: (await import('../../src/core/signing.ts')).signedHeaders('ops-agent', secret, { method: 'GET', path: `/v1/audit?proposal_id=${id}&limit=50`, body: '' }, Date.now()),
    }).then((r) => r.json() as Promise<{ events: { type: string; data: any }[] }>);
    const types = audit.events.map((e) => e.type).reverse();
    expect(types.filter((t) => t === 'execution_started')).toHaveLength(1);
    expect(audit.events.find((e) => e.type === 'execution_finished')!.data).toMatchObject({ status: 'failed', outcome: 'unknown', reason: 'interrupted' });

    second.child.kill('SIGTERM');
    await exited(second.child);
  });
});
