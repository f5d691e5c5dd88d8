import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CardModel, CardRef, ThreadReply } from '../../src/core/card.ts';
import type { ChatChannel } from '../../src/core/ports.ts';
import { recordDecision } from '../../src/app/record-decision.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { sign } from '../../src/core/signing.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';

// The notify queue against a scripted chat channel: it fails when told to, records every
// call, and lets a test wait for a call instead of sleeping.

type Call = { op: 'post' | 'update' | 'reply'; proposalId: string; card?: CardModel; reply?: ThreadReply };

function scriptedChannel() {
  const calls: Call[] = [];
  const failures = new Map<string, number>(); // intent -> posts still to fail (set before proposing)
  const waiters: (() => void)[] = [];
  const record = (call: Call) => {
    calls.push(call);
    waiters.splice(0).forEach((w) => w());
  };
  const channel: ChatChannel = {
    platform: 'console',
    async postCard(target, card): Promise<CardRef> {
      const left = failures.get(card.intent) ?? 0;
      if (left !== 0) {
        failures.set(card.intent, left - 1);
        record({ op: 'post', proposalId: card.proposalId });
        throw new Error('chat platform answered 503');
      }
      record({ op: 'post', proposalId: card.proposalId, card });
      return { platform: 'console', conversation: target, message: `m-${card.proposalId}` };
    },
    async updateCard(ref, card) {
      record({ op: 'update', proposalId: card.proposalId, card });
    },
    async replyInThread(_ref, reply) {
      record({ op: 'reply', proposalId: reply.proposalId, reply });
    },
  };
  async function until(predicate: (calls: Call[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(calls)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; calls so far: ${JSON.stringify(calls.map((c) => [c.op, c.proposalId]))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }
  return { channel, calls, failures, until };
}

/** Polls a condition that another process (a queue worker) makes true. */
async function eventually<T>(probe: () => Promise<T | null>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const chat = scriptedChannel();
const logLines: string[] = [];
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    env: { LOG_LEVEL: 'debug' },
    start: {
      chatChannels: { console: chat.channel },
      tuning: { notifyAttempts: 3, notifyBackoffMs: 20 },
      logStream: new Writable({
        write(chunk, _enc, done) {
          logLines.push(String(chunk));
          done();
        },
      }),
    },
  });
});

const of = (id: string) => chat.calls.filter((c) => c.proposalId === id);

describe('notify queue', () => {
  it('posts the card to the route, updates it and replies in its thread as people decide', async () => {
    const { body } = await app.billing.propose(proposalBody({ context: { value: { amount: 20_000, currency: 'EUR' } } }));
    await chat.until(() => of(body.id).some((c) => c.op === 'post'));
    const posted = of(body.id).find((c) => c.op === 'post')!.card!;
    expect(posted).toMatchObject({ proposalId: body.id, agent: 'billing-agent', risk: 'critical', rule: 'large-payments', approvalsRequired: 2, actionable: true });

    await recordDecision(app.running.deps, { proposalId: body.id, person: 'alice', platform: 'slack', vote: 'approve' });
    await chat.until(() => of(body.id).some((c) => c.op === 'reply' && c.reply?.kind === 'approval'));
    await recordDecision(app.running.deps, { proposalId: body.id, person: 'bob', platform: 'teams', vote: 'approve' });
    await chat.until(() => of(body.id).some((c) => c.op === 'update' && c.card?.status === 'approved'));
    await chat.until(() => of(body.id).some((c) => c.op === 'reply' && c.reply?.kind === 'decided'));

    const final = of(body.id).filter((c) => c.op === 'update').at(-1)!.card!;
    expect(final.actionable).toBe(false);
    expect(final.resolution).toMatchObject({ status: 'approved', by: 'bob' });
    const replies = of(body.id).filter((c) => c.op === 'reply').map((c) => c.reply!.text);
    expect(replies).toContain('alice approved (1 of 2, via slack)');
    expect(replies).toContain('Approved by alice, bob');
    expect(of(body.id).filter((c) => c.op === 'post')).toHaveLength(1);
  });

  it('retries a failing post with backoff and posts exactly one card', async () => {
    chat.failures.set('flaky twice', 2);
    const second = await app.billing.propose(proposalBody({ intent: 'flaky twice' }));
    await chat.until(() => of(second.body.id).some((c) => c.op === 'post' && c.card !== undefined));
    expect(of(second.body.id).filter((c) => c.op === 'post')).toHaveLength(3);
    // card_posted is appended just after the channel answered: wait for it, then count.
    const types = await eventually(async () => {
      const audit = await app.admin<{ events: { type: string }[] }>(`/v1/audit?proposal_id=${second.body.id}`);
      const found = audit.body.events.map((e) => e.type);
      return found.includes('card_posted') ? found : null;
    });
    expect(types.filter((t) => t === 'card_posted')).toHaveLength(1);
    expect(types.filter((t) => t === 'card_failed')).toHaveLength(0);
  });

  it('records card_failed after the last attempt, and the proposal stays pending', async () => {
    chat.failures.set('never posts', 99);
    const { body } = await app.billing.propose(proposalBody({ intent: 'never posts' }));
    const types = await eventually(async () => {
      const found = (await app.admin<{ events: { type: string }[] }>(`/v1/audit?proposal_id=${body.id}`)).body.events.map((e) => e.type);
      return found.includes('card_failed') ? found : null;
    });
    expect(types).toContain('card_failed');
    // One attempt at once by the card relay, then the notify queue's 3 (notifyAttempts).
    expect(of(body.id).filter((c) => c.op === 'post')).toHaveLength(4);
    expect((await app.admin<{ status: string }>(`/v1/proposals/${body.id}`)).body.status).toBe('pending');
  });
});

