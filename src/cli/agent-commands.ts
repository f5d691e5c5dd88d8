import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CountersignClient, type ProposalRequest, type SubmitResponse } from '../client/index.ts';
import { loadConfig } from '../config.ts';
import { ownReasons } from '../core/card.ts';
import { ValidationError } from '../core/errors.ts';
import { DEMO_SECRET_ENV } from '../main.ts';
import { DEMO_MCP_KEY_ENV, DEMO_MCP_KEY_FILE } from '../wiring/policy-source.ts';
import { usage, type Env, type Flags, type Io } from './io.ts';

// Commands that act as an agent: `propose` (sign and send a JSON file) and `demo` (a
// handful of realistic proposals from the demo agent, so the console fills with cards, then
// the same agent's tool calls through the MCP gateway: src/cli/mcp-demo.ts).

export const DEMO_AGENT = 'demo-agent';

/** --url, else COUNTERSIGN_URL, else PUBLIC_URL / HOST:PORT as the server would use them. */
export function serverUrl(flags: Flags, env: Env): string {
  const given = flags.string('url') ?? env['COUNTERSIGN_URL'];
  if (given !== undefined && given !== '') return given;
  return loadConfig(env).publicUrl;
}

/**
 * The agent to act as: --agent / COUNTERSIGN_AGENT (default the demo agent); its secret
 * from --secret-file or COUNTERSIGN_AGENT_SECRET, and for the demo agent also the variable
 * and file `npm start` uses. Never a flag with the secret itself: it would show in `ps`.
 */
export function agentClient(flags: Flags, env: Env): CountersignClient {
  const agent = flags.string('agent') ?? env['COUNTERSIGN_AGENT'] ?? DEMO_AGENT;
  const file = flags.string('secret-file');
  let secret = file !== undefined ? readFileSync(file, 'utf8').trim() : (env['COUNTERSIGN_AGENT_SECRET'] ?? '');
  if (secret === '' && agent === DEMO_AGENT) {
    secret = env[DEMO_SECRET_ENV] ?? '';
    const path = resolve(loadConfig(env).dataDir, 'demo-agent-secret');
    if (secret === '' && existsSync(path)) secret = readFileSync(path, 'utf8').trim();
  }
  if (secret === '') {
    throw new ValidationError(`no secret for agent "${agent}": pass --secret-file FILE or set COUNTERSIGN_AGENT_SECRET`, [
      { path: 'secret', code: 'missing', message: 'no agent secret' },
    ]);
  }
  return new CountersignClient({ url: serverUrl(flags, env), agent, secret });
}

/** `propose --wait N` when nobody decided within N seconds (README, "Command line"); 1 is an error, 2 a usage error. */
export const EXIT_STILL_PENDING = 3;

export async function runPropose(file: string, flags: Flags, env: Env, io: Io): Promise<number> {
  const waitSeconds = flags.string('wait');
  const wait = waitSeconds === undefined ? undefined : Number(waitSeconds);
  if (wait !== undefined && !(Number.isFinite(wait) && wait > 0)) throw usage(`--wait "${waitSeconds}": write a number of seconds (--wait 600)`);
  const body = JSON.parse(readFileSync(file, 'utf8')) as ProposalRequest;
  const client = agentClient(flags, env);
  const submitted = await client.propose(body);
  if (wait === undefined || submitted.status !== 'pending') {
    io.out(JSON.stringify(submitted, null, 2));
    return 0;
  }
  io.err(`${submitted.id} is pending (rule ${submitted.decision.rule}, ${submitted.decision.risk} risk); waiting up to ${wait} s for a decision…`);
  const final = await client.wait(submitted.id, { timeout: wait });
  io.out(JSON.stringify(final, null, 2));
  if (final.status !== 'pending') return 0;
  io.err(`${submitted.id} is still pending after ${wait} s: nobody decided (exit ${EXIT_STILL_PENDING}); it stays open until ${final.expires_at ?? 'it expires'}`);
  return EXIT_STILL_PENDING;
}

