import { decodeJwt } from 'jose';
import { actionDigest } from '../../src/core/execution.ts';
import { ExecutorUnreachableError, type Executor, type SentResult } from '../../src/core/execution-ports.ts';
import { UpstreamUnavailableError, type ToolUpstreams } from '../../src/core/mcp-ports.ts';
import { MCP_EXECUTOR_KIND } from '../../src/core/policy/mcp-servers.ts';
import { resultText } from '../../src/core/mcp-answers.ts';

// The executor of an approved MCP call: the execute worker claims the proposal, then this
// calls the upstream tool with the approved arguments, once. The token is not sent upstream
// (an MCP server knows nothing of it); it is checked here instead: its action digest must be
// the digest of what is about to be sent, so only exactly what people approved leaves.

export function createMcpExecutor(upstreams: ToolUpstreams): Executor {
  return {
    kind: MCP_EXECUTOR_KIND,
    async connect(spec) {
      const server = String(spec.settings['server']);
      let caller;
      try {
        caller = await upstreams.connect(server);
      } catch (e) {
        if (e instanceof UpstreamUnavailableError) throw new ExecutorUnreachableError(e.message);
        throw e;
      }
      return {
        async send(token, request): Promise<SentResult> {
          let digest: unknown;
          try {
            digest = decodeJwt(token)['action_digest'];
          } catch {
            digest = null;
          }
          if (digest !== actionDigest(request.action)) return { kind: 'not_sent', why: 'action_digest_mismatch' };
          let r;
          try {
            r = await caller.call(request.action.operation, request.action.parameters, { timeoutMs: spec.timeout_ms });
          } catch (e) {
            // Thrown only when the call certainly never left (the connection was already gone).
            if (e instanceof UpstreamUnavailableError) return { kind: 'not_sent', why: 'upstream_unreachable' };
            throw e;
          }
          switch (r.kind) {
            case 'result':
              return { kind: 'tool_result', is_error: r.is_error, text: resultText(r.result), duration_ms: r.duration_ms, kept: r.result };
            case 'error':
              return { kind: 'tool_error', code: r.code, message: r.message, duration_ms: r.duration_ms };
            default:
              return r;
          }
        },
        close() {
          // The upstream connection is shared by every call; ToolUpstreams.close() ends it.
        },
      };
    },
  };
}
