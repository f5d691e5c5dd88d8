// Where the policy comes from: POLICY_FILE, else ./policy.yaml, else the built-in example
// (for trying countersign; refused in production), whose demo agent gets a secret and an MCP
// key kept in the data dir so they survive restarts, and whose demo MCP server gets a token.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config.ts';
import { PolicyError } from '../core/errors.ts';
import type { CompiledPolicy } from '../core/policy/evaluate.ts';
import { loadPolicy } from '../core/policy/load.ts';
import { EXAMPLE_POLICY_YAML } from './example-policy.ts';
import { POLICY_EXTENSIONS } from './platforms.ts';

export const DEMO_SECRET_ENV = 'COUNTERSIGN_DEMO_AGENT_SECRET';
/** The demo agent's bearer key for POST /mcp (`mcp_key_env` in the built-in example). */
export const DEMO_MCP_KEY_ENV = 'COUNTERSIGN_DEMO_MCP_KEY';
/** Where a generated demo MCP key is kept, in the data dir (`npm run demo` reads it there). */
export const DEMO_MCP_KEY_FILE = 'demo-mcp-key';
/** The credential countersign injects into the demo MCP server (examples/mcp-demo-server.mjs). */
export const DEMO_PAYMENTS_TOKEN_ENV = 'COUNTERSIGN_DEMO_PAYMENTS_TOKEN';

export interface PolicySource {
  policy: CompiledPolicy;
  /** True when no policy file was found and the built-in example is in use. */
  builtIn: boolean;
  /** The demo agent's secret when it was generated for the built-in example. */
  generatedDemoSecret: string | null;
}

/** POLICY_FILE, else ./policy.yaml, else the built-in example (with its demo credentials; see keptSecret). */
export function readPolicy(config: Config): PolicySource {
  const file = config.policyFile ?? (existsSync('policy.yaml') ? 'policy.yaml' : null);
  if (file !== null) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new PolicyError(file, undefined, `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return { policy: loadPolicy(text, file, config.secrets, POLICY_EXTENSIONS), builtIn: false, generatedDemoSecret: null };
  }
  if (config.production) {
    throw new PolicyError('policy.yaml', undefined, 'NODE_ENV=production needs a policy file (POLICY_FILE or ./policy.yaml); the built-in example is for trying countersign');
  }
  const secret = keptSecret(config, DEMO_SECRET_ENV, 'demo-agent-secret');
  const mcpKey = keptSecret(config, DEMO_MCP_KEY_ENV, DEMO_MCP_KEY_FILE);
  // Only countersign and the child it starts ever hold it: a new one each start is enough.
  const paymentsToken = given(config, DEMO_PAYMENTS_TOKEN_ENV) ?? randomBytes(24).toString('base64url');
  // The upstreams read their credentials from config.secrets when they connect, so what was
  // generated here must be there too, not only in what the policy was loaded with.
  config.secrets = { ...config.secrets, [DEMO_SECRET_ENV]: secret.value, [DEMO_MCP_KEY_ENV]: mcpKey.value, [DEMO_PAYMENTS_TOKEN_ENV]: paymentsToken };
  const policy = loadPolicy(EXAMPLE_POLICY_YAML, '(built-in example policy)', config.secrets, POLICY_EXTENSIONS);
  return { policy, builtIn: true, generatedDemoSecret: secret.generated ? secret.value : null };
}

function given(config: Config, name: string): string | null {
  const value = config.secrets[name];
  return value === undefined || value === '' ? null : value;
}

/** The variable's value, else the one kept in the data dir, else a new one written there. */
function keptSecret(config: Config, name: string, file: string): { value: string; generated: boolean } {
  const value = given(config, name);
  if (value !== null) return { value, generated: false };
  const path = resolve(config.dataDir, file);
  if (existsSync(path)) return { value: readFileSync(path, 'utf8').trim(), generated: true };
  const fresh = randomBytes(24).toString('base64url');
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(path, `${fresh}\n`, { mode: 0o600 });
  return { value: fresh, generated: true };
}
