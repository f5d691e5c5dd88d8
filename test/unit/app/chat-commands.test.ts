import { describe, expect, it } from 'vitest';
import { runChatCommand, type ChatAnswer, type ChatCommand } from '../../../src/app/chat-commands.ts';
import { createMemoryApp, PUBLIC_URL, type MemoryApp } from '../../helpers/memory/app.ts';

// What people write to countersign in chat: search / show / pending (connect is in
// bind-channel.test.ts). One implementation for every platform: who asks, what they see.

const run = (app: MemoryApp, text: string, over: Partial<ChatCommand> = {}): Promise<ChatAnswer> =>
  runChatCommand(app.deps, app.cards, { platform: 'slack', user: 'U0BOB', trusted: true, text, invocation: '/countersign', answersPrivately: true, ...over });

const textOf = (a: ChatAnswer) => (a.kind === 'text' ? a.text : `(${a.kind}) ${a.heading}`);
const ids = (a: ChatAnswer) => (a.kind === 'proposals' ? a.items.map((i) => i.proposal.id) : []);

describe('usage', () => {
  it("answers anything it does not know with the usage, in the platform's own invocation", async () => {
    const app = await createMemoryApp();
    for (const text of ['', 'help', 'search', 'show', 'approve p_1']) {
      expect(textOf(await run(app, text))).toBe(
        [
          'countersign answers only you:',
          '• /countersign search <words>: proposals whose audit trail mentions every word',
          '• /countersign show <proposal id>: one proposal and its history',
          '• /countersign pending: proposals waiting for a decision',
          '• /countersign away until <date> to <person>: while you are away, they decide for you',
          '• /countersign away: who decides for you, and for whom you decide',
          '• /countersign back: you decide for yourself again',
        ].join('\n'),
      );
    }
  });

  it('with no invocation (a mention), the words alone; connect is offered only where a channel can be bound', async () => {
    const app = await createMemoryApp();
    const here = { platformName: 'Teams', conversation: '19:c@thread', details: {}, bind: async () => undefined };
    const usage = textOf(await run(app, 'hi', { platform: 'teams', user: '00000000-0000-0000-0000-0000000a11ce', invocation: '', answersPrivately: false, here }));
    expect(usage.startsWith('countersign understands:\n')).toBe(true);
    expect(usage).toContain('\n• search <words>:');
    expect(usage).toContain("\n• connect <route>: (admins, in a channel) post the cards of that route here");
    expect(textOf(await run(app, 'hi'))).not.toContain('connect');
  });
});

describe('strangers', () => {
  it('refuses people not in the policy, and listed ids the platform cannot vouch for, without running anything', async () => {
    const app = await createMemoryApp();
    await app.submit();
    const refusal = 'Only people listed in the countersign policy may use countersign here.';
    expect(textOf(await run(app, 'pending', { user: 'U0NOBODY' }))).toBe(refusal);
    expect(textOf(await run(app, 'pending', { trusted: false }))).toBe(refusal);
    // A Slack id is not a Teams id.
    expect(textOf(await run(app, 'pending', { platform: 'teams' }))).toBe(refusal);
    expect(textOf(await run(app, 'nonsense', { user: 'U0NOBODY' }))).toBe(refusal);
  });
});

describe('pending', () => {
  it('lists what waits, soonest expiry first, with links and the cards on this platform only', async () => {
    const app = await createMemoryApp();
    const later = await app.submit({ context: { value: { amount: 25_000, currency: 'EUR' } } }); // 30m
    const sooner = await app.submit({ action: { tool: 'deploy', operation: 'ship', target: 'api' } }, 'ops-agent'); // 10m
    const decided = await app.submit();
    await app.vote(decided.id, 'alice');
    await app.runNotifyJobs();

    const a = await run(app, 'PENDING');
    expect(a).toMatchObject({ kind: 'proposals', heading: 'Pending proposals, soonest expiry first', about: null, empty: 'Nothing is waiting for a decision.', history: null });
    expect(ids(a)).toEqual([sooner.id, later.id]);
    if (a.kind !== 'proposals') return;
    expect(a.items[1]?.link).toBe(`${PUBLIC_URL}/console/proposals/${later.id}`);
    expect(a.items[1]?.cards).toEqual([{ platform: 'slack', conversation: 'C0FINANCE', message: expect.any(String) }]);
  });

  it('shows at most ten', async () => {
    const app = await createMemoryApp();
    for (let i = 0; i < 12; i++) await app.submit({ intent: `refund ${i}` });
    expect(ids(await run(app, 'pending'))).toHaveLength(10);
  });

  it('answers with the empty text when nothing waits', async () => {
    const app = await createMemoryApp();
    const a = await run(app, 'pending');
    expect(a).toMatchObject({ kind: 'proposals', items: [] });
  });
});

describe('search', () => {
  it('finds proposals with an audit event holding every word, once each, newest match first', async () => {
    const app = await createMemoryApp();
    const refund = await app.submit({ intent: 'Refund invoice 4711 twice charged' });
    const other = await app.submit({ intent: 'Refund invoice 9000' });
    await app.submit({ intent: 'Export the customer list', action: { tool: 'crm', operation: 'export', target: 'all' } });
    await app.vote(refund.id, 'alice');

    const a = await run(app, 'search refund   INVOICE');
    expect(a).toMatchObject({ kind: 'proposals', heading: 'Proposals matching', about: { words: 'refund INVOICE' } });
    expect(ids(a)).toEqual([other.id, refund.id]);
    expect(ids(await run(app, 'search refund 4711'))).toEqual([refund.id]);
    // Any event of the trail counts: the approval names alice.
    expect(ids(await run(app, 'search alice'))).toEqual([refund.id]);
  });

  it('answers with the empty text when nothing matches', async () => {
    const app = await createMemoryApp();
    await app.submit();
    const a = await run(app, 'search nothing-like-this');
    expect(a).toMatchObject({ kind: 'proposals', items: [], empty: 'Nothing in the audit log matches every word.' });
  });
});

describe('show', () => {
  it('gives one proposal with its history, oldest first', async () => {
    const app = await createMemoryApp();
    const p = await app.submit();
    app.clock.advance(61_000);
    await app.vote(p.id, 'bob', 'deny', 'duplicate');
    const a = await run(app, `show ${p.id}`);
    expect(ids(a)).toEqual([p.id]);
    expect(a).toMatchObject({ heading: 'Proposal', about: { id: p.id } });
    if (a.kind !== 'proposals') return;
    expect(a.history).toBe(
      [
        'History',
        '2030-01-01T00:00:00Z  proposal_received  agent:billing-agent',
        '2030-01-01T00:00:00Z  policy_decided  policy',
        '2030-01-01T00:01:01Z  approval_recorded  person:bob',
        '2030-01-01T00:01:01Z  decided  person:bob',
      ].join('\n'),
    );
  });

  it('says so for an unknown or malformed id, and cuts what it echoes', async () => {
    const app = await createMemoryApp();
    expect(textOf(await run(app, 'show p_00000000000000000000000000'))).toBe('No proposal p_00000000000000000000000000.');
    const long = `x${'y'.repeat(100)}`;
    expect(textOf(await run(app, `show ${long}`))).toBe(`No proposal ${long.slice(0, 59)}….`);
  });
});
