import { ValidationError } from '../core/errors.ts';

// Terminal plumbing shared by the commands: a small flag parser and where output goes
// (results on stdout, progress and prompts on stderr, so `| jq` keeps working).

export type Env = Readonly<Record<string, string | undefined>>;

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const BOOLEAN_FLAGS = new Set(['json', 'help', 'follow']);

export class Flags {
  private readonly values = new Map<string, string>();
  readonly positionals: string[] = [];

  constructor(args: readonly string[], allowed: readonly string[]) {
    const known = new Set([...allowed, 'help']);
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (!arg.startsWith('--') || arg === '--') {
        this.positionals.push(arg);
        continue;
      }
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      if (!known.has(name)) throw usage(`unknown option --${name}${allowed.length > 0 ? ` (options: ${allowed.map((a) => `--${a}`).join(', ')})` : ''}`);
      if (BOOLEAN_FLAGS.has(name)) {
        this.values.set(name, 'true');
        continue;
      }
      const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined) throw usage(`--${name} needs a value`);
      this.values.set(name, value);
    }
  }

  string(name: string): string | undefined {
    return this.values.get(name);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }
}

export function usage(message: string): ValidationError {
  return new ValidationError(message, [{ path: '(arguments)', code: 'usage', message }]);
}

/**
 * The environment for commands that only read or evaluate a policy: a secret the policy names
 * (`secret_env`, `console_key_env`, `mcp_key_env`, `{ env: NAME }`) that is not set stands in as
 * a placeholder, so `policy check` runs in a policy repository's CI and `policy test` on a laptop
 * without the secrets. `missing` lists the variables that stood in, for a note. The
 * placeholder is distinct per variable and long enough for the length checks (MCP keys).
 */
export function withoutSecrets(env: Env): { env: Env; missing: ReadonlySet<string> } {
  const missing = new Set<string>();
  const lookup = new Proxy(env, {
    get: (target, key) => {
      if (typeof key !== 'string') return undefined;
      const value = target[key];
      if (value !== undefined && value.trim() !== '') return value;
      missing.add(key);
      return `not-needed-to-evaluate:${key}`;
    },
  });
  return { env: lookup, missing };
}

export function evaluationEnv(env: Env): Env {
  return withoutSecrets(env).env;
}
