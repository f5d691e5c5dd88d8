#!/usr/bin/env node
// A real MCP server over stdio (the SDK's McpServer), standing in for an upstream the gateway
// starts as a child process. Plain JavaScript so it runs with `node` alone. The tools are those
// of mcp-upstream.ts (keep the two in step); the credential it is given is env FILES_TOKEN.
//
// Every tools/call is appended as a JSON line to the file named by UPSTREAM_CALL_LOG (when set)
// before it runs, so a test can count the calls that reached the server, even one it died in.
import { appendFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const server = new McpServer({ name: 'fake-stdio-upstream', version: '1.0.0' });
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const record = (tool, args) => {
  const log = process.env.UPSTREAM_CALL_LOG;
  if (log) appendFileSync(log, `${JSON.stringify({ tool, args, pid: process.pid })}\n`);
};

server.registerTool(
  'echo',
  { description: 'Returns its arguments as JSON text.', inputSchema: z.looseObject({ show_credential: z.boolean().optional() }) },
  async (args) => {
    record('echo', args);
    const answer = args.show_credential === true ? { args, credential: process.env.FILES_TOKEN ?? null } : { args };
    return text(JSON.stringify(answer));
  },
);
server.registerTool('fail', { description: 'Always fails (an isError result).', inputSchema: z.object({}) }, async (args) => {
  record('fail', args);
  return { content: [{ type: 'text', text: 'the tool failed' }], isError: true };
});
server.registerTool(
  'slow',
  { description: 'Answers after `ms` (reporting progress when asked to).', inputSchema: z.object({ ms: z.number().int().min(0) }) },
  async (args, extra) => {
    record('slow', args);
    const token = extra._meta?.progressToken;
    if (token !== undefined) {
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2, message: 'halfway' } });
    }
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, args.ms);
      extra.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return text(`waited ${args.ms} ms`);
  },
);
server.registerTool('crash', { description: 'Breaks the connection mid-call (after reporting progress, when asked for it).', inputSchema: z.object({}) }, async (args, extra) => {
  record('crash', args);
  const token = extra._meta?.progressToken;
  if (token !== undefined) {
    await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 0, message: 'crashing' } });
  }
  process.exit(1);
});
server.registerTool(
  'refund',
  { description: 'Refunds an amount on a charge.', inputSchema: z.object({ charge_id: z.string(), amount: z.number(), currency: z.string().optional() }) },
  async (args) => {
    record('refund', args);
    return text(`refunded ${args.amount} on ${args.charge_id}`);
  },
);
server.registerTool(
  'add_tool',
  { description: 'Adds a tool named `name` (the server then says its list changed).', inputSchema: z.object({ name: z.string() }) },
  async (args) => {
    record('add_tool', args);
    server.registerTool(args.name, { description: 'Added at run time.', inputSchema: z.object({}) }, async () => text(args.name));
    return text(`added ${args.name}`);
  },
);

// As in mcp-upstream.ts: an unknown tool gets a JSON-RPC error (-32602), as the spec has it,
// rather than McpServer's isError result. The SDK has no hook for it, so its handler is wrapped.
const handlers = server.server._requestHandlers;
const original = handlers.get('tools/call');
handlers.delete('tools/call');
server.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  if (!Object.hasOwn(server._registeredTools, request.params.name)) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
  return original(request, extra);
});

// A server that logs its own credential: the gateway must redact it from what it logs.
process.stderr.write(`fake stdio upstream starting, token ${process.env.FILES_TOKEN ?? '(none)'}\n`);
await server.connect(new StdioServerTransport());