describe('logs', () => {
  it('carry no secret, signature or admin token', async () => {
    const raw = JSON.stringify(proposalBody());
    const ts = Math.floor(Date.now() / 1000);
    const forged = sign('not-the-secret', ts, { method: 'POST', path: '/v1/proposals', body: raw });
    await fetch(`${app.url}/v1/proposals`, {
      method: 'POST',
      headers: { 'x-countersign-agent': 'billing-agent', 'x-countersign-timestamp': String(ts), 'x-countersign-signature': forged },
      body: raw,
    });
    await app.billing.propose(proposalBody());
    await app.admin('/v1/audit?limit=1');
    const text = logLines.join('');
    expect(text).toContain('authentication failed');
    for (const secret of [app.secrets.billing, app.secrets.ops, forged.slice(3), 'test-admin-token-0123456789abcdef']) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('repair sweep', () => {
  it('posts the card of a pending proposal that never reached the card outbox (stored by a release before it, its post job lost)', async () => {
    const { createRedisCardRefStore } = await import('../../adapters/redis/card-ref-store.ts');
    const { repairMissingCards } = await import('../../src/app/repair-cards.ts');
    const { deps } = app.running;
    // Store a proposal the way submit does, but without its follow-up.
    const template = (await app.billing.propose(proposalBody({ intent: 'template' }))).body.id as string;
    const base = (await deps.store.get(template))!;
    const orphan = { ...base, id: `p_${'0'.repeat(10)}${'z'.repeat(16)}`, intent: 'orphaned by a crash', created_at: Date.now() - 120_000 };
    // Written as the old create script did: the proposal and its place in the pending set, no outbox entry.
    const keys = redisKeys(app.prefix);
    await app.running.redis.hset(keys.proposal(orphan.id), 'doc', JSON.stringify(orphan), 'version', '1', 'status', 'pending', 'agent', orphan.agent);
    await app.running.redis.zadd(keys.pending, String(orphan.expires_at), orphan.id);
    const repaired = await repairMissingCards({
      ...deps,
      cards: createRedisCardRefStore(app.running.redis, { prefix: app.prefix }),
      channels: new Map([['console', chat.channel]]),
    });
    expect(repaired).toBe(1);
    await chat.until(() => of(orphan.id).some((c) => c.op === 'post' && c.card !== undefined));
    expect(of(orphan.id).filter((c) => c.op === 'post')).toHaveLength(1);
  });
});
