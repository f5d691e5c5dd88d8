import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseUnit, readRoot } from '../helpers/deploy-files.ts';

// systemd reads EnvironmentFile= after Environment= and lets the files win, in their order. The
// unit's operator file is most easily written by copying .env.example, which has a blank
// `NODE_ENV=` (and HOST=127.0.0.1): that switched production, and every refusal it brings (the
// development token key, no audit signing key, …), off without a word. compose.yaml sets these
// over .env; the unit must hold them as firmly.

/** KEY=VALUE lines as systemd reads them (comments and blank lines skipped, one level of quotes removed). */
function envFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const at = line.indexOf('=');
    if (at <= 0) continue;
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim().replace(/^'(.*)'$|^"(.*)"$/, '$1$2');
  }
  return out;
}

/** The environment the unit's process gets when the operator's file is `operatorFile`. */
function serviceEnv(operatorFile: string): Record<string, string> {
  const service = parseUnit(readRoot('deploy/countersign.service')).get('Service')!;
  const env: Record<string, string> = {};
  for (const line of service.get('Environment') ?? []) {
    for (const pair of line.split(/\s+/)) {
      const at = pair.indexOf('=');
      env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  for (const path of service.get('EnvironmentFile') ?? []) {
    const file = path.replace(/^-/, '');
    // Files of the checkout (installed in /opt/countersign) are read from this repository.
    const text = file.startsWith('/etc/') ? operatorFile : readFileSync(file.replace(/^\/opt\/countersign\//, ''), 'utf8');
    if (!file.startsWith('/etc/')) expect(existsSync(file.replace(/^\/opt\/countersign\//, '')), file).toBe(true);
    Object.assign(env, envFile(text));
  }
  return env;
}

describe('deploy/countersign.service environment', () => {
  it('stays in production, running the build, with a copy of .env.example as its environment file', () => {
    const env = serviceEnv(readRoot('.env.example'));
    expect(env['NODE_ENV']).toBe('production');
    expect(env['COUNTERSIGN_RUN_FROM']).toBe('dist');
  });

  it('keeps what the operator writes there', () => {
    const env = serviceEnv('TOKEN_SIGNING_KEY=abc\nPUBLIC_URL=https://countersign.example.com\n');
    expect([env['TOKEN_SIGNING_KEY'], env['PUBLIC_URL']]).toEqual(['abc', 'https://countersign.example.com']);
  });
});
