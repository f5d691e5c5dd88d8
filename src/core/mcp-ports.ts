// The ports of the MCP gateway (issue 14): the upstream MCP servers countersign calls for the
// agent, the secrets it injects into those calls, and where a held call's result waits for the
// agent to pick it up. Adapters in adapters/mcp and adapters/redis implement them.

/** A tool as an upstream server lists it (MCP `Tool`, the fields the gateway passes on). */
export interface UpstreamTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/**
 * What one `tools/call` to an upstream came to. Every value countersign injected (a header, an
 * environment variable) is already redacted from `result`, `message` and `error`, whatever the
 * upstream echoed.
 */
export type ToolCallResult =
  /** The upstream answered with a CallToolResult; `is_error` is its `isError` (the tool failed). */
  | { kind: 'result'; result: Record<string, unknown>; is_error: boolean; duration_ms: number }
  /** The upstream answered with a JSON-RPC error (unknown tool, invalid arguments): the tool did not say it ran. */
  | { kind: 'error'; code: number; message: string; duration_ms: number }
  /** No answer within the timeout: the call left, so what happened is unknown. */
  | { kind: 'timeout'; duration_ms: number }
  /** The connection (HTTP stream, stdio process) broke after the call was sent: unknown too. */
  | { kind: 'lost'; error: string; duration_ms: number };

export interface ToolProgress {
  progress: number;
  total?: number;
  message?: string;
}

export interface ToolCallOptions {
  timeoutMs: number;
  onProgress?: (p: ToolProgress) => void;
  signal?: AbortSignal;
}

/**
 * A connected upstream: `call` is the only way a request leaves countersign for it. It throws
 * UpstreamUnavailableError only when the call certainly never left (the connection was already
 * closed, the connection was refused); anything that may have been sent is a result.
 */
export interface ToolCaller {
  call(tool: string, args: Record<string, unknown>, options: ToolCallOptions): Promise<ToolCallResult>;
}

/** The upstream servers of the policy's `mcp.servers`, by name. */
export interface ToolUpstreams {
  /** The server's tools (cached; refreshed when the server says its list changed, or after a while). Throws UpstreamUnavailableError. */
  listTools(server: string): Promise<UpstreamTool[]>;
  /** Connects, or reuses the open connection. Throws UpstreamUnavailableError when it cannot: then nothing was sent. */
  connect(server: string): Promise<ToolCaller>;
  /** Closes every connection (stdio servers are stopped). */
  close(): Promise<void>;
}

/** Nothing was sent: the upstream could not be reached (or started). Safe to retry. */
export class UpstreamUnavailableError extends Error {
  constructor(
    readonly server: string,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamUnavailableError';
  }
}

/**
 * Where credentials come from: the environment today (a name is an environment variable),
 * a file or Vault later. Read when an upstream connection opens (a rotated secret is used from
 * the next connection on); never written anywhere.
 */
export interface SecretSource {
  get(name: string): string | undefined;
}

/**
 * The upstream's answer to an approved (or allowed, task-augmented) call, kept for the agent to
 * pick up with its next identical call or `tasks/result`. First write wins; kept `ttlSeconds`.
 */
export interface ToolResultStore {
  keep(proposalId: string, result: Record<string, unknown>): Promise<void>;
  get(proposalId: string): Promise<Record<string, unknown> | null>;
}
