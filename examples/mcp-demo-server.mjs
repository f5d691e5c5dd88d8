#!/usr/bin/env node
// A small MCP server that stands in for a payments provider's tool server, for the built-in
// example policy and `npm run demo`. countersign starts it as a child process (stdio) and sits
// between it and the agent: the agent sees `billing__list_invoices`, `billing__refund` and
// `billing__delete_customer`, and countersign's policy decides which calls reach this process.
//
// The credential: a real server would read an API key from its environment and send it to the
// provider with every request. This one reads DEMO_PAYMENTS_TOKEN, which countersign injects
// when it starts the process (the policy's `env: { DEMO_PAYMENTS_TOKEN: { env: … } }`): the agent
// never has it, and refuses every call without it. It never prints it.
//
// Plain JavaScript, so it runs with `node` alone; state is in memory and starts over with the process.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const TOKEN = process.env.DEMO_PAYMENTS_TOKEN ?? '';

// What a real server would fetch from the provider's API (GET /v1/invoices).
const invoices = new Map(
  [
    { id: 'INV-4711', customer: 'cus_Q8f2LmA91', name: 'Dana Whitfield', amount: 420.0, currency: 'EUR', status: 'paid', note: 'charged twice on 3 March' },
    { id: 'INV-4712', customer: 'cus_Q8f2LmA91', name: 'Dana Whitfield', amount: 420.0, currency: 'EUR', status: 'paid', note: 'the duplicate charge' },
    { id: 'INV-4730', customer: 'cus_N4r7TbW22', name: 'Northwind Traders', amount: 12800.0, currency: 'EUR', status: 'open', note: 'renewal 2027' },
  ].map((i) => [i.id, { ...i, refunded: 0 }]),
);
const customers = new Set([...invoices.values()].map((i) => i.customer));

const text = (t, isError = false) => ({ content: [{ type: 'text', text: t }], ...(isError ? { isError: true } : {}) });
const money = (amount, currency) => `${amount.toFixed(2)} ${currency}`;

// A real server would get 401 from the provider; this one says so without calling anyone.
function withCredential(handler) {
  return async (args) => (TOKEN === '' ? text('no DEMO_PAYMENTS_TOKEN in the environment: the payments API would answer 401', true) : handler(args));
}

const server = new McpServer({ name: 'countersign-demo-payments', version: '1.0.0' });

server.registerTool(
  'list_invoices',
  {
    description: "Lists invoices, optionally one customer's (read only).",
    inputSchema: { customer: z.string().optional().describe('a customer id, e.g. cus_Q8f2LmA91') },
  },
  withCredential(async ({ customer }) => {
    const found = [...invoices.values()].filter((i) => customer === undefined || i.customer === customer);
    if (found.length === 0) return text(`no invoices${customer === undefined ? '' : ` for ${customer}`}`);
    const lines = found.map((i) => `${i.id}  ${i.name} (${i.customer})  ${money(i.amount, i.currency)}  ${i.status}${i.refunded > 0 ? `, ${money(i.refunded, i.currency)} refunded` : ''}  ${i.note}`);
    return text(lines.join('\n'));
  }),
);

server.registerTool(
  'refund',
  {
    description: 'Refunds part or all of a paid invoice to the card it was charged to. Money leaves the company: cannot be undone.',
    inputSchema: {
      invoice: z.string().describe('the invoice id, e.g. INV-4711'),
      amount: z.number().positive().describe('how much to refund'),
      currency: z.string().length(3).describe('ISO 4217, e.g. EUR'),
    },
  },
  withCredential(async ({ invoice, amount, currency }) => {
    const i = invoices.get(invoice);
    if (i === undefined) return text(`no invoice ${invoice}`, true);
    if (i.status !== 'paid') return text(`${invoice} is ${i.status}: only paid invoices can be refunded`, true);
    if (currency !== i.currency) return text(`${invoice} was charged in ${i.currency}, not ${currency}`, true);
    if (amount > i.amount - i.refunded) return text(`${invoice} has ${money(i.amount - i.refunded, i.currency)} left to refund, less than ${money(amount, currency)}`, true);
    // A real server would POST /v1/refunds with the token and return the provider's refund id.
    i.refunded += amount;
    return text(`refunded ${money(amount, currency)} on ${invoice} to ${i.name} (refund re_demo_${Date.now().toString(36)})`);
  }),
);

server.registerTool(
  'delete_customer',
  {
    description: 'Deletes a customer and their payment methods. Cannot be undone.',
    inputSchema: { customer: z.string().describe('the customer id, e.g. cus_Q8f2LmA91') },
  },
  withCredential(async ({ customer }) => {
    if (!customers.has(customer)) return text(`no customer ${customer}`, true);
    // A real server would DELETE /v1/customers/{id}.
    customers.delete(customer);
    return text(`deleted customer ${customer}`);
  }),
);

process.stderr.write(`countersign demo payments server ready (${TOKEN === '' ? 'no credential: every call will be refused' : 'credential present'})\n`);
await server.connect(new StdioServerTransport());
