import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { createAuditSigner } from '../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { GENESIS_HASH, chainHash } from '../../src/core/audit.ts';
import { checkpointBytes } from '../../src/core/audit-checkpoint.ts';
import { testAgent } from '../helpers/agent.ts';
import { BASE_POLICY } from '../helpers/app.ts';
import { until } from '../helpers/observe.ts';
import { exited, startApp } from '../helpers/app-child.ts';

// Two countersign processes on one Redis; the one holding the sealer's lease is killed
// (SIGKILL: no goodbye, its lease is left to run out) while agents keep proposing. The other
// takes over within a few seconds and every entry ends up covered by a signed checkpoint.

const LEASE_MS = 1500;
describe('the sealing leader killed mid-traffic', () => {
  const redisUrl = inject('redisUrl');
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  const redis = redisUrl === null ? null : createRedisConnection({ url: redisUrl, role: 'command' });
  afterAll(async () => {
    if (redis === null) return;
    const keys = await (redis as Redis).keys(`{${prefix}}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('another replica takes the lease within a few seconds and no entry is left unsealed', { timeout: 60_000 }, async () => {
    if (redisUrl === null || redis === null) throw new Error('no test Redis');
    const dir = mkdtempSync(join(tmpdir(), 'countersign-sealer-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, BASE_POLICY);
    const secret = randomBytes(24).toString('hex');
    const key = await generateSigningKey();
    const env = {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      COUNTERSIGN_PREFIX: prefix,
      COUNTERSIGN_DATA_DIR: dir,
      POLICY_FILE: policyFile,
      AGENT_BILLING_SECRET: randomBytes(24).toString('hex'),
      AGENT_OPS_SECRET: secret,
      AUDIT_SIGNING_KEY: key,
      LOG_LEVEL: 'silent',
      COUNTERSIGN_TEST_AUDIT: JSON.stringify({ leaseMs: LEASE_MS, pollMs: 25, everyMs: 200, heartbeatMs: 1000 }),
    };
    const apps = await Promise.all([startApp(env), startApp(env)]);
    const lease = `{${prefix}}:audit:sealer`;
    const owner = await until(() => redis.get(lease), (v) => v !== null);
    const pidOf = (o: string) => Number(o.split('/')[1]);
    const leader = apps.find((a) => a.child.pid === pidOf(owner!))!;
    const survivor = apps.find((a) => a !== leader)!;
    expect(leader).toBeDefined();

    // Agents propose through both replicas; the leader dies in the middle of it.
    let stop = false;
    let sent = 0;
    const traffic = async (n: number) => {
      while (!stop) {
        const target = n % 2 === 0 && leader.child.exitCode === null && leader.child.signalCode === null ? leader : survivor;
        const res = await testAgent(target.url, 'ops-agent', secret)
          .propose({ intent: `drop ${n}-${sent}`, action: { tool: 'postgres', operation: 'drop', target: `db-${n}-${sent}`, parameters: {} } })
          .catch(() => null);
        if (res !== null && res.status === 201) sent += 1;
      }
    };
    const runners = [0, 1, 2, 3].map((n) => traffic(n));
    await until(async () => sent, (n) => n >= 20);
    leader.child.kill('SIGKILL');
    await exited(leader.child);
    const killedAt = Date.now();
    // The survivor takes the lease once the dead leader's runs out (lease + a follower's poll).
    const takeover = until(() => redis.get(lease), (v) => v !== null && pidOf(v) === survivor.child.pid).then(() => Date.now() - killedAt);
    const sentAtKill = sent;
    await until(async () => sent, (n) => n >= sentAtKill + 20);
    expect(await takeover).toBeLessThan(LEASE_MS + 1000 + 1500);
    stop = true;
    await Promise.all(runners);

    // Every entry appended, by either replica, ends up under a signed checkpoint.
    const seals = createRedisAuditSeals(redis, { prefix });
    const head = await seals.headSeq();
    expect(head).toBeGreaterThanOrEqual(2 * sent);
    await until(() => seals.latestCheckpoint(), (c) => c !== null && c.seq === head);
    expect((await seals.sealed())!.seq).toBe(head);

    // And each checkpoint, by either, is signed by the key and names the chain of the stream.
    const signer = await createAuditSigner(key);
    const jwk = signer.publicJwks().keys[0]!;
    const checkpoints = await seals.checkpoints(0, 100_000);
    const chainAt = new Map<number, string>([[0, GENESIS_HASH]]);
    let prev = GENESIS_HASH;
    let expectSeq = 1;
    for (let batch = await seals.entriesAfter('0-0', 1000); batch.length > 0; batch = await seals.entriesAfter(batch.at(-1)!.id, 1000)) {
      for (const e of batch) {
        expect(e.seq).toBe(expectSeq++);
        prev = chainHash(prev, e.seq, e.digest);
        chainAt.set(e.seq, prev);
      }
    }
    expect(expectSeq - 1).toBe(head);
    for (const c of checkpoints) {
      const { sig, ...body } = c;
      expect(verify(null, checkpointBytes(body), createPublicKey({ key: jwk as never, format: 'jwk' }), Buffer.from(sig, 'base64url'))).toBe(true);
      expect(c.hash).toBe(chainAt.get(c.seq));
    }
    // Nothing older than a checkpoint is ever signed after it.
    for (let i = 1; i < checkpoints.length; i++) expect(checkpoints[i]!.seq).toBeGreaterThanOrEqual(checkpoints[i - 1]!.seq);

    survivor.child.kill('SIGTERM');
    await exited(survivor.child);
  });
});
