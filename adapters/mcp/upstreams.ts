import { UpstreamUnavailableError, type SecretSource, type ToolCaller, type ToolUpstreams, type UpstreamTool } from '../../src/core/mcp-ports.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { McpServerSpec } from '../../src/core/policy/model.ts';
import { UpstreamConnection } from './upstream-connection.ts';

// The policy's upstream MCP servers, each behind one long-lived connection made on first use.
// Credentials are read when a connection is made and redacted from everything that comes back
// (see upstream-connection.ts); a connection that breaks is forgotten and the next use makes a
// new one, but a call that may have left is never sent again.

export interface ToolUpstreamsOptions {
  servers: ReadonlyMap<string, McpServerSpec>;
  secrets: SecretSource;
  logger: Logger;
  clientInfo?: { name: string; version: string };
  /** How long a server's tool list is reused (unless it says the list changed). Default 60 s. */
  listCacheMs?: number;
  /** How long connecting and `initialize` may take. Default 10 s. */
  connectTimeoutMs?: number;
  now?: () => number;
}

interface ServerState {
  connection: UpstreamConnection | null;
  connecting: Promise<UpstreamConnection> | null;
  /** Bumped when the list may have changed: a listing begun before it is not cached. */
  listGeneration: number;
  list: { tools: UpstreamTool[]; at: number; generation: number } | null;
  listing: { promise: Promise<UpstreamTool[]>; generation: number } | null;
}

export function createToolUpstreams(options: ToolUpstreamsOptions): ToolUpstreams {
  const { servers, secrets, logger } = options;
  const clientInfo = options.clientInfo ?? { name: 'countersign', version: '0' };
  const listCacheMs = options.listCacheMs ?? 60_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  const states = new Map<string, ServerState>();
  // Every open connection, retired ones too (they close when their last call settles).
  const open = new Set<UpstreamConnection>();
  const callers = new WeakMap<UpstreamConnection, ToolCaller>();
  let closed = false;

  const stateOf = (server: string): { spec: McpServerSpec; state: ServerState } => {
    const spec = servers.get(server);
    if (!spec) throw new UpstreamUnavailableError(server, `no upstream server named ${server}`);
    let state = states.get(server);
    if (!state) {
      state = { connection: null, connecting: null, listGeneration: 0, list: null, listing: null };
      states.set(server, state);
    }
    return { spec, state };
  };

  const invalidateList = (state: ServerState) => {
    state.listGeneration += 1;
    state.list = null;
  };

  const connection = (server: string): Promise<UpstreamConnection> => {
    if (closed) return Promise.reject(new UpstreamUnavailableError(server, 'the upstreams are closed'));
    const { spec, state } = stateOf(server);
    if (state.connection?.usable) return Promise.resolve(state.connection);
    // Concurrent first uses share one connect.
    state.connecting ??= UpstreamConnection.open({
      spec,
      secrets,
      logger,
      clientInfo,
      connectTimeoutMs,
      onToolsChanged: () => invalidateList(state),
      onGone: (gone) => {
        if (state.connection === gone) state.connection = null;
      },
      onClosed: (gone) => open.delete(gone),
    })
      .then(async (opened) => {
        if (closed) {
          await opened.close();
          throw new UpstreamUnavailableError(server, 'the upstreams are closed');
        }
        // A new connection may be a new server (a restarted process): its list is read afresh.
        invalidateList(state);
        state.connection = opened;
        open.add(opened);
        return opened;
      })
      .finally(() => {
        state.connecting = null;
      });
    return state.connecting;
  };

  return {
    async connect(server: string): Promise<ToolCaller> {
      const first = await connection(server);
      // One caller per connection: callers of one connection are the same object.
      let caller = callers.get(first);
      if (caller !== undefined) return caller;
      caller = {
        // A call that certainly never left (the session the connection held is gone: an
        // upstream restarted between calls) is sent once on a fresh connection: that is not a
        // second sending, and it spares an approved call a "not run" for a stale session.
        async call(tool, args, callOptions) {
          try {
            return await first.call(tool, args, callOptions);
          } catch (e) {
            if (!(e instanceof UpstreamUnavailableError) || callOptions.signal?.aborted) throw e;
            logger.info({ upstream: server }, 'upstream connection was gone before the call left: calling on a new one');
            return (await connection(server)).call(tool, args, callOptions);
          }
        },
      };
      callers.set(first, caller);
      return caller;
    },

    async listTools(server: string): Promise<UpstreamTool[]> {
      const { state } = stateOf(server);
      const conn = await connection(server);
      const cached = state.list;
      if (cached && cached.generation === state.listGeneration && now() - cached.at < listCacheMs) return cached.tools;
      if (state.listing && state.listing.generation === state.listGeneration) return state.listing.promise;
      const generation = state.listGeneration;
      const promise = conn.listTools().then((tools) => {
        if (state.listGeneration === generation) state.list = { tools, at: now(), generation };
        return tools;
      });
      state.listing = { promise, generation };
      void promise
        .finally(() => {
          if (state.listing?.promise === promise) state.listing = null;
        })
        .catch(() => {});
      return promise;
    },

    async close(): Promise<void> {
      closed = true;
      await Promise.all([...states.values()].map((state) => state.connecting?.catch(() => null)));
      await Promise.all([...open].map((c) => c.close()));
      open.clear();
      for (const state of states.values()) state.connection = null;
    },
  };
}
