import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createQueues, notifyJobId, startWorkers, type Queues, type Workers } from '../../adapters/bullmq/queues.ts';
import { createRedisAuditLog } from '../../adapters/redis/audit-log.ts';
import { createRedisCardRefStore } from '../../adapters/redis/card-ref-store.ts';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { createRedisProposalStore } from '../../adapters/redis/proposal-store.ts';
import { createSlackChannel } from '../../adapters/slack/slack-adapter.ts';
import { createSlackWebApi } from '../../adapters/slack/web-api.ts';
import { deliverNotification, recordCardFailure, type NotifyDeps } from '../../src/app/deliver-notification.ts';
import { iso, systemClock } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';
import type { Logger, NotifyJob } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { BASE_POLICY } from '../helpers/app.ts';
import { startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';
import { testRedis } from '../helpers/redis.ts';

// A card that cannot be posted after the notify queue's last attempt: the proposal stays
// pending, `card_failed` is audited, an error is logged, and the post gets a new round
// later. A 429's Retry-After is a floor for the next attempt (and for the later round); an
// error Slack will repeat (channel_not_found, …) is not retried: card_failed after one call.
// The real queue and worker run here with short attempts and delays (startTestApp uses
// production timings, which would take minutes).

const { redis, prefix } = testRedis();
const POLICY = BASE_POLICY.replace('finance: { console: true }', 'finance: { slack: C0FINANCE }');
/** Long enough that no later round of a permanent failure runs during these tests. */
const PERMANENT_LATER_MS = 120_000;

let fake: FakeSlack;
let queues: Queues;
let workers: Workers;
let deps: NotifyDeps;
const errors: { obj: object; msg: string | undefined }[] = [];
const connections: ReturnType<typeof createRedisConnection>[] = [];

const logger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (obj, msg) => void errors.push({ obj, msg }),
};

function proposal(intent: string): Proposal {
  const now = Date.now();
  return {
    id: newId('p', now),
    agent: 'billing-agent',
    idempotency_key: null,
    intent,
    action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_9', parameters: {} },
    context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 10, currency: 'EUR' } },
    decision: { effect: 'approve', risk: 'high', rule: 'payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 900_000 },
    status: 'pending',
    created_at: now,
    expires_at: now + 900_000,
    approvals: [],
    resolution: null,
    version: 1,
  };
}

beforeAll(async () => {
  fake = await startFakeSlack();
  const url = inject('redisUrl')!;
  const queueConnection = createRedisConnection({ url, role: 'queue' });
  const workerConnection = createRedisConnection({ url, role: 'worker' });
  connections.push(queueConnection, workerConnection);
  const config = {
    bullPrefix: redisKeys(prefix).bull,
    queueConnection,
    workerConnection,
    notifyAttempts: 2,
    notifyBackoffMs: 10,
    notifyRetryLaterMs: 300,
    notifyPermanentRetryLaterMs: PERMANENT_LATER_MS,
    sweepEveryMs: 60_000,
  };
  queues = createQueues(config);
  const slack = { channel: createSlackChannel(createSlackWebApi({ botToken: 'xoxb-t', apiUrl: fake.apiUrl })) };
  deps = {
    store: createRedisProposalStore(redis, { prefix }),
    audit: createRedisAuditLog(redis, { prefix }),
    policy: loadPolicy(POLICY, 'test-policy.yaml', { AGENT_BILLING_SECRET: 'a', AGENT_OPS_SECRET: 'b' }, POLICY_EXTENSIONS),
    clock: systemClock,
    proposalUrl: (id: string) => `http://countersign.test/console/proposals/${id}`,
    logger,
    cards: createRedisCardRefStore(redis, { prefix }),
    channels: new Map([['slack', slack.channel]]),
  };
  workers = await startWorkers(
    config,
    {
      notify: (job) => deliverNotification(deps, job),
      notifyGaveUp: (job, error) => recordCardFailure(deps, job, error),
      expire: async () => undefined,
      sweep: async () => undefined,
      repair: async () => undefined,
    },
    logger,
    queues,
  );
});

afterAll(async () => {
  await workers.close();
  await queues.close();
  await Promise.all(connections.map((c) => c.quit()));
  await fake.close();
});

async function auditOf(id: string) {
  return (await deps.audit.search({ words: [], proposalId: id, limit: 50 })).events;
}

