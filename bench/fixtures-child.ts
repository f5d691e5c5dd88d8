import { createServer } from 'node:http';
import { startFakeSlack } from '../test/helpers/fake-slack.ts';
import { wallNow } from './lib.ts';

// The world around countersign, in its own process: the fake Slack Web API from the tests
// and a local executor that answers 200 and reports each request's arrival over IPC
// ({kind:'executed', id, t}). It answers {kind:'counts'} with {kind:'counts', cards, replies,
// executed}: chat.postMessage calls answered ok outside a thread (a proposal's card) and in one
// (a thread reply), and executor requests, since it started. The benchmark waits on these,
// where the work lands, not on countersign's queues (cards may go through an outbox).

const send = (m: unknown) => process.send?.(m);
const slack = await startFakeSlack();
let cards = 0;
let replies = 0;
let executed = 0;
// The fake records every call; a benchmark makes tens of thousands, so count and forget them.
const tally = () => {
  for (const c of slack.calls.splice(0, slack.calls.length)) {
    if (c.method !== 'chat.postMessage' || !c.ok) continue;
    if (c.args['thread_ts'] === undefined || c.args['thread_ts'] === '') cards += 1;
    else replies += 1;
  }
};
setInterval(tally, 1000).unref();

const executor = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const t = wallNow();
    executed += 1;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { proposal_id?: string };
      send({ kind: 'executed', id: body.proposal_id, t });
    } catch {
      // not ours
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
await new Promise<void>((r) => executor.listen(0, '127.0.0.1', () => r()));
const address = executor.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
process.on('message', (m: { kind?: string }) => {
  if (m.kind !== 'counts') return;
  tally();
  send({ kind: 'counts', cards, replies, executed });
});
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready', slackApiUrl: slack.apiUrl, executorUrl: `http://127.0.0.1:${port}/execute` });
