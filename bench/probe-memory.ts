// TEMPORARY probe (deleted before commit)
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrivateRedis } from '../adapters/redis/private-server.ts';
import { signedHeaders } from '../src/core/signing.ts';
import { HttpClient, pool } from './lib.ts';

const dir = mkdtempSync(join(tmpdir(), 'probe-'));
const redis = await startPrivateRedis({ dir: join(dir, 'r'), persist: false });
const start = (file: string, env: Record<string, string>, argv: string[] = []) => {
  const proc = fork(new URL(file, import.meta.url).pathname, [], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx', ...argv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<{ proc: typeof proc; ready: any }>((r) => proc.on('message', (m: any) => m.kind === 'ready' && r({ proc, ready: m })));
};
const fx = await start('./fixtures-child.ts', {});
const SECRET = 's'.repeat(32);
writeFileSync(join(dir, 'p.yaml'), `
version: 1
agents:
  - id: bench-agent
    secret_env: AGENT_BENCH_SECRET
people:
  alice: { slack: U0ALICE }
groups:
  finance: [alice]
  admins: [alice]
channels:
  finance: { slack: C0FINANCE }
rules: []
default: { effect: approve, risk: medium, route: finance, approvers: finance, approvals: 1, ttl: 2h }
`);
const sv = await start('./server-child.ts', { PORT: '0', HOST: '127.0.0.1', REDIS_URL: redis.url, COUNTERSIGN_PREFIX: 'probe', COUNTERSIGN_DATA_DIR: join(dir, 'd'), POLICY_FILE: join(dir, 'p.yaml'), AGENT_BENCH_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-x', SLACK_SIGNING_SECRET: 'y'.repeat(20), SLACK_API_URL: fx.ready.slackApiUrl, LOG_LEVEL: 'silent' }, ['--expose-gc']);
const ask = () => new Promise<any>((r) => { sv.proc.once('message', r); sv.proc.send({ kind: 'rss' }); });
console.log('idle', JSON.stringify(await ask()));
const api = new HttpClient(sv.ready.url);
const N = Number(process.env['N'] ?? '10000');
let s = 0;
await pool(N, 16, async () => {
  const body = JSON.stringify({ intent: `Refund ${s++} ${randomBytes(4).toString('hex')}`, action: { tool: 'payments', operation: 'refund', target: 'x', parameters: {} } });
  const r = await api.send('POST', '/v1/proposals', signedHeaders('bench-agent', SECRET, { method: 'POST', path: '/v1/proposals', body }, Date.now()), body);
  if (r.status !== 201) throw new Error(r.body);
});
await new Promise((r) => setTimeout(r, 5000));
console.log('after', N, JSON.stringify(await ask()));
if (process.env['SNAP']) { sv.proc.send({ kind: 'snapshot' }); await new Promise((r) => setTimeout(r, 8000)); }
sv.proc.disconnect(); fx.proc.disconnect(); api.close();
await new Promise((r) => setTimeout(r, 1000));
await redis.stop();
