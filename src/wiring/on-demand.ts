// Adapters whose SDKs are loaded when this process first needs them, not at start: the MCP
// SDK (the gateway's server side, the upstream clients) and the credential issuers' drivers
// (pg). Loaded at start they cost every process memory whether its policy used them or not
// (the benchmark's Slack-only server: 5 MB of live heap, ~10 MB of RSS). A process whose policy
// names upstream MCP servers still loads the SDK at start, so no agent waits for it.
import type { GatewayServerOptions } from '../../adapters/http/mcp-gateway.ts';
import { Router, type Handler } from '../../adapters/http/router.ts';
import type { ToolUpstreamsOptions } from '../../adapters/mcp/upstreams.ts';
import type { CredentialIssuer } from '../core/credential-ports.ts';
import { UpstreamUnavailableError, type ToolUpstreams } from '../core/mcp-ports.ts';
import type { Policy } from '../core/policy/model.ts';
import { CREDENTIAL_KINDS, type IssuerDeps } from './platforms.ts';

interface OnFirstUse<T> {
  (): Promise<T>;
  /** The load begun so far, if any (a failed one is not kept). */
  begun(): Promise<T> | null;
}

/** One import shared by every caller; a failed one is tried again by the next. */
function onFirstUse<T>(load: () => Promise<T>): OnFirstUse<T> {
  let loading: Promise<T> | null = null;
  const get = () => {
    loading ??= load().catch((e: unknown) => {
      loading = null;
      throw e;
    });
    return loading;
  };
  return Object.assign(get, { begun: () => loading });
}

/** `/mcp` (mcp-gateway.ts) behind routes that load it on the first request to it, or at once when the policy names upstream servers. */
export function mountMcpGatewayOnDemand(router: Router, options: GatewayServerOptions): void {
  const gateway = onFirstUse(async () => {
    const { mountMcpGateway } = await import('../../adapters/http/mcp-gateway.ts');
    const inner = new Router();
    mountMcpGateway(inner, options);
    return inner;
  });
  // The gateway's own routes answer every method (405 for those it does not serve).
  const forward: Handler = async (ctx) => {
    await (await gateway()).dispatch(ctx.req, ctx.res, new URL(ctx.req.url ?? '/', 'http://localhost'));
  };
  for (const method of ['POST', 'GET', 'DELETE']) router.on(method, '/mcp', forward);
  if (options.gateway.app.policy.mcpServers.size > 0) gateway().catch(() => undefined);
}

/** The policy's upstream MCP servers (upstreams.ts), the MCP client loaded with the first connection. */
export function toolUpstreamsOnDemand(options: ToolUpstreamsOptions): ToolUpstreams {
  const upstreams = onFirstUse(async () => (await import('../../adapters/mcp/upstreams.ts')).createToolUpstreams(options));
  let closed = false;
  // Like a connection that cannot be made: nothing was sent.
  const loaded = (server: string) => {
    if (closed && upstreams.begun() === null) return Promise.reject(new UpstreamUnavailableError(server, 'the upstreams are closed'));
    return upstreams().catch((e: unknown) => {
      throw new UpstreamUnavailableError(server, `the MCP client could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
  };
  if (options.servers.size > 0) upstreams().catch(() => undefined);
  return {
    listTools: async (server) => (await loaded(server)).listTools(server),
    connect: async (server) => (await loaded(server)).connect(server),
    close: async () => {
      closed = true;
      // Never loaded: no connection was ever opened.
      await (await upstreams.begun()?.catch(() => null))?.close();
    },
  };
}

/** An issuer of each kind the policy's `credentials` entries use (the only kinds a task can ask for), its module loaded now. */
export async function credentialIssuersFor(policy: Pick<Policy, 'credentials'>, deps: IssuerDeps): Promise<CredentialIssuer[]> {
  const used = new Set([...policy.credentials.values()].map((spec) => spec.kind));
  return Promise.all(CREDENTIAL_KINDS.filter((k) => used.has(k.kind)).map(async (k) => (await k.issuer())(deps)));
}
