import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Flags } from '../../src/cli/io.ts';
import { runPolicyTest } from '../../src/cli/policy-commands.ts';
import { showHiddenOneLine } from '../../src/core/visible-text.ts';

// What an agent wrote reaches the operator's terminal through the CLI: escape sequences must
// be shown, never run (an agent could rewrite the lines above, or retitle the terminal).

const ESCAPES = '\u001b[2K\r\u001b[1A\u001b]0;owned\u0007';

describe('agent text in the terminal', () => {
  it('shows escape sequences, bidi controls and line breaks as codes on one line', () => {
    expect(showHiddenOneLine(`stripe:cus_1\u202Eelif.exe${ESCAPES}\nfake line`)).toBe(
      'stripe:cus_1⟪U+202E⟫elif.exe⟪U+001B⟫[2K⟪U+000D⟫⟪U+001B⟫[1A⟪U+001B⟫]0;owned⟪U+0007⟫⟪U+000A⟫fake line',
    );
  });

  it('policy test prints the action without running what the agent put in its target', () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-text-'));
    writeFileSync(join(dir, 'policy.yaml'), 'version: 1\nagents:\n  - { id: a1, secret_env: S }\ndefault: { effect: deny }\n');
    writeFileSync(join(dir, 'proposal.json'), JSON.stringify({ intent: 'x', action: { tool: 'payments', operation: 'refund', target: `cus_1${ESCAPES}` } }));
    const out: string[] = [];
    runPolicyTest(join(dir, 'policy.yaml'), join(dir, 'proposal.json'), new Flags([], ['agent', 'json']), { S: 's' }, { out: (l) => out.push(l), err: () => undefined });
    expect(out.join('\n')).not.toMatch(/[\u001b\u0007\r]/);
    expect(out.join('\n')).toContain('cus_1⟪U+001B⟫[2K');
  });
});