describe('a card Slack will not take', () => {
  it('leaves the proposal pending, audits card_failed, logs an error, and posts it in a later round', async () => {
    const p = proposal('Refund while Slack is down');
    await deps.store.create(p, [{ type: 'proposal_received', at: iso(Date.now()), proposal_id: p.id, agent: p.agent, actor: 'agent:billing-agent', data: {} }]);
    const isThisCard = (args: Record<string, any>) => JSON.stringify(args).includes(p.id);
    fake.failNext('chat.postMessage', 1, { status: 503 }, isThisCard);
    // The last attempt is rate limited: the later round waits at least its Retry-After.
    fake.failNext('chat.postMessage', 1, { status: 429, retryAfter: 1 }, isThisCard);
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    await queues.notify([job]);

    const failed = await waitFor(async () => (await auditOf(p.id)).find((e) => e.type === 'card_failed'), { what: 'card_failed' });
    expect(failed.data).toMatchObject({ platform: 'slack', retry_later: true });
    expect(errors.some((e) => e.msg === 'chat notification failed' && JSON.stringify(e.obj).includes(p.id))).toBe(true);
    expect((await deps.store.get(p.id))?.status).toBe('pending');

    // The next round (300 ms later here, 10 minutes by default) finds Slack back.
    const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && isThisCard(c.args)), { what: 'late card' });
    expect(card.args['channel']).toBe('C0FINANCE');
    await waitFor(async () => (await deps.cards.list(p.id)).length === 1, { what: 'card ref' });
    const posted = fake.callsTo('chat.postMessage').filter((c) => isThisCard(c.args));
    expect(posted.map((c) => c.status)).toEqual([503, 429, 200]);
    expect(posted[2]!.at - posted[1]!.at).toBeGreaterThanOrEqual(1000);
    await waitFor(async () => (await auditOf(p.id)).some((e) => e.type === 'card_posted'), { what: 'card_posted' });
  });

  it('posts no card at all once the proposal is no longer pending', async () => {
    const p = proposal('Refund that gets cancelled before its card is out');
    await deps.store.create(p, []);
    const isThisCard = (args: Record<string, any>) => JSON.stringify(args).includes(p.id);
    const cancelled: Proposal = { ...p, status: 'cancelled', resolution: { status: 'cancelled', by: 'agent:billing-agent', reason: null, at: Date.now() }, version: 2 };
    expect(await deps.store.commit(cancelled, 1, [])).toBe('ok');
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    await queues.notify([job]);
    const state = await waitFor(async () => {
      const j = await queues.notifyQueue.getJob(notifyJobId(job));
      const s = j === undefined ? null : await j.getState();
      return s === 'completed' ? s : null;
    }, { what: 'job completed' });
    expect(state).toBe('completed');
    expect(fake.callsTo('chat.postMessage').filter((c) => isThisCard(c.args))).toEqual([]);
    expect((await auditOf(p.id)).some((e) => e.type === 'card_failed')).toBe(false);
  });

  it('waits at least Retry-After before it tries a rate-limited post again', async () => {
    const p = proposal('Refund while Slack rate-limits');
    await deps.store.create(p, []);
    const isThisCard = (args: Record<string, any>) => JSON.stringify(args).includes(p.id);
    fake.failNext('chat.postMessage', 1, { status: 429, retryAfter: 2 }, isThisCard);
    await queues.notify([{ kind: 'post', proposal_id: p.id, platform: 'slack' }]);

    await waitFor(async () => (await deps.cards.list(p.id)).length === 1, { what: 'card ref' });
    const posted = fake.callsTo('chat.postMessage').filter((c) => isThisCard(c.args));
    expect(posted.map((c) => c.status)).toEqual([429, 200]);
    // A bound on behaviour (Slack said "not before 2 s"), not on speed.
    expect(posted[1]!.at - posted[0]!.at).toBeGreaterThanOrEqual(2000);
    expect((await auditOf(p.id)).some((e) => e.type === 'card_failed')).toBe(false);
  });

  it('does not retry an error Slack will repeat: one call, then card_failed naming it; the proposal stays pending', async () => {
    const p = proposal('Refund to a channel that does not exist');
    await deps.store.create(p, []);
    const isThisCard = (args: Record<string, any>) => JSON.stringify(args).includes(p.id);
    // More failures than attempts, so a retry would show up as a second failed call.
    fake.failNext('chat.postMessage', 3, { error: 'channel_not_found' }, isThisCard);
    const job: NotifyJob = { kind: 'post', proposal_id: p.id, platform: 'slack' };
    await queues.notify([job]);

    const failed = await waitFor(async () => (await auditOf(p.id)).find((e) => e.type === 'card_failed'), { what: 'card_failed' });
    expect(fake.callsTo('chat.postMessage').filter((c) => isThisCard(c.args))).toHaveLength(1);
    expect(failed.data).toMatchObject({ platform: 'slack', permanent: true, retry_later: true });
    expect(String(failed.data['error'])).toContain('channel_not_found');
    expect((await deps.store.get(p.id))?.status).toBe('pending');
    // An admin may fix the channel: the post gets a later round, a slower one than for an outage.
    const later = await waitFor(async () => {
      const j = await queues.notifyQueue.getJob(notifyJobId(job));
      return j !== undefined && (await j.getState()) === 'delayed' ? j : null;
    }, { what: 'a later round' });
    expect(later.opts.delay).toBe(PERMANENT_LATER_MS);
    expect(later.attemptsMade).toBe(0);
  });
});
