import { chatPlatformContract, contractPolicy } from '../contracts/chat-platform.contract.ts';
import { startTestApp } from '../helpers/app.ts';
import { consoleContractDriver, contractPeople, stopTestApp, teamsContractDriver, type ConsoleDriverOptions } from '../helpers/chat-drivers.ts';
import { startFakeBotConnector, TENANT } from '../helpers/fake-bot-connector.ts';

// The chat platform contract on the web console (its pages over HTTP, signed-in sessions, CSRF
// tokens), twice: through the console's script (JSON answers, shown in the card's notice line)
// and through the plain form post it falls back to without the script (redirect, flash line).
// Both must say the same. The route posts to Teams too: the other platform of the cross-platform case.

const TEAMS_CHANNEL = '19:contract@thread.tacv2';

for (const via of ['script', 'form'] as const satisfies readonly NonNullable<ConsoleDriverOptions['via']>[]) {
  chatPlatformContract(`console (${via})`, async () => {
    const connector = await startFakeBotConnector();
    const app = await startTestApp({
      policy: contractPolicy(contractPeople(), `{ console: true, teams: { conversation: "${TEAMS_CHANNEL}", service_url: "${connector.serviceUrl}", tenant: ${TENANT} } }`),
    });
    return consoleContractDriver(app, { via }, {
      peer: teamsContractDriver(app, { connector, channel: TEAMS_CHANNEL }),
      close: async () => {
        await stopTestApp(app);
        await connector.close();
      },
    });
  });
}
