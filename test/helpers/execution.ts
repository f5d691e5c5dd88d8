import { Queue, QueueEvents } from 'bullmq';
import { afterAll, inject } from 'vitest';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import type { TestAgent } from './agent.ts';

// Execution test helpers: a policy with executors pointing at local fake servers, handles on
// the app's execute queue (pause, resume, inject a duplicate delivery), and a status wait
// built on the long-poll API.

export function executionPolicy(opts: { executorUrl: string; callbackUrl?: string; timeout?: string }): string {
  return `
version: 1
agents:
  - id: billing-agent
    sponsors: [dana]
    secret_env: AGENT_BILLING_SECRET
  - id: ops-agent
    secret_env: AGENT_OPS_SECRET
${opts.callbackUrl === undefined ? '' : `    callback_url: ${opts.callbackUrl}`}
people:
  alice: { slack: U0ALICE }
  bob: { slack: U0BOB }
  dana: { slack: U0DANA }
groups:
  finance: [alice, bob, dana]
  admins: [alice]
channels:
  finance: { console: true }
executors:
  deploy: { url: ${opts.executorUrl}/execute, timeout: ${opts.timeout ?? '2s'} }
  quick: { url: ${opts.executorUrl}/execute, timeout: 300ms }
rules:
  - name: needs-people
    when: action.operation == "approve-me"
    effect: approve
    route: finance
    approvers: finance
  - name: everything-else
    when: "true"
    effect: allow
default: { effect: deny }
`;
}

/** A proposal body for `tool`; `target` scripts the fake executor's answer. */
export function actionBody(tool: string, target: string, operation = 'run'): Record<string, unknown> {
  return {
    intent: `Run ${operation} on ${target}`,
    action: { tool, operation, target, parameters: { n: 1, note: 'ünïcode €' } },
  };
}

export interface ExecuteQueueHandle {
  queue: Queue;
  events: QueueEvents;
  /** Delivers the proposal's execution again under another job id, as a stall or a second worker would. */
  redeliver(proposalId: string, jobId: string): Promise<void>;
  /** Resolves when the job has completed or failed. */
  finished(jobId: string): Promise<void>;
}

export async function executeQueue(prefix: string): Promise<ExecuteQueueHandle> {
  const url = inject('redisUrl');
  if (url === null) throw new Error('no test Redis');
  const connection = createRedisConnection({ url, role: 'worker' });
  const eventsConnection = createRedisConnection({ url, role: 'worker' });
  const queue = new Queue('execute', { connection, prefix: redisKeys(prefix).bull });
  const events = new QueueEvents('execute', { connection: eventsConnection, prefix: redisKeys(prefix).bull });
  await events.waitUntilReady();
  afterAll(async () => {
    await events.close();
    await queue.close();
    await connection.quit().catch(() => undefined);
    await eventsConnection.quit().catch(() => undefined);
  });
  return {
    queue,
    events,
    async redeliver(proposalId, jobId) {
      await queue.add('execute', { proposal_id: proposalId }, { jobId });
    },
    async finished(jobId) {
      const job = await queue.getJob(jobId);
      if (job === undefined) throw new Error(`no job ${jobId}`);
      await job.waitUntilFinished(events, 15_000).catch(() => undefined);
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed') throw new Error(`job ${jobId} is ${state}`);
    },
  };
}

/** Long-polls the proposal until `done(status)` holds; returns the last body. */
export async function waitForStatus(agent: TestAgent, id: string, done: (status: string) => boolean, timeoutMs = 15_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (let first = true; ; first = false) {
    // A plain read first: the long-poll waits for a change from the status it starts with.
    const res = await agent.request('GET', `/v1/proposals/${id}${first ? '' : '/wait?timeout=5'}`);
    if (res.status !== 200) throw new Error(`wait answered ${res.status}: ${JSON.stringify(res.body)}`);
    if (done(res.body.status)) return res.body;
    if (Date.now() > deadline) throw new Error(`proposal ${id} is still ${res.body.status}`);
  }
}
