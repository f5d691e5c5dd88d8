import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { CountersignClient } from '../../src/client/index.ts';
import { DEMO_PROPOSALS } from '../../src/cli/agent-commands.ts';
import { start } from '../../src/main.ts';

// `npm start` with nothing configured: the built-in example policy, the demo agent's secret
// printed, a one-time console link for "demo" that signs in once, and the demo proposals
// filling the console with cards of each risk.

describe('zero-config start', () => {
  it('prints the demo secret and a working one-time sign-in link', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-zero-'));
    const lines: string[] = [];
    const prefix = `t-${randomBytes(6).toString('hex')}`;
    const running = await start(
      { PORT: '0', COUNTERSIGN_DATA_DIR: dir, REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: prefix, LOG_LEVEL: 'silent' },
      { say: (l) => lines.push(l) },
    );
    try {
      const text = lines.join('\n');
      const secret = readFileSync(join(dir, 'demo-agent-secret'), 'utf8').trim();
      expect(text).toContain(`demo agent secret: ${secret}`);
      const link = /one-time link, valid 15 minutes\): (\S+)/.exec(text)?.[1] ?? '';
      expect(link.startsWith(`${running.url}/console/login/once?token=`)).toBe(true);

      const demo = new CountersignClient({ url: running.url, agent: 'demo-agent', secret });
      const results = [];
      for (const { body } of DEMO_PROPOSALS) results.push(await demo.propose(body));
      expect(results.map((r) => `${r.status}/${r.decision.risk}`)).toEqual([
        'pending/high',
        'pending/critical',
        'pending/medium',
        'pending/critical',
        'approved/low',
        'rejected/medium',
      ]);

      const signIn = await fetch(link, { redirect: 'manual' });
      expect(signIn.status).toBe(303);
      const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
      const page = await (await fetch(`${running.url}/console`, { headers: { cookie } })).text();
      expect(page).toContain('signed in as <b>demo</b>');
      expect(page.match(/<article class="card /g)?.length).toBe(4);
      for (const risk of ['high', 'critical', 'medium']) expect(page).toContain(`risk-${risk}`);
      expect((await fetch(link, { redirect: 'manual' })).status).toBe(401);
    } finally {
      await running.stop();
    }
  });
});