export const DEMO_PROPOSALS: { label: string; body: ProposalRequest }[] = [
  {
    label: 'a refund (payments)',
    body: {
      intent: 'Refund invoice INV-4711 to Dana Whitfield: the card was charged twice on 3 March (duplicate charge ch_3Pq…).',
      action: { tool: 'payments', operation: 'refund', target: 'stripe:cus_Q8f2LmA91', parameters: { invoice: 'INV-4711', amount: 420.0, currency: 'EUR' } },
      context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420.0, currency: 'EUR' } },
    },
  },
  {
    label: 'a production database change',
    body: {
      intent: 'Add an index on orders(customer_id): the order history page times out for large customers (p95 9.8 s).',
      action: {
        tool: 'postgres',
        operation: 'migrate',
        target: 'postgres://orders-db.prod/orders',
        parameters: { sql: 'CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);', estimated_lock_seconds: 0 },
      },
      context: { data_sensitivity: 'restricted', destination: 'internal', environment: 'production', reversible: true },
    },
  },
  {
    label: 'an external email',
    body: {
      intent: 'Send the renewal quote to the customer, as asked in ticket #8812.',
      action: {
        tool: 'email',
        operation: 'send',
        target: 'procurement@northwind.example',
        parameters: { subject: 'Your renewal quote for 2027', attachments: ['quote-2027-northwind.pdf'] },
      },
      context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false },
    },
  },
  {
    label: 'a large payout',
    body: {
      intent: 'Pay supplier invoice SUP-2291 (annual hosting contract), due Friday.',
      action: { tool: 'payments', operation: 'payout', target: 'iban:DE89370400440532013000', parameters: { invoice: 'SUP-2291', amount: 24800.0, currency: 'EUR' } },
      context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 24800.0, currency: 'EUR' } },
    },
  },
  {
    label: 'a tag (allowed by policy)',
    body: {
      intent: 'Tag ticket #8812 as "renewal" so the account team sees it.',
      action: { tool: 'helpdesk', operation: 'tag', target: 'ticket:8812', parameters: { tag: 'renewal' } },
      context: { data_sensitivity: 'internal', destination: 'internal', environment: 'production', reversible: true },
    },
  },
  {
    label: 'dropping a production database (denied by policy)',
    body: {
      intent: 'Drop the legacy_orders database: it has not been read in 90 days.',
      action: { tool: 'postgres', operation: 'drop', target: 'postgres://orders-db.prod/legacy_orders', parameters: {} },
      context: { data_sensitivity: 'restricted', destination: 'internal', environment: 'production', reversible: false },
    },
  },
];

function describe(r: SubmitResponse): string {
  const d = r.decision;
  if (r.status === 'pending') return `pending: ${d.risk} risk, rule ${d.rule}, needs ${d.approvals_required} approval(s) from "${d.approvers ?? ''}"`;
  const reason = ownReasons(d)[0];
  return `${r.status} by the policy (rule ${d.rule}${reason ? `: ${reason}` : ''})`;
}

/** The demo agent's MCP key as `npm start` has it (its variable, else the data dir), and how to write it in a shell; null for other agents. */
function demoMcpKey(agent: string, env: Env): { key: string; inShell: string } | null {
  if (agent !== DEMO_AGENT) return null;
  const given = env[DEMO_MCP_KEY_ENV] ?? '';
  if (given !== '') return { key: given, inShell: `$${DEMO_MCP_KEY_ENV}` };
  const path = resolve(loadConfig(env).dataDir, DEMO_MCP_KEY_FILE);
  return existsSync(path) ? { key: readFileSync(path, 'utf8').trim(), inShell: `$(cat ${path})` } : null;
}

export async function runDemo(flags: Flags, env: Env, io: Io): Promise<number> {
  const client = agentClient(flags, env);
  const url = serverUrl(flags, env);
  io.err(`sending ${DEMO_PROPOSALS.length} proposals to ${url} as ${client.agent}…`);
  let pending = 0;
  for (const [i, { label, body }] of DEMO_PROPOSALS.entries()) {
    const r = await client.propose(body);
    if (r.status === 'pending') pending++;
    io.out(`${String(i + 1).padStart(2)}. ${label}: ${r.id} ${describe(r)}`);
  }
  const mcp = demoMcpKey(client.agent, env);
  if (mcp === null) io.out(`MCP calls skipped: they are made as ${DEMO_AGENT}, with its MCP key (${DEMO_MCP_KEY_ENV} or ${DEMO_MCP_KEY_FILE} in the data dir)`);
  else {
    io.err(`calling tools through ${url}/mcp as ${client.agent}…`);
    // The MCP client SDK, loaded for the demo only: `countersign start` goes through this module too.
    const { runMcpDemo } = await import('./mcp-demo.ts');
    pending += (await runMcpDemo({ url: url.replace(/\/$/, ''), key: mcp.key, keyInShell: mcp.inShell, firstNumber: DEMO_PROPOSALS.length + 1 }, io)).pending;
  }
  io.out(`${pending} card(s) are waiting in the console: ${url}/console`);
  return 0;
}
