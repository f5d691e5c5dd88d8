import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Io } from './io.ts';

// The MCP half of `npm run demo`: the demo agent, as an MCP client (the SDK's own Client over
// Streamable HTTP), calls the built-in example's demo payments server through countersign's
// POST /mcp. One call of each kind: a read the policy allows (answered at once), a refund that
// needs a person (sent as a task, so the demo does not wait), a delete the policy refuses.

export const MCP_DEMO_SERVER = 'billing';

export const MCP_DEMO_CALLS = {
  read: { name: `${MCP_DEMO_SERVER}__list_invoices`, arguments: { customer: 'cus_Q8f2LmA91', reason: 'Dana Whitfield says she was charged twice in March; checking her invoices.' } },
  refund: {
    name: `${MCP_DEMO_SERVER}__refund`,
    arguments: { invoice: 'INV-4712', amount: 420.0, currency: 'EUR', reason: 'INV-4712 duplicates INV-4711 (Dana Whitfield, charged twice on 3 March): refunding the duplicate.' },
  },
  delete: { name: `${MCP_DEMO_SERVER}__delete_customer`, arguments: { customer: 'cus_Q8f2LmA91', reason: 'Dana asked us to close her account.' } },
} as const;

export interface McpDemoOptions {
  /** countersign's base URL. */
  url: string;
  /** The agent's bearer key for /mcp. */
  key: string;
  /** How to write the key in a shell command without printing it: `$(cat FILE)` or `$VARIABLE`. */
  keyInShell: string;
  /** The number of the first line (after the signed proposals). */
  firstNumber: number;
}

/** Runs the three calls and prints one line for each; how many wait for a person (0 or 1). */
export async function runMcpDemo(o: McpDemoOptions, io: Io): Promise<{ pending: number }> {
  const client = new Client({ name: 'countersign-demo-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${o.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${o.key}` } } });
  const line = (n: number, what: string, text: string) => io.out(`${String(o.firstNumber + n).padStart(2)}. MCP ${what}: ${text}`);
  try {
    try {
      await client.connect(transport);
    } catch (e) {
      if (e instanceof StreamableHTTPError && e.code === 401) {
        io.out(`MCP calls skipped: ${o.url}/mcp refused the agent's MCP key (401)`);
        return { pending: 0 };
      }
      throw e;
    }
    const { tools } = await client.listTools();
    const missing = Object.values(MCP_DEMO_CALLS).filter((c) => !tools.some((t) => t.name === c.name));
    if (missing.length > 0) {
      io.out(`MCP calls skipped: this countersign has no ${missing.map((c) => c.name).join(', ')} (the built-in example policy's "${MCP_DEMO_SERVER}" MCP server has them)`);
      return { pending: 0 };
    }

    const read = await client.callTool(MCP_DEMO_CALLS.read);
    line(0, `${MCP_DEMO_CALLS.read.name} (a read, allowed by policy)`, read['isError'] === true ? `failed: ${oneLine(textOf(read))}` : 'answered at once through countersign:');
    if (read['isError'] !== true) for (const l of textOf(read).split('\n')) io.out(`      ${l}`);

    const refund = await refundAsTask(client);
    line(1, `${MCP_DEMO_CALLS.refund.name} (needs a person)`, refund.text);

    const denied = await client.callTool(MCP_DEMO_CALLS.delete);
    line(2, `${MCP_DEMO_CALLS.delete.name} (refused by policy)`, oneLine(textOf(denied)));

    io.out('point your own MCP client at countersign as this agent, e.g. Claude Code:');
    io.out(`  claude mcp add --transport http countersign ${o.url}/mcp --header "Authorization: Bearer ${o.keyInShell}"`);
    io.out('  (other clients: README, "Put countersign between your agent and its tools")');
    return { pending: refund.pending ? 1 : 0 };
  } finally {
    await client.close();
  }
}

/**
 * The refund with the Tasks extension: countersign answers at once with a task (the proposal).
 * While people decide, the demo stops there; once they have, the same call again attaches to the
 * same proposal, and the task's result is the refund's (given once: the next run proposes anew).
 */
async function refundAsTask(client: Client): Promise<{ pending: boolean; text: string }> {
  const stream = client.experimental.tasks.callToolStream(MCP_DEMO_CALLS.refund, CallToolResultSchema, { task: {} });
  for await (const message of stream) {
    if (message.type === 'error') return { pending: false, text: `failed: ${message.error.message}` };
    if (message.type === 'result') return { pending: false, text: oneLine(textOf(message.result)) };
    if (message.type !== 'taskCreated') continue;
    const { task } = message;
    if (task.status === 'working' || task.status === 'input_required') {
      return { pending: true, text: `${task.taskId} ${task.statusMessage ?? 'pending'}: approve or deny it in the console, then run the demo again for its outcome` };
    }
    // Decided already (an earlier run's proposal): its outcome, whichever it was.
    const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    return { pending: false, text: `${task.taskId} ${task.status}: ${oneLine(textOf(result))}` };
  }
  throw new McpError(-32603, 'the task stream ended without a task');
}

function textOf(result: unknown): string {
  const content = (result as { content?: unknown }).content;
  if (!Array.isArray(content)) return '';
  return (content as { type?: unknown; text?: unknown }[]).flatMap((c) => (c.type === 'text' && typeof c.text === 'string' ? [c.text] : [])).join('\n');
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' | ');
