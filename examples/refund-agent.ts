// An agent that asks before it refunds. Run it next to `npm start` (built-in example policy):
//
//   npx tsx examples/refund-agent.ts
//
// It proposes a refund, waits while a person decides in the console, and, once approved,
// "executes" it with the short-lived execution token and reports the outcome, which then
// appears in the card's timeline. Settings: COUNTERSIGN_URL (default http://127.0.0.1:3000),
// COUNTERSIGN_AGENT (default demo-agent), COUNTERSIGN_AGENT_SECRET (default: the demo
// agent's secret from .countersign/demo-agent-secret).
import { existsSync, readFileSync } from 'node:fs';
import { CountersignClient, type ProposalView } from 'countersign/client';

const url = process.env['COUNTERSIGN_URL'] ?? 'http://127.0.0.1:3000';
const agent = process.env['COUNTERSIGN_AGENT'] ?? 'demo-agent';
const secretFile = '.countersign/demo-agent-secret';
const secret = process.env['COUNTERSIGN_AGENT_SECRET'] ?? (existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '');
if (secret === '') throw new Error(`no secret: set COUNTERSIGN_AGENT_SECRET or start countersign once so that ${secretFile} exists`);

const client = new CountersignClient({ url, agent, secret });
const invoice = `INV-${Math.floor(1000 + Math.random() * 9000)}`;

const submitted = await client.propose({
  idempotency_key: `refund-${invoice}`,
  intent: `Refund invoice ${invoice}: the customer was charged twice for the same order.`,
  action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_Q8f2LmA91', parameters: { invoice, amount: 129.0, currency: 'EUR' } },
  context: { data_sensitivity: 'confidential', destination: 'external', reversible: false, value: { amount: 129.0, currency: 'EUR' } },
});
console.log(`proposed ${submitted.id}: ${submitted.status} (rule ${submitted.decision.rule}, ${submitted.decision.risk} risk)`);
if (submitted.status === 'pending') console.log(`waiting for a person: ${url}/console/proposals/${submitted.id}`);

let proposal: ProposalView = await client.wait(submitted.id, { timeout: 15 * 60 });
console.log(`decision: ${proposal.status}${proposal.resolution?.by ? ` by ${proposal.resolution.by}` : ''}`);
if (proposal.status !== 'approved' && proposal.execution_token === undefined) process.exit(proposal.status === 'pending' ? 2 : 0);

// The token is handed out once, on the first read after it is minted (a moment after approval).
let token = proposal.execution_token;
for (let i = 0; token === undefined && i < 20; i++) {
  await new Promise((r) => setTimeout(r, 250));
  proposal = await client.get(submitted.id);
  token = proposal.execution_token;
}
if (token === undefined) throw new Error('approved, but no execution token came (is another copy of this agent running?)');

// Here the real agent would call the payment provider, passing the token along so that the
// provider can check it (GET /.well-known/jwks.json) and spend it (POST /v1/tokens/redeem).
console.log(`refunding ${invoice} with execution token ${token.slice(0, 12)}…`);
const done = await client.reportOutcome(submitted.id, token, { status: 'succeeded', status_code: 200, detail: `refund re_${invoice} created` });
console.log(`reported: ${done.status}`);
