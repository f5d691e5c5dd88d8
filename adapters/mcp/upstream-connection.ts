import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ErrorCode, McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  UpstreamUnavailableError,
  type SecretSource,
  type ToolCallOptions,
  type ToolCallResult,
  type ToolCaller,
  type UpstreamTool,
} from '../../src/core/mcp-ports.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { McpServerSpec } from '../../src/core/policy/model.ts';
import { createRedactor, type Redactor } from './redact-injected.ts';
import { createUpstreamTransport, forEachLine } from './upstream-transport.ts';

// One live SDK Client to one upstream server. It is shared by every call to that server until
// it breaks: then it is retired (no new calls) and closed once its in-flight calls are settled,
// and the next connect makes a new one.

/** What a call in flight listens for besides its own answer: its HTTP stream breaking. */
interface CallInFlight {
  connection: UpstreamConnection;
  lost(error: string): void;
}

// The HTTP transport reports a broken response stream through `onerror`, not by failing the
// request (which would otherwise wait for its timeout). The stream is read in the async context
// of the send that opened it, so the call whose stream broke is the one in this storage.
const inFlight = new AsyncLocalStorage<CallInFlight>();

const STDERR_LINE_MAX = 4096;
const STDERR_LOGGED_MAX = 500;
const LIST_PAGES_MAX = 1000;

export interface ConnectionOptions {
  spec: McpServerSpec;
  secrets: SecretSource;
  logger: Logger;
  clientInfo: { name: string; version: string };
  connectTimeoutMs: number;
  /** The server said its tool list changed. */
  onToolsChanged(): void;
  /** The connection can no longer be used (closed or retired): forget it. */
  onGone(connection: UpstreamConnection): void;
  /** The connection closed (a stdio server's process has exited). */
  onClosed(connection: UpstreamConnection): void;
}

