import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import {
  CallToolRequestSchema,
  CancelTaskRequestSchema,
  ErrorCode,
  GetTaskPayloadRequestSchema,
  GetTaskRequestSchema,
  ListToolsRequestSchema,
  McpError,
  RELATED_TASK_META_KEY,
} from '@modelcontextprotocol/sdk/types.js';
import { callTool, taskResult, type GatewayDeps } from '../../src/app/call-tool.ts';
import { cancelProposal, getProposal } from '../../src/app/proposals.ts';
import { AgentRevokedError, CountersignError, ForbiddenError, NotFoundError, ValidationError } from '../../src/core/errors.ts';
import { taskOf } from '../../src/core/mcp-answers.ts';
import { agentFacingTool } from '../../src/core/mcp-tool-call.ts';
import type { AgentSpec } from '../../src/core/policy/model.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import type { RequestAuthenticator } from './authenticate.ts';
import { readJsonBody } from './json-body.ts';
import { sendJson, type Router } from './router.ts';

// `POST /mcp`: the gateway's Streamable HTTP endpoint, stateless (no session: any replica
// answers any request; what lasts, proposals and results, is in Redis). Each request gets its
// own SDK Server bound to the authenticated agent, so a handler can never act for another.
// This file only translates: the decisions are src/app/call-tool.ts's.

/** An agent that is revoked: a JSON-RPC server error (the HTTP request itself was authentic). */
export const AGENT_REVOKED_CODE = -32003;
const TASK_POLL_MS = 1000;
const SHARED_VALIDATOR = new AjvJsonSchemaValidator();

export interface GatewayServerOptions {
  gateway: GatewayDeps;
  authenticate: RequestAuthenticator;
  version: string;
}

function toMcpError(e: unknown, logger: Logger): unknown {
  if (e instanceof McpError) return e;
  if (e instanceof AgentRevokedError) return new McpError(AGENT_REVOKED_CODE, e.message);
  if (e instanceof ValidationError) return new McpError(ErrorCode.InvalidParams, e.message, { issues: e.issues });
  if (e instanceof NotFoundError) return new McpError(ErrorCode.InvalidParams, e.message);
  if (e instanceof CountersignError) return new McpError(ErrorCode.InternalError, e.message);
  // Anything else (a Redis reply, a bug) would reach the agent as its own message, store
  // insides and all: it is logged here, and the agent told only that it failed.
  logger.error({ err: e }, 'an MCP request failed');
  return new McpError(ErrorCode.InternalError, 'countersign could not complete this request');
}

function guarded<A extends unknown[], R>(logger: Logger, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      throw toMcpError(e, logger);
    }
  };
}

