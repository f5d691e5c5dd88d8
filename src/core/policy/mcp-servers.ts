import { PolicyError } from '../errors.ts';
import type { EnvLookup } from './extensions.ts';
import type { McpServerSpec, ToolCallDefaults, UpstreamValue } from './model.ts';
import type { PolicyDocument, ToolCallDefaultsDocument } from './schema.ts';

// `mcp.servers` as the gateway reads it. Credentials stay references (`{ env, prefix }`): the
// values are read from the secret source at call time; here only their presence is checked,
// so a missing variable stops countersign at start rather than at the first call.

/** The executor kind of an MCP server: approved calls to `<server>__<tool>` run through it. */
export const MCP_EXECUTOR_KIND = 'mcp';
export const DEFAULT_MCP_TIMEOUT_MS = 30_000;

function defaults(d: ToolCallDefaultsDocument): ToolCallDefaults {
  return Object.freeze({
    target_argument: d.target ?? null,
    data_sensitivity: d.context?.data_sensitivity ?? null,
    destination: d.context?.destination ?? null,
    environment: d.context?.environment ?? null,
    reversible: d.context?.reversible ?? null,
    value_argument: d.context?.value?.amount_argument ?? null,
    currency: d.context?.value?.currency ?? null,
    currency_argument: d.context?.value?.currency_argument ?? null,
  });
}

/** A tool's own settings over its server's: a key the tool leaves out is the server's. */
export function mergeDefaults(server: ToolCallDefaults, tool: ToolCallDefaults | undefined): ToolCallDefaults {
  if (tool === undefined) return server;
  const out: Record<string, unknown> = { ...server };
  for (const [k, v] of Object.entries(tool)) if (v !== null) out[k] = v;
  // A tool that names its own amount argument also decides the currency.
  if (tool.value_argument !== null) {
    out['currency'] = tool.currency;
    out['currency_argument'] = tool.currency_argument;
  }
  return out as unknown as ToolCallDefaults;
}

export function readMcpServers(doc: PolicyDocument, file: string, env: EnvLookup): Map<string, McpServerSpec> {
  const servers = new Map<string, McpServerSpec>();
  for (const [name, s] of Object.entries(doc.mcp.servers)) {
    const values = (where: string, entries: Record<string, UpstreamValue> | undefined) => {
      const out = new Map<string, UpstreamValue>();
      for (const [key, value] of Object.entries(entries ?? {})) {
        if (typeof value !== 'string') {
          const secret = env[value.env];
          // Name the variable, never echo a value.
          if (secret === undefined || secret.trim() === '') throw new PolicyError(file, undefined, `mcp.servers.${name}.${where}.${key}: environment variable ${value.env} is not set or empty`);
          out.set(key, Object.freeze({ env: value.env, prefix: value.prefix }));
        } else out.set(key, value);
      }
      return out;
    };
    if (s.timeout !== undefined && s.timeout <= 0) throw new PolicyError(file, undefined, `mcp.servers.${name}: timeout must be longer than 0s`);
    const transport =
      s.url !== undefined
        ? Object.freeze({ kind: 'http' as const, url: s.url, headers: values('headers', s.headers) })
        : Object.freeze({
            kind: 'stdio' as const,
            command: s.command?.[0] ?? '',
            args: Object.freeze((s.command ?? []).slice(1)),
            env: values('env', s.env),
            cwd: s.cwd ?? null,
          });
    const tools = new Map(Object.entries(s.tools ?? {}).map(([tool, d]) => [tool, defaults(d)] as const));
    servers.set(name, Object.freeze({ name, transport, timeout_ms: s.timeout ?? DEFAULT_MCP_TIMEOUT_MS, defaults: defaults(s), tools }));
  }
  return servers;
}
