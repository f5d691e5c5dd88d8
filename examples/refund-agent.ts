// An agent that asks before it refunds. Run it next to `npm start` (built-in example policy):
//
//   npx tsx examples/refund-agent.ts
//
// It proposes a refund, waits while a person decides in the console, and, once approved,
// "executes" it with the short-lived execution token and reports the outcome, which then
// appears in the card's timeline. Settings: COUNTERSIGN_URL (default http://127.0.0.1:3000),
// COUNTERSIGN_AGENT (default demo-agent), COUNTERSIGN_AGENT_SECRET (default: the demo
// agent's secret from .countersign/demo-agent-secret).
//
// When the rule that approved it has `credentials: {issuer, ttl}` (README, "Just-in-time
// credentials"), the approved read also carries a login made for this task alone: the agent
// uses it for its real work (a redis-acl login: SET and GET of REFUND_AGENT_KEY, default
// orders:<invoice>; a postgres login: REFUND_AGENT_SQL, default a query any login may run),
// prints what it did (never the password), and reports; countersign then removes the login.
import { existsSync, readFileSync } from 'node:fs';
import { CountersignClient, type TaskCredential } from 'countersign/client';

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

// wait() returns the read that carries the execution token (and the task's login, if any):
// both are handed out once, a moment after the approval.
const proposal = await client.wait(submitted.id, { timeout: 15 * 60 });
console.log(`decision: ${proposal.status}${proposal.resolution?.by ? ` by ${proposal.resolution.by}` : ''}`);
const token = proposal.execution_token;
if (token === undefined) {
  if (proposal.status === 'approved' || proposal.status === 'executing') throw new Error('approved, but no execution token came (is another copy of this agent running?)');
  process.exit(proposal.status === 'pending' ? 2 : 0);
}

/** The task's real work with its own login; what it did, in words (no secret). */
async function useCredential(c: TaskCredential): Promise<string> {
  const where = new URL(c.url);
  const place = `${where.protocol}//${where.host}${where.pathname}`;
  if (where.protocol === 'redis:' || where.protocol === 'rediss:') {
    const { Redis } = await import('ioredis');
    // A login with only the policy's ACL: no INFO for a ready check, no CLIENT SETINFO.
    const redis = new Redis(c.url, { enableReadyCheck: false, disableClientInfo: true, maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await redis.connect();
      const key = process.env['REFUND_AGENT_KEY'] ?? `orders:${invoice}`;
      await redis.set(key, 'refunded');
      return `SET ${key} refunded, GET ${key} -> ${String(await redis.get(key))} on ${place} as ${c.username}`;
    } finally {
      redis.disconnect();
    }
  }
  if (where.protocol === 'postgres:' || where.protocol === 'postgresql:') {
    const { default: pg } = await import('pg');
    const db = new pg.Client({ connectionString: c.url });
    await db.connect();
    try {
      const sql = process.env['REFUND_AGENT_SQL'] ?? 'SELECT current_user AS login, now() AS at';
      const result = await db.query(sql);
      return `${sql} -> ${result.rowCount ?? 0} row(s) ${JSON.stringify(result.rows.slice(0, 3))} on ${place} as ${c.username}`;
    } finally {
      await db.end();
    }
  }
  return `a ${where.protocol} login (${c.username}) this example does not know how to use`;
}

let outcome: { status: 'succeeded' | 'failed'; detail: string } = { status: 'succeeded', detail: `refund re_${invoice} created` };
const credential = proposal.credential;
if (credential !== undefined) {
  console.log(`task login from "${credential.issuer}": ${credential.username}, valid until ${credential.expires_at}`);
  try {
    const did = await useCredential(credential);
    console.log(`with it: ${did}`);
    outcome = { status: 'succeeded', detail: `refund re_${invoice} recorded with the task login` };
  } catch (e) {
    // The driver's message names the login at most, never the password.
    console.log(`the task login did not work: ${(e as Error).message}`);
    outcome = { status: 'failed', detail: 'could not use the task login' };
  }
} else {
  console.log('no task login: the rule that decided has no credentials');
}

// Here the real agent would call the payment provider, passing the token along so that the
// provider can check it (GET /.well-known/jwks.json) and spend it (POST /v1/tokens/redeem).
// What was approved is `proposal.action`: an approver may have edited the amount ("approve with
// edits"); the token is for that action, so refund what it says, not what was proposed.
const approved = proposal.action.parameters;
if (proposal.revision !== null) {
  console.log(`approved with edits by ${proposal.revision.by}: ${proposal.revision.changes.map((c) => `${c.key} ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join(', ')}`);
}
console.log(`refunding ${String(approved['amount'])} ${String(approved['currency'])} of ${invoice} with execution token ${token.slice(0, 12)}…`);
const done = await client.reportOutcome(submitted.id, token, { ...outcome, status_code: outcome.status === 'succeeded' ? 200 : 500 });
console.log(`reported: ${done.status}${credential !== undefined ? ' (countersign removes the task login now)' : ''}`);
