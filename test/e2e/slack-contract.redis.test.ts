import { chatPlatformContract, contractPolicy } from '../contracts/chat-platform.contract.ts';
import { startTestApp } from '../helpers/app.ts';
import { consoleContractDriver, contractPeople, slackContractDriver, stopTestApp } from '../helpers/chat-drivers.ts';
import { startFakeSlack } from '../helpers/fake-slack.ts';

// The chat platform contract on Slack (fake Web API, Slack-signed requests). The route posts to
// the console too: that is the other platform of the cross-platform case.

const SECRET = 'slack-signing-secret-for-the-contract';
const CHANNEL = 'C0CONTRACT';

chatPlatformContract('slack', async () => {
  const fake = await startFakeSlack();
  const app = await startTestApp({
    policy: contractPolicy(contractPeople(), `{ slack: ${CHANNEL}, console: true }`),
    env: { SLACK_BOT_TOKEN: 'xoxb-contract-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl },
    // The over-the-limit notice's updates a few hundred ms apart, not 5 s: the contract waits for its last count.
    start: { limitNotices: { updateEveryMs: 300 } },
  });
  return slackContractDriver(app, { fake, signingSecret: SECRET, channel: CHANNEL }, {
    peer: consoleContractDriver(app),
    close: async () => {
      await stopTestApp(app);
      await fake.close();
    },
  });
});