export class UpstreamConnection implements ToolCaller {
  private retired = false;
  private closed = false;
  private calls = 0;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly client: Client,
    private readonly options: ConnectionOptions,
    private readonly redactor: Redactor,
  ) {}

  /** Connects and initializes. Throws UpstreamUnavailableError (nothing was sent but `initialize`). */
  static async open(options: ConnectionOptions): Promise<UpstreamConnection> {
    const { spec, logger } = options;
    const built = createUpstreamTransport(spec, options.secrets);
    const redactor = createRedactor(built.injected);
    const longestInjected = Math.max(0, ...built.injected.map((v) => v.length));
    if (built.stderr) {
      forEachLine(built.stderr, STDERR_LINE_MAX, (line, truncated) => {
        // A cut line may end with the head of a secret: drop as much as the longest could be.
        const kept = truncated ? line.slice(0, Math.max(0, line.length - longestInjected)) : line;
        logger.debug({ upstream: spec.name, line: redactor.text(kept).slice(0, STDERR_LOGGED_MAX) }, 'upstream stderr');
      });
    }
    const client = new Client(options.clientInfo, { capabilities: {} });
    const connection = new UpstreamConnection(client, options, redactor);
    built.transport.onerror = (error) => connection.transportError(error);
    client.onclose = () => connection.transportClosed();
    client.onerror = () => {}; // the transport's errors are handled (and logged) above
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      logger.debug({ upstream: spec.name }, 'upstream tool list changed');
      options.onToolsChanged();
    });
    try {
      await client.connect(built.transport, { timeout: options.connectTimeoutMs });
    } catch (error) {
      connection.closed = true;
      await client.close().catch(() => {});
      throw new UpstreamUnavailableError(spec.name, `upstream ${spec.name}: could not connect: ${redactor.text(describe(error))}`);
    }
    if (connection.closed) throw new UpstreamUnavailableError(spec.name, `upstream ${spec.name}: closed while connecting`);
    // The name is the upstream's to choose: one that echoes its credential must not put it in the log.
    const serverName = client.getServerVersion()?.name;
    logger.info({ upstream: spec.name, transport: built.kind, server: serverName === undefined ? null : redactor.text(serverName).slice(0, 200) }, 'upstream connected');
    return connection;
  }

  /** Open and not retired: new calls may use it. */
  get usable(): boolean {
    return !this.retired && !this.closed;
  }

  /**
   * Sends one `tools/call`, never retried. Throws UpstreamUnavailableError only when the call
   * certainly did not leave (the connection was already closed, the HTTP connection was refused
   * or the upstream no longer knows the session): every other failure is a result.
   */
  async call(tool: string, args: Record<string, unknown>, options: ToolCallOptions): Promise<ToolCallResult> {
    const name = this.options.spec.name;
    if (this.closed) throw new UpstreamUnavailableError(name, `upstream ${name}: the connection closed before the call was sent`);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let markLost: (error: string) => void = () => {};
    const lost = new Promise<{ lost: string }>((resolve) => (markLost = (error) => resolve({ lost: error })));
    const onProgress = options.onProgress;
    this.calls += 1;
    try {
      const request = inFlight.run({ connection: this, lost: markLost }, () =>
        this.client.request({ method: 'tools/call', params: { name: tool, arguments: args } }, CallToolResultSchema, {
          timeout: options.timeoutMs,
          resetTimeoutOnProgress: false,
          ...(options.signal ? { signal: options.signal } : {}),
          ...(onProgress
            ? {
                onprogress: (p) =>
                  onProgress({
                    progress: p.progress,
                    ...(p.total === undefined ? {} : { total: p.total }),
                    ...(p.message === undefined ? {} : { message: this.redactor.text(p.message) }),
                  }),
              }
            : {}),
        }),
      );
      // The SDK validates an outputSchema only after listTools through this client; the
      // gateway passes results on, so `request` (not callTool) keeps a local validation error
      // from being mistaken for the upstream's answer.
      const outcome = await Promise.race([
        request.then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        ),
        lost,
      ]);
      if ('lost' in outcome) {
        this.retire(`call stream broke: ${outcome.lost}`);
        return { kind: 'lost', error: outcome.lost, duration_ms: elapsed() };
      }
      if ('result' in outcome) {
        const result = this.redactor.deep(outcome.result) as Record<string, unknown>;
        return { kind: 'result', result, is_error: outcome.result.isError === true, duration_ms: elapsed() };
      }
      return this.failed(outcome.error, options, elapsed());
    } finally {
      this.calls -= 1;
      if (this.retired && this.calls === 0) void this.close();
    }
  }

  private failed(error: unknown, options: ToolCallOptions, duration_ms: number): ToolCallResult {
    const name = this.options.spec.name;
    if (options.signal?.aborted) return { kind: 'lost', error: 'cancelled by the caller before the upstream answered', duration_ms };
    if (error instanceof McpError) {
      const data = error.data as { timeout?: unknown } | undefined;
      if (error.code === ErrorCode.RequestTimeout && data?.timeout === options.timeoutMs) return { kind: 'timeout', duration_ms };
      // Protocol closes with this code after onclose ran, so `closed` tells it from an upstream's own -32000.
      if (error.code === ErrorCode.ConnectionClosed && this.closed) return { kind: 'lost', error: 'the connection closed', duration_ms };
      const message = error.message.replace(/^MCP error -?\d+: /, '');
      return { kind: 'error', code: error.code, message: this.redactor.text(message), duration_ms };
    }
    if (neverLeft(error)) {
      this.retire(describe(error));
      throw new UpstreamUnavailableError(name, `upstream ${name}: ${this.redactor.text(describe(error))}`);
    }
    this.retire(describe(error));
    return { kind: 'lost', error: this.redactor.text(describe(error)), duration_ms };
  }

  /** All pages of the server's tools, redacted. Throws UpstreamUnavailableError. */
  async listTools(): Promise<UpstreamTool[]> {
    const name = this.options.spec.name;
    const tools: UpstreamTool[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    try {
      for (let page = 0; page < LIST_PAGES_MAX; page += 1) {
        const answer = await this.client.listTools(cursor === undefined ? {} : { cursor }, { timeout: this.options.spec.timeout_ms });
        for (const tool of answer.tools) tools.push(this.redactor.deep(toUpstreamTool(tool)));
        cursor = answer.nextCursor;
        if (cursor === undefined || seen.has(cursor)) return tools;
        seen.add(cursor);
      }
      return tools;
    } catch (error) {
      if (!(error instanceof McpError) || error.code === ErrorCode.ConnectionClosed) this.retire(describe(error));
      throw new UpstreamUnavailableError(name, `upstream ${name}: listing tools failed: ${this.redactor.text(describe(error))}`);
    }
  }

  /** No new calls; closed once the calls in flight have settled. */
  retire(reason: string): void {
    if (this.retired) return;
    this.retired = true;
    this.options.logger.warn({ upstream: this.options.spec.name, reason: this.redactor.text(reason) }, 'upstream connection retired');
    this.options.onGone(this);
    if (this.calls === 0) void this.close();
  }

  close(): Promise<void> {
    this.closing ??= this.client.close().catch((error: unknown) => {
      this.options.logger.warn({ upstream: this.options.spec.name, error: this.redactor.text(describe(error)) }, 'upstream close failed');
    });
    return this.closing;
  }

  private transportError(error: Error): void {
    const call = inFlight.getStore();
    // The transport reports a refused send here too, before the send rejects: that one is the
    // rejection's to classify (it never left), not a broken stream.
    if (call?.connection === this && !neverLeft(error)) {
      call.lost(this.redactor.text(describe(error)));
      return;
    }
    this.options.logger.warn({ upstream: this.options.spec.name, error: this.redactor.text(describe(error)) }, 'upstream transport error');
  }

  private transportClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.retired) this.options.logger.warn({ upstream: this.options.spec.name }, 'upstream connection closed');
    this.retired = true;
    this.options.onGone(this);
    this.options.onClosed(this);
  }
}

/** Failures that prove the request never reached the upstream. */
function neverLeft(error: unknown): boolean {
  // The upstream answered 404 to the session: it is gone there, and the request was refused unread.
  if (error instanceof StreamableHTTPError) return error.code === 404;
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return cause?.code === 'ECONNREFUSED';
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function toUpstreamTool(tool: {
  name: string;
  title?: string | undefined;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown> | undefined;
  annotations?: Record<string, unknown> | undefined;
}): UpstreamTool {
  return {
    name: tool.name,
    inputSchema: tool.inputSchema,
    ...(tool.title === undefined ? {} : { title: tool.title }),
    ...(tool.description === undefined ? {} : { description: tool.description }),
    ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema }),
    ...(tool.annotations === undefined ? {} : { annotations: tool.annotations }),
  };
}
