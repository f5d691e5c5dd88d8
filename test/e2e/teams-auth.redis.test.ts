import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_POLICY, startTestApp, type TestApp } from '../helpers/app.ts';
import { channelMessage, postActivity, startFakeBotConnector, type FakeBotConnector } from '../helpers/fake-bot-connector.ts';
import { waitFor } from '../helpers/fake-slack.ts';

// With MICROSOFT_APP_ID set, /api/messages takes only requests carrying a valid Bot Framework
// token: a request without one is 401, audited, and changes nothing.

let connector: FakeBotConnector;
let app: TestApp;

beforeAll(async () => {
  connector = await startFakeBotConnector();
  app = await startTestApp({
    policy: BASE_POLICY.replace('finance: { console: true }', 'finance: { teams: finance }'),
    env: { MICROSOFT_APP_ID: '11111111-2222-3333-4444-555555555555', MICROSOFT_APP_PASSWORD: 'not-a-real-secret' },
  });
});
afterAll(async () => {
  await connector.close();
});

describe('Teams request authentication', () => {
  it('refuses an activity without a token, audits it, and changes nothing', async () => {
    const activity = channelMessage(connector.serviceUrl, '19:finance@thread.tacv2', { aad: '00000000-0000-0000-0000-0000000a11ce' }, 'connect finance');
    const bare = await postActivity(app.url, activity);
    expect(bare.status).toBe(401);
    // A forged token is checked against Microsoft's signing keys (login.botframework.com), which
    // an offline test cannot reach: only the missing-token case is exercised here.
    expect(connector.calls).toHaveLength(0);
    const failed = await waitFor(async () => (await app.admin('/v1/audit?q=auth_failed+teams')).body.events.length >= 1 || null, { what: 'auth_failed' });
    expect(failed).toBe(true);
    expect((await app.admin('/v1/audit?q=channel_bound')).body.events).toHaveLength(0);
  });
});
