import { chatPlatformContract, contractPolicy } from '../contracts/chat-platform.contract.ts';
import { startTestApp } from '../helpers/app.ts';
import { contractPeople, slackContractDriver, stopTestApp, teamsContractDriver } from '../helpers/chat-drivers.ts';
import { startFakeBotConnector, TENANT } from '../helpers/fake-bot-connector.ts';
import { startFakeSlack } from '../helpers/fake-slack.ts';

// The chat platform contract on Microsoft Teams (fake Bot Connector, Action.Execute invokes; no
// app id, so the tokens are not checked, as in every local Teams test). The route fixes its
// Teams channel in the policy and posts to Slack too: the other platform of the cross-platform case.

const CHANNEL = '19:contract@thread.tacv2';
const SLACK_SECRET = 'slack-signing-secret-for-the-contract';
const SLACK_CHANNEL = 'C0CONTRACT';

chatPlatformContract('teams', async () => {
  const connector = await startFakeBotConnector();
  const slack = await startFakeSlack();
  const app = await startTestApp({
    policy: contractPolicy(contractPeople(), `{ teams: { conversation: "${CHANNEL}", service_url: "${connector.serviceUrl}", tenant: ${TENANT} }, slack: ${SLACK_CHANNEL} }`),
    env: { SLACK_BOT_TOKEN: 'xoxb-contract-token', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl },
    // The over-the-limit notice's updates a few hundred ms apart, not 5 s: the contract waits for its last count.
    start: { limitNotices: { updateEveryMs: 300 } },
  });
  return teamsContractDriver(app, { connector, channel: CHANNEL }, {
    peer: slackContractDriver(app, { fake: slack, signingSecret: SLACK_SECRET, channel: SLACK_CHANNEL }),
    close: async () => {
      await stopTestApp(app);
      await Promise.all([connector.close(), slack.close()]);
    },
  });
});
