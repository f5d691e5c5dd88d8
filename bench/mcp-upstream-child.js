import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

// The MCP gateway benchmark's upstream: the SDK's McpServer behind its Streamable HTTP
// transport, one session per connected client (as test/helpers/mcp-upstream.ts, cut down to
// `echo`), in a process of its own so its CPU is not the load generator's. Plain JavaScript,
// like the countersign child: no TypeScript loader in a measured process.
// Reports {kind:'ready', url}; answers {kind:'cpu'} with {kind:'cpu', ms}.

const transports = new Map();

async function newSession() {
  const mcp = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
  mcp.registerTool('echo', { description: 'Returns its arguments as JSON text.', inputSchema: z.looseObject({ text: z.string().optional() }) }, async (args) => ({
    content: [{ type: 'text', text: JSON.stringify({ args }) }],
  }));
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => transports.set(id, transport),
    onsessionclosed: (id) => transports.delete(id),
  });
  await mcp.connect(transport);
  return transport;
}

async function readJson(req) {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text === '' ? undefined : JSON.parse(text);
}

const server = createServer((req, res) => {
  void (async () => {
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const session = req.headers['mcp-session-id'];
    let transport = typeof session === 'string' ? transports.get(session) : undefined;
    if (!transport) {
      if (typeof session === 'string' || req.method !== 'POST') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      transport = await newSession();
    }
    await transport.handleRequest(req, res, body);
  })().catch((error) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(String(error));
  });
});

server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ kind: 'ready', url: `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}/mcp` });
});
process.on('message', (m) => {
  if (m.kind === 'cpu') {
    const u = process.cpuUsage();
    process.send?.({ kind: 'cpu', ms: (u.user + u.system) / 1000 });
  }
});
process.on('disconnect', () => process.exit(0));
