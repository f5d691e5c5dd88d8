import { describe, expect, it } from 'vitest';
import { bindChannel, type BindHere } from '../../../src/app/bind-channel.ts';
import { runChatCommand } from '../../../src/app/chat-commands.ts';
import type { ChannelBinding } from '../../../src/core/ports.ts';
import { ALICE_TEAMS, createMemoryApp, TEST_POLICY, type MemoryApp } from '../../helpers/memory/app.ts';
import { T0 } from '../../helpers/memory/clock.ts';

// `connect <route>` written in a channel: a member of the policy's admins binds it to a route
// whose address on the platform is a key to bind (Teams); everyone else is refused, and every
// attempt but a plain usage mistake is audited.

const CAROL_TEAMS = '00000000-0000-0000-0000-00000000ca01';
// carol is on Teams too, and is not an admin.
const POLICY = TEST_POLICY.replace('carol: { slack: U0CAROL }', `carol: { slack: U0CAROL, teams: ${CAROL_TEAMS} }`);

function channel(conversation: string | null = '19:general@thread.tacv2') {
  const bound: { key: string; binding: ChannelBinding }[] = [];
  const here: BindHere = {
    platformName: 'Teams',
    conversation,
    details: { service_url: 'https://smba.test/teams/', tenant: 'tenant-1' },
    async bind(key, binding) {
      bound.push({ key, binding });
    },
  };
  return { here, bound };
}

const connect = async (app: MemoryApp, user: string, text: string, here: BindHere, trusted = true) => {
  const a = await runChatCommand(app.deps, app.cards, { platform: 'teams', user, trusted, text, invocation: '', answersPrivately: false, here });
  return a.kind === 'text' ? a.text : a.heading;
};

describe('connect <route>', () => {
  it('an admin binds the channel to the route: stored under the route key, answered, audited', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const { here, bound } = channel();
    app.clock.advance(5_000);
    expect(await connect(app, ALICE_TEAMS, 'Connect secops', here)).toBe('This channel now receives the approval cards of route "secops" (connected by alice).');
    expect(bound).toEqual([
      { key: 'secops', binding: { conversation: '19:general@thread.tacv2', service_url: 'https://smba.test/teams/', tenant: 'tenant-1', boundBy: 'alice', at: new Date(T0 + 5_000).toISOString() } },
    ]);
    expect(app.events({ type: 'channel_bound' })).toMatchObject([
      { actor: 'person:alice', proposal_id: null, agent: null, data: { platform: 'teams', route: 'secops', key: 'secops', conversation: '19:general@thread.tacv2', service_url: 'https://smba.test/teams/', tenant: 'tenant-1' } },
    ]);
  });

  it('a stranger is refused and audited under their platform id, before any check of the route', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const { here, bound } = channel();
    const refusal = 'Only people listed in the countersign policy may use countersign here.';
    expect(await connect(app, 'ffffffff-0000-0000-0000-000000000000', 'connect nowhere', here)).toBe(refusal);
    expect(await connect(app, ALICE_TEAMS, 'connect secops', here, false)).toBe(refusal);
    expect(bound).toEqual([]);
    expect(app.events({ type: 'channel_bind_refused' })).toMatchObject([
      { actor: 'teams:ffffffff-0000-0000-0000-000000000000', data: { platform: 'teams', route: 'nowhere', conversation: '19:general@thread.tacv2', why: 'unknown_person' } },
      { actor: `teams:${ALICE_TEAMS}`, data: { why: 'unknown_person' } },
    ]);
  });

  it('a person who is not an admin is refused and audited as that person', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const { here, bound } = channel();
    expect(await connect(app, CAROL_TEAMS, 'connect secops', here)).toBe('Only members of the policy\'s "admins" group may connect a channel to a route.');
    expect(bound).toEqual([]);
    expect(app.events({ type: 'channel_bind_refused' })).toMatchObject([{ actor: 'person:carol', data: { route: 'secops', why: 'not_an_admin' } }]);
    expect(app.events({ type: 'channel_bound' })).toEqual([]);
  });

  it('a route fixed in the policy cannot be bound, by its name or its conversation id', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const { here, bound } = channel();
    expect(await connect(app, ALICE_TEAMS, 'connect board', here)).toBe('Route "board" has its Teams channel fixed in the policy; change it there.');
    expect(await connect(app, ALICE_TEAMS, 'connect 19:board@thread.tacv2', here)).toBe('Route "board" has its Teams channel fixed in the policy; change it there.');
    expect(bound).toEqual([]);
    expect(app.events({ type: 'channel_bound' })).toEqual([]);
  });

  it('a route that does not post to this platform, a missing route and a command outside a channel are answered, not bound', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const { here, bound } = channel();
    expect(await connect(app, ALICE_TEAMS, 'connect finance', here)).toBe('No route "finance" posts to Teams in the policy.');
    expect(await connect(app, ALICE_TEAMS, 'connect', here)).toBe('Say which route: connect <route>.');
    expect(await connect(app, ALICE_TEAMS, 'connect secops', channel(null).here)).toBe('Write connect <route> in the Teams channel that should receive the cards.');
    expect(bound).toEqual([]);
    expect(app.events({ type: 'channel_bound' })).toEqual([]);
  });

  it('cuts the route it echoes and audits to 100 characters', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const long = 'r'.repeat(300);
    expect(await connect(app, 'ffffffff-0000-0000-0000-000000000000', `connect ${long}`, channel().here)).toMatch(/^Only people/);
    expect(app.events({ type: 'channel_bind_refused' })[0]?.data['route']).toBe(`${'r'.repeat(99)}…`);
  });

  it('on a platform whose routes name the channel itself (Slack), every route is fixed', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const { here, bound } = channel('C0NEW');
    const answer = await bindChannel(app.deps, { platform: 'slack', user: 'U0ALICE', person: 'alice', route: 'finance', here: { ...here, platformName: 'Slack' } });
    expect(answer).toBe('Route "finance" has its Slack channel fixed in the policy; change it there.');
    expect(bound).toEqual([]);
  });

  it('"connect" where the platform cannot bind is the usage, not a bind', async () => {
    const app = await createMemoryApp({ policy: POLICY });
    const a = await runChatCommand(app.deps, app.cards, { platform: 'slack', user: 'U0ALICE', trusted: true, text: 'connect finance', invocation: '/countersign', answersPrivately: true });
    expect(a.kind === 'text' && a.text.startsWith('countersign answers only you:')).toBe(true);
    expect(app.events({ type: 'channel_bind_refused' })).toEqual([]);
  });
});
