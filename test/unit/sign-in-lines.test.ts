import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { loadPolicy } from '../../src/core/policy/load.ts';
import { signInLines } from '../../src/wiring/sign-in-lines.ts';
import { POLICY_EXTENSIONS } from '../../src/wiring/platforms.ts';
import { createMemorySessionStore } from '../helpers/memory/sessions.ts';

// `countersign start` prints working one-time console links only where the terminal's scrollback
// is the only place they can be used: a server that listens on 127.0.0.1 AND is reached there.
// Behind a reverse proxy on the same host (HOST=127.0.0.1, PUBLIC_URL=https://…) the links open
// the console from anywhere, and the start's output goes to a journal or a log collector.

const policy = loadPolicy(readFileSync('policy.console.yaml', 'utf8'), 'policy.yaml', { MY_AGENT_SECRET: 'x'.repeat(32) }, POLICY_EXTENSIONS);

async function lines(env: Record<string, string>): Promise<string[]> {
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '3000', ...env });
  return signInLines(config, policy, createMemorySessionStore(), true, config.publicUrl);
}

describe('sign-in links printed at start', () => {
  it('a local server reached locally gets a one-time link', async () => {
    expect((await lines({})).join('\n')).toMatch(/one-time link, valid 15 minutes\): http:\/\/127\.0\.0\.1:3000\/console\/login\/once\?token=/);
  });

  it('a local server behind a proxy with a public PUBLIC_URL gets no usable link in its output', async () => {
    for (const PUBLIC_URL of ['https://countersign.example.com', 'https://127.0.0.1.example.com']) {
      const out = (await lines({ PUBLIC_URL })).join('\n');
      expect(out).not.toContain('token=');
      expect(out).toContain('countersign console link PERSON');
    }
  });
});
