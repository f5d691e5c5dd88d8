import type { Readable } from 'node:stream';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { UpstreamUnavailableError, type SecretSource } from '../../src/core/mcp-ports.ts';
import type { McpServerSpec, UpstreamValue } from '../../src/core/policy/model.ts';

// The SDK transport for one upstream, with its credentials filled in. Secrets are read here,
// once per connection: the values go into the transport and into the list of what must be
// redacted from whatever comes back over it, and nowhere else.

export interface UpstreamTransport {
  transport: Transport;
  kind: 'http' | 'stdio';
  /** Every secret value injected (the raw secret and prefix + secret). */
  injected: string[];
  /** A stdio server's stderr (piped so it can be logged, redacted); null for HTTP. */
  stderr: Readable | null;
}

/** Throws UpstreamUnavailableError (naming the variable, never a value) when a secret is missing. */
export function createUpstreamTransport(spec: McpServerSpec, secrets: SecretSource): UpstreamTransport {
  const injected: string[] = [];
  const resolve = (values: ReadonlyMap<string, UpstreamValue>, what: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [key, value] of values) {
      if (typeof value === 'string') {
        out[key] = value;
        continue;
      }
      const secret = secrets.get(value.env);
      if (secret === undefined || secret === '') {
        throw new UpstreamUnavailableError(spec.name, `upstream ${spec.name}: secret ${value.env} (for ${what} ${key}) is not set`);
      }
      injected.push(secret, value.prefix + secret);
      out[key] = value.prefix + secret;
    }
    return out;
  };
  const t = spec.transport;
  if (t.kind === 'http') {
    const headers = resolve(t.headers, 'header');
    let url: URL;
    try {
      url = new URL(t.url);
    } catch {
      throw new UpstreamUnavailableError(spec.name, `upstream ${spec.name}: invalid URL`);
    }
    return { transport: new StreamableHTTPClientTransport(url, { requestInit: { headers } }), kind: 'http', injected, stderr: null };
  }
  const env = { ...getDefaultEnvironment(), ...resolve(t.env, 'environment variable') };
  const transport = new StdioClientTransport({
    command: t.command,
    args: [...t.args],
    env,
    stderr: 'pipe',
    ...(t.cwd === null ? {} : { cwd: t.cwd }),
  });
  return { transport, kind: 'stdio', injected, stderr: transport.stderr as Readable | null };
}

/**
 * Calls `onLine` with each line of `stream`, at most `maxLength` characters of it; the rest of a
 * longer line is dropped up to its newline (never passed on as a line of its own, which could
 * start with the tail of a secret the redactor would not recognise). `truncated` says the line
 * was cut, so it may end with the head of one. The buffer stays bounded whatever the server writes.
 */
export function forEachLine(stream: Readable, maxLength: number, onLine: (line: string, truncated: boolean) => void): void {
  let pending = '';
  let skipping = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      if (!skipping) onLine(pending.slice(0, Math.min(newline, maxLength)).replace(/\r$/, ''), newline > maxLength);
      skipping = false;
      pending = pending.slice(newline + 1);
    }
    if (pending.length > maxLength) {
      if (!skipping) onLine(pending.slice(0, maxLength), true);
      skipping = true;
      pending = '';
    }
  });
  stream.on('end', () => {
    if (pending !== '' && !skipping) onLine(pending, false);
  });
}
