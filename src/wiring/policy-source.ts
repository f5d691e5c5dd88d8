// Where the policy comes from: POLICY_FILE, else ./policy.yaml, else the built-in example
// (for trying countersign; refused in production), whose demo agent gets a secret kept in
// the data dir so it survives restarts.
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

export interface PolicySource {
  policy: CompiledPolicy;
  /** True when no policy file was found and the built-in example is in use. */
  builtIn: boolean;
  /** The demo agent's secret when it was generated for the built-in example. */
  generatedDemoSecret: string | null;
}

/** POLICY_FILE, else ./policy.yaml, else the built-in example (with a demo secret kept in the data dir). */
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
  let secret = config.secrets[DEMO_SECRET_ENV] ?? null;
  let generated: string | null = null;
  if (secret === null || secret === '') {
    const path = resolve(config.dataDir, 'demo-agent-secret');
    if (existsSync(path)) secret = readFileSync(path, 'utf8').trim();
    else {
      secret = randomBytes(24).toString('base64url');
      mkdirSync(config.dataDir, { recursive: true });
      writeFileSync(path, `${secret}\n`, { mode: 0o600 });
    }
    generated = secret;
  }
  const policy = loadPolicy(EXAMPLE_POLICY_YAML, '(built-in example policy)', { ...config.secrets, [DEMO_SECRET_ENV]: secret }, POLICY_EXTENSIONS);
  return { policy, builtIn: true, generatedDemoSecret: generated };
}
