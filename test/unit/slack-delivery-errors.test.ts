import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlackChannel } from '../../adapters/slack/slack-adapter.ts';
import { createSlackWebApi } from '../../adapters/slack/web-api.ts';
import { buildApprovalCard } from '../../src/core/card.ts';
import { DeliveryRateLimitedError, PermanentDeliveryError } from '../../src/core/delivery-errors.ts';
import type { ChatChannel } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';

// Which Slack answers the notify queue may retry: the Slack channel turns Web API errors into
// core's delivery errors (over real HTTP to the fake Slack, through the Web API caller cards use).

// Built by core, as the notify job does: the card's shape is core's business, not this test's.
const proposal: Proposal = {
  id: 'p_01jabcdefghjkmnpqrstvwxyz0',
  agent: 'billing-agent',
  idempotency_key: null,
  intent: 'Refund invoice 4711',
  action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_123', parameters: {} },
  context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: false, value: { amount: 10, currency: 'EUR' } },
  decision: { effect: 'approve', risk: 'high', rule: 'payments', reasons: [], route: 'finance', approvers: 'finance', approvals_required: 1, ttl_ms: 900_000 },
  status: 'pending',
  created_at: Date.parse('2026-11-24T06:00:00Z'),
  expires_at: Date.parse('2026-11-24T06:15:00Z'),
  approvals: [],
  resolution: null,
  version: 1,
};
const card = buildApprovalCard(proposal, 'https://countersign.example/console/proposals/p_01jabcdefghjkmnpqrstvwxyz0');

let fake: FakeSlack;
let channel: ChatChannel;

beforeAll(async () => {
  fake = await startFakeSlack();
  channel = createSlackChannel(createSlackWebApi({ botToken: 'xoxb-secret-token', apiUrl: fake.apiUrl }));
});
afterAll(() => fake.close());

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail');
}

describe('Slack delivery errors', () => {
  it.each(['channel_not_found', 'not_in_channel', 'invalid_blocks', 'is_archived', 'msg_too_long', 'invalid_auth', 'token_revoked', 'missing_scope'])(
    '%s is permanent, named, and carries no token',
    async (code) => {
      fake.failNext('chat.postMessage', 1, { error: code });
      const e = await failure(() => channel.postCard('C0FINANCE', card));
      expect(e).toBeInstanceOf(PermanentDeliveryError);
      expect((e as Error).message).toContain(code);
      expect((e as Error).message).toContain('chat.postMessage');
      expect((e as Error).message).not.toContain('xoxb-secret-token');
    },
  );

  it('an update or thread reply Slack refuses for good is permanent too', async () => {
    const ref = { platform: 'slack', conversation: 'C0FINANCE', message: '1700000000.000001' };
    fake.failNext('chat.update', 1, { error: 'message_not_found' });
    expect(await failure(() => channel.updateCard(ref, card))).toBeInstanceOf(PermanentDeliveryError);
    fake.failNext('chat.postMessage', 1, { error: 'not_in_channel' });
    expect(await failure(() => channel.replyInThread(ref, { proposalId: card.proposalId, kind: 'approval', text: 'alice approved' }))).toBeInstanceOf(PermanentDeliveryError);
  });

  it.each([
    ['an internal_error answer', { error: 'internal_error' }],
    ['an error countersign does not know', { error: 'something_new' }],
    ['a 503', { status: 503 }],
  ] as const)('%s is left to the queue to retry', async (_what, how) => {
    fake.failNext('chat.postMessage', 1, how);
    const e = await failure(() => channel.postCard('C0FINANCE', card));
    expect(e).not.toBeInstanceOf(PermanentDeliveryError);
    expect(e).not.toBeInstanceOf(DeliveryRateLimitedError);
  });

  it('a 429 carries its Retry-After in milliseconds', async () => {
    fake.failNext('chat.postMessage', 1, { status: 429, retryAfter: 7 });
    const e = await failure(() => channel.postCard('C0FINANCE', card));
    expect(e).toBeInstanceOf(DeliveryRateLimitedError);
    expect((e as DeliveryRateLimitedError).retryAfterMs).toBe(7000);
  });

  it('a 429 without a usable Retry-After, an answer that is not JSON and a call that takes too long are left to the queue', async () => {
    fake.failNext('chat.postMessage', 1, { status: 429, retryAfter: Number.NaN });
    const noHint = await failure(() => channel.postCard('C0FINANCE', card));
    expect(noHint).not.toBeInstanceOf(DeliveryRateLimitedError);
    expect(noHint).not.toBeInstanceOf(PermanentDeliveryError);
    fake.failNext('chat.postMessage', 1, { status: 502 });
    expect(((await failure(() => channel.postCard('C0FINANCE', card))) as Error).message).toBe('Slack chat.postMessage: HTTP 502');
    const slow = await startFakeSlack();
    try {
      slow.delay('chat.update', 5000);
      const impatient = createSlackChannel(createSlackWebApi({ botToken: 'xoxb-secret-token', apiUrl: slow.apiUrl }, { timeoutMs: 50 }));
      const e = await failure(() => impatient.updateCard({ platform: 'slack', conversation: 'C0FINANCE', message: '1.1' }, card));
      expect((e as Error).message).toBe('Slack chat.update: no answer within 50 ms');
    } finally {
      await slow.close();
    }
  });

  it('sends the card as JSON with the bot token as a bearer token, and returns where Slack put it', async () => {
    const ref = await channel.postCard('C0FINANCE', card);
    const call = fake.callsTo('chat.postMessage').at(-1)!;
    expect(ref).toEqual({ platform: 'slack', conversation: 'C0FINANCE', message: call.ts });
    expect(call.token).toBe('xoxb-secret-token');
    expect(call.args).toMatchObject({ channel: 'C0FINANCE', unfurl_links: false, unfurl_media: false });
    expect(Array.isArray(call.args['blocks'])).toBe(true);
    expect(JSON.stringify(call.args)).not.toContain('xoxb-secret-token');
  });
});