function gatewayServer(g: GatewayDeps, agent: AgentSpec, signedAt: number | null, version: string): Server {
  const server = new Server(
    { name: 'countersign', version },
    {
      capabilities: { tools: {}, tasks: { cancel: {}, requests: { tools: { call: {} } } } },
      // One for every request's Server: building an Ajv each time was a tenth of a call's CPU.
      jsonSchemaValidator: SHARED_VALIDATOR,
      instructions: 'Every tool call goes through countersign: it may run at once, be refused, or wait for people to approve. Say why in `reason`.',
    },
  );
  const { app } = g;
  const viewer = { kind: 'agent' as const, id: agent.id };
  const resultTtlMs = g.pickupWindowMs;
  const task = (p: Proposal) => taskOf(p, resultTtlMs, app.clock.now(), TASK_POLL_MS);
  // A task of another agent does not exist, as far as this one can tell.
  const ownProposal = async (id: string) => {
    try {
      return await getProposal(app, viewer, id);
    } catch (e) {
      if (e instanceof ForbiddenError || e instanceof NotFoundError) throw new McpError(ErrorCode.InvalidParams, `Task not found: ${id.slice(0, 100)}`);
      throw e;
    }
  };

  server.setRequestHandler(
    ListToolsRequestSchema,
    guarded(app.logger, async () => {
      const lists = await Promise.all(
        [...app.policy.mcpServers.keys()].map(async (name) => {
          try {
            return (await g.upstreams.listTools(name)).flatMap((t) => {
              const tool = agentFacingTool(name, t);
              if (tool === null) app.logger.warn({ server: name, tool: t.name.slice(0, 100) }, 'an upstream tool is left out: <server>__<tool> would not be a valid tool name');
              return tool === null ? [] : [tool];
            });
          } catch (e) {
            app.logger.warn({ server: name, error: (e as Error).message }, 'an MCP upstream cannot list its tools now; its tools are left out');
            return [];
          }
        }),
      );
      return { tools: lists.flat() };
    }),
  );

  server.setRequestHandler(
    CallToolRequestSchema,
    guarded(app.logger, async (request, extra) => {
      const progressToken = request.params._meta?.progressToken;
      const onProgress =
        progressToken === undefined
          ? undefined
          : (p: { progress: number; total?: number; message?: string }) => {
              extra.sendNotification({ method: 'notifications/progress', params: { progressToken, ...p } }).catch(() => undefined);
            };
      const answer = await callTool(g, { agent, signedAt }, request.params.name, request.params.arguments ?? {}, {
        task: request.params.task !== undefined,
        signal: extra.signal,
        ...(onProgress === undefined ? {} : { onProgress }),
      });
      if (answer.kind === 'task') return { task: task(answer.proposal) };
      return answer.answer as { content: [] };
    }),
  );

  server.setRequestHandler(
    GetTaskRequestSchema,
    guarded(app.logger, async (request) => task(await ownProposal(request.params.taskId))),
  );

  server.setRequestHandler(
    GetTaskPayloadRequestSchema,
    guarded(app.logger, async (request, extra) => {
      const p = await ownProposal(request.params.taskId);
      const answer = await taskResult(g, agent.id, p.id, extra.signal);
      const meta = (answer as { _meta?: Record<string, unknown> })._meta ?? {};
      return { ...answer, _meta: { ...meta, [RELATED_TASK_META_KEY]: { taskId: p.id } } };
    }),
  );

  server.setRequestHandler(
    CancelTaskRequestSchema,
    guarded(app.logger, async (request) => {
      const p = await ownProposal(request.params.taskId);
      const result = await cancelProposal(app, viewer, p.id, 'cancelled by the agent (MCP tasks/cancel)');
      if (result.outcome.kind === 'refused') throw new McpError(ErrorCode.InvalidParams, `Cannot cancel task: ${result.outcome.message}`);
      return task(result.proposal);
    }),
  );
  return server;
}

/** Whether any request of the (possibly batched) body carries a progress token. */
function asksForProgress(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => {
    const meta = (m as { params?: { _meta?: { progressToken?: unknown } } } | null)?.params?._meta;
    return meta?.progressToken !== undefined;
  });
}

export function mountMcpGateway(router: Router, { gateway, authenticate, version }: GatewayServerOptions): void {
  router.on('POST', '/mcp', async (ctx) => {
    const caller = await authenticate(ctx, false, true);
    if (caller.kind !== 'agent') throw new ForbiddenError('only agents call tools');
    const body = await readJsonBody(ctx);
    const server = gatewayServer(gateway, caller.agent, caller.signedAt, version);
    // One JSON answer unless the client asked for progress: an event stream costs more to write
    // and read, and only progress notifications ever travel on it before the answer.
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: !asksForProgress(body) });
    ctx.res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(ctx.req, ctx.res, body);
  });
  // Stateless: no stream to open, no session to end.
  const notAllowed = (method: string) =>
    router.on(method, '/mcp', (ctx) =>
      sendJson(ctx.res, 405, { jsonrpc: '2.0', error: { code: ErrorCode.ConnectionClosed, message: 'countersign serves MCP statelessly: POST only' }, id: null }, { allow: 'POST' }),
    );
  notAllowed('GET');
  notAllowed('DELETE');
}
