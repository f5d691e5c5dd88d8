import { describe, expect, it } from 'vitest';
import { runChatCommand, type ChatAnswer, type ChatCommand } from '../../../src/app/chat-commands.ts';
import { createMemoryApp, type MemoryApp } from '../../helpers/memory/app.ts';

// `away until … to …`, `away`, `back` in chat (src/app/away-command.ts): always the writer's
// own absence, the delegate named by mention or person id, refusals that name the field and
// store nothing, and the audit events. Memory fakes; the signed platforms are in
// test/e2e/away.redis.test.ts.

const run = (app: MemoryApp, user: string, text: string, over: Partial<ChatCommand> = {}): Promise<string> =>
  runChatCommand(app.deps, app.cards, { platform: 'slack', user, trusted: true, text, invocation: '/countersign', answersPrivately: true, ...over }).then((a: ChatAnswer) => (a.kind === 'text' ? a.text : a.kind));

const events = (app: MemoryApp) => app.audit.entries().filter((e) => e.type.startsWith('away_')).map((e) => `${e.type} ${e.actor} ${String(e.data['delegate'])} ${String(e.data['until'])}`);

describe('away in chat', () => {
  it("sets the writer's own absence with a Slack mention, shows it, and ends it with back", async () => {
    const app = await createMemoryApp();
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10 to <@U0ERIN|erin>')).toBe('You are away until the end of 2030-01-10 (UTC): erin decides for you.');
    expect(await app.deps.away.get('alice', app.clock.now())).toMatchObject({ delegate: 'erin', until: Date.parse('2030-01-11T00:00:00Z') });
    expect(await run(app, 'U0ALICE', 'away')).toBe('You are away until the end of 2030-01-10 (UTC): erin decides for you.');
    expect(await run(app, 'U0ERIN', 'away')).toBe('You are not marked away.\nalice is away until the end of 2030-01-10 (UTC): you decide for alice.');
    expect(await run(app, 'U0ALICE', 'back')).toBe('Welcome back: erin no longer decides for you.');
    expect(await run(app, 'U0ALICE', 'back')).toBe('You were not marked away.');
    expect(events(app)).toEqual(['away_set person:alice erin 2030-01-11T00:00:00.000Z', 'away_cleared person:alice erin 2030-01-11T00:00:00.000Z']);
  });

  it('names the delegate by @person id, by a bare mention, in either order', async () => {
    const app = await createMemoryApp();
    expect(await run(app, 'U0ALICE', 'away to @bob until 2030-01-05')).toContain('bob decides for you');
    expect(await run(app, 'U0CAROL', 'away until 2030-01-05T12:00Z to <@U0DANA>')).toBe('You are away until 2030-01-05T12:00:00Z: dana decides for you.');
  });

  it('refuses, naming the field and storing nothing: no such person, oneself, the past, over 90 days, a delegate away, unreadable dates', async () => {
    const app = await createMemoryApp();
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10 to @mallory')).toBe('delegate: @mallory is not a person in the countersign policy.');
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10 to <@U0NOBODY>')).toMatch(/^delegate: /);
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10 to @alice')).toBe('Not set: delegate: the delegate must be someone other than you.');
    expect(await run(app, 'U0ALICE', 'away until 2029-12-31 to @bob')).toBe('Not set: until: the absence must end in the future.');
    expect(await run(app, 'U0ALICE', 'away until 2030-04-15 to @bob')).toMatch(/^Not set: until: .*at most 90 days/);
    expect(await run(app, 'U0ALICE', 'away until 2030-02-30 to @bob')).toMatch(/^until: cannot read "2030-02-30"/);
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10')).toMatch(/^Write: away until/);
    await run(app, 'U0BOB', 'away until 2030-01-03 to @alice');
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10 to @bob')).toMatch(/^Not set: delegate: bob is away too, until the end of 2030-01-03 \(UTC\)/);
    expect(await app.deps.away.get('alice', app.clock.now())).toBeNull();
    expect(events(app)).toEqual(['away_set person:bob alice 2030-01-04T00:00:00.000Z']);
  });

  it('a stranger, or a guest the platform cannot vouch for, sets nothing', async () => {
    const app = await createMemoryApp();
    expect(await run(app, 'U0MALLORY', 'away until 2030-01-10 to @bob')).toMatch(/^Only people listed/);
    expect(await run(app, 'U0ALICE', 'away until 2030-01-10 to @bob', { trusted: false })).toMatch(/^Only people listed/);
    expect(await app.deps.away.list(app.clock.now())).toEqual(new Map());
  });
});
