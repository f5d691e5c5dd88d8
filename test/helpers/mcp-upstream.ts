import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { CallToolRequestSchema, ErrorCode, McpError, type CallToolResult, type ServerNotification, type ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

// A real MCP server (the SDK's McpServer behind its Streamable HTTP transport) standing in for
// an upstream the gateway calls. It records every tools/call with the HTTP headers it came
// with; tests wait on `nextCall()` rather than sleeping. The tools are the same as those of
// mcp-stdio-upstream.mjs (keep the two in step).

export interface UpstreamCall {
  tool: string;
  args: Record<string, unknown>;
  headers: Record<string, string>;
}

export interface HttpUpstream {
  /** The MCP endpoint (`http://127.0.0.1:<port>/mcp`). */
  url: string;
  calls: UpstreamCall[];
  /** The next call not yet returned by an earlier `nextCall` (already arrived, or when it does). */
  nextCall(): Promise<UpstreamCall>;
  /** Sessions the server has open (each connection of a client is one). */
  sessions(): number;
  /**
   * Breaks the `crash` calls that are holding: a `crash` sent with a progress token reports
   * progress first (so the client has the response stream open) and holds until this.
   */
  crashHeld(): void;
  /** Forgets every session, as a restarted server does: their next requests get 404. */
  forgetSessions(): void;
  close(): Promise<void>;
}

export interface HttpUpstreamOptions {
  /** The name the server gives in `initialize` (default `fake-upstream`). */
  serverName?: string;
}

/** The fakes' tools; `credential` is what this fake received as the injected secret. */
export function registerUpstreamTools(
  server: McpServer,
  hooks: { record(tool: string, args: Record<string, unknown>, extra: ToolExtra): void; credential(extra: ToolExtra): string | null; crash(extra: ToolExtra): Promise<void> },
): void {
  const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
  server.registerTool(
    'echo',
    { description: 'Returns its arguments as JSON text.', inputSchema: z.looseObject({ show_credential: z.boolean().optional() }) },
    async (args, extra) => {
      hooks.record('echo', args, extra);
      const answer = args.show_credential === true ? { args, credential: hooks.credential(extra) } : { args };
      return text(JSON.stringify(answer));
    },
  );
  server.registerTool('fail', { description: 'Always fails (an isError result).', inputSchema: z.object({}) }, async (args, extra) => {
    hooks.record('fail', args, extra);
    return { content: [{ type: 'text', text: 'the tool failed' }], isError: true };
  });
  server.registerTool(
    'slow',
    { description: 'Answers after `ms` (reporting progress when asked to).', inputSchema: z.object({ ms: z.number().int().min(0) }) },
    async (args, extra) => {
      hooks.record('slow', args, extra);
      const token = extra._meta?.progressToken;
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2, message: 'halfway' } });
      }
      // Waits the time, or until the caller cancels (its timeout sends notifications/cancelled).
      await new Promise<void>((resolve) => {
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
    hooks.record('crash', args, extra);
    await hooks.crash(extra);
    return text('unreachable');
  });
  server.registerTool(
    'refund',
    {
      description: 'Refunds an amount on a charge.',
      inputSchema: z.object({ charge_id: z.string(), amount: z.number(), currency: z.string().optional() }),
    },
    async (args, extra) => {
      hooks.record('refund', args, extra);
      return text(`refunded ${args.amount} on ${args.charge_id}`);
    },
  );
  server.registerTool('add_tool', { description: 'Adds a tool named `name` (the server then says its list changed).', inputSchema: z.object({ name: z.string() }) }, async (args, extra) => {
    hooks.record('add_tool', args, extra);
    server.registerTool(args.name, { description: 'Added at run time.', inputSchema: z.object({}) }, async () => text(args.name));
    return text(`added ${args.name}`);
  });
  answerUnknownToolsWithJsonRpcError(server);
}

type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * McpServer answers a call to an unknown tool with an isError result; the spec (and many
 * servers) answer with a JSON-RPC error (-32602), which is the case the gateway must tell
 * apart. The SDK offers no hook for it, so the registered handler is wrapped.
 */
function answerUnknownToolsWithJsonRpcError(server: McpServer): void {
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, (request: unknown, extra: unknown) => Promise<unknown>> })._requestHandlers;
  const original = handlers.get('tools/call');
  if (!original) throw new Error('McpServer has no tools/call handler');
  handlers.delete('tools/call');
  server.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const known = (server as unknown as { _registeredTools: Record<string, unknown> })._registeredTools;
    if (!Object.hasOwn(known, request.params.name)) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    return (await original(request, extra)) as CallToolResult;
  });
}

export async function startHttpUpstream(options: HttpUpstreamOptions = {}): Promise<HttpUpstream> {
  const calls: UpstreamCall[] = [];
  const waiting: ((call: UpstreamCall) => void)[] = [];
  let taken = 0;
  const transports = new Map<string, StreamableHTTPServerTransport>();
  // The socket each tools/call arrived on, so `crash` can break exactly that one.
  const sockets = new Map<string, Socket>();
  const held: (() => void)[] = [];
  const socketKey = (session: string | undefined, id: unknown) => `${session ?? ''}:${String(id)}`;

  const newSession = async (): Promise<StreamableHTTPServerTransport> => {
    const mcp = new McpServer({ name: options.serverName ?? 'fake-upstream', version: '1.0.0' });
    registerUpstreamTools(mcp, {
      record(tool, args, extra) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(extra.requestInfo?.headers ?? {})) if (typeof v === 'string') headers[k] = v;
        const call = { tool, args, headers };
        calls.push(call);
        const waiter = waiting.shift();
        if (waiter) {
          taken += 1;
          waiter(call);
        }
      },
      credential: (extra) => {
        const auth = extra.requestInfo?.headers.authorization;
        return typeof auth === 'string' ? auth : null;
      },
      async crash(extra) {
        const token = extra._meta?.progressToken;
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 0, message: 'crashing' } });
          await new Promise<void>((resolve) => held.push(resolve));
        }
        sockets.get(socketKey(extra.sessionId, extra.requestId))?.destroy();
      },
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
      onsessionclosed: (id) => {
        transports.delete(id);
      },
    });
    await mcp.connect(transport);
    return transport;
  };

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
      for (const message of Array.isArray(body) ? body : [body]) {
        const m = message as { method?: unknown; id?: unknown } | undefined;
        if (m?.method === 'tools/call' && m.id !== undefined) sockets.set(socketKey(typeof session === 'string' ? session : undefined, m.id), req.socket);
      }
      await transport.handleRequest(req, res, body);
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    nextCall() {
      const index = taken;
      const arrived = calls[index];
      if (arrived) {
        taken += 1;
        return Promise.resolve(arrived);
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    sessions: () => transports.size,
    forgetSessions: () => transports.clear(),
    crashHeld: () => {
      for (const release of held.splice(0)) release();
    },
    async close() {
      for (const transport of transports.values()) await transport.close().catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text === '' ? undefined : JSON.parse(text);
}
