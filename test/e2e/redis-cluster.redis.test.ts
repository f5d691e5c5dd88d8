import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { createRedisConnection } from '../../adapters/redis/connection.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { runCli } from '../../src/cli.ts';
import { testAgent, type TestAgent } from '../helpers/agent.ts';
import { actionBody, executionPolicy, waitForStatus } from '../helpers/execution.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, startFakeSlack, waitFor, type FakeSlack } from '../helpers/fake-slack.ts';
import { until } from '../helpers/observe.ts';
import { keySlot, startRedisCluster, type PrivateRedisCluster } from '../helpers/redis-cluster.ts';

// The plan past one Redis (docs/scale.md): partitions, each a countersign deployment with a
// prefix of its own, whose hash tag `{prefix}` puts all its keys (proposals, audit chain and
// checkpoints, tokens, BullMQ queues) in one slot of a Redis Cluster. Two partitions as two
// processes on a private 3-master cluster, each end to end: an allowed proposal executed, a
// pending one approved by a signed Slack click and executed, its audit log verified; and each
// partition's keys on one master, not the other's.

const PARTITIONS = ['p1', 'p2'] as const;
const SLACK_SECRET = 'slack-signing-secret-for-cluster';
const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'countersign-cluster-'));

interface Partition {
  prefix: string;
  url: string;
  agent: TestAgent;
  env: Record<string, string>;
}

const children: ChildProcess[] = [];

/**
 * `countersign start` as a child process (the compiled build when it is current, as in CI); its
 * URL once it listens. Its log lines at warn and above are kept for a failure's message.
 */
function startPartition(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'start'], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const said: string[] = [];
  child.stderr!.on('data', (c: Buffer) => said.push(c.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let j: { url?: string; msg?: string; level?: number } = {};
      try {
        j = JSON.parse(line) as typeof j;
      } catch {
        // not a log line
      }
      if (j.msg === 'countersign is listening' && j.url !== undefined) resolve(j.url);
      else if ((j.level ?? 40) >= 40) said.push(line);
    });
    child.once('exit', (code) => reject(new Error(`countersign (${env['COUNTERSIGN_PREFIX']}) exited (${code}) before it listened: ${said.join('\n').slice(0, 3000)}`)));
  });
}

let cluster: PrivateRedisCluster;
let slack: FakeSlack;
let executor: FakeHttpServer;
let redis: Cluster;
const partitions: Partition[] = [];
/** The proposals each partition made, by prefix. */
const made = new Map<string, string[]>();

beforeAll(async () => {
  [cluster, slack, executor] = await Promise.all([startRedisCluster({ dir: join(dir, 'cluster') }), startFakeSlack(), startFakeHttpServer()]);
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, executionPolicy({ executorUrl: executor.url }).replace('finance: { console: true }', 'finance: { slack: C0FINANCE }'));
  const secret = randomBytes(24).toString('hex');
  // Started while the cluster is still forming (its first 2 s), as a fleet starting at once
  // would be: a partition waits on the cluster through its connection's retries.
  const started = PARTITIONS.map(async (prefix) => {
    const env = {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_CLUSTER_NODES: cluster.spec,
      COUNTERSIGN_PREFIX: prefix,
      COUNTERSIGN_DATA_DIR: join(dir, prefix),
      POLICY_FILE: policyFile,
      AGENT_BILLING_SECRET: randomBytes(24).toString('hex'),
      AGENT_OPS_SECRET: secret,
      SLACK_BOT_TOKEN: 'xoxb-cluster-test',
      SLACK_SIGNING_SECRET: SLACK_SECRET,
      SLACK_API_URL: slack.apiUrl,
      LOG_LEVEL: 'info',
    };
    const url = await startPartition(env);
    partitions.push({ prefix, url, agent: testAgent(url, 'ops-agent', secret), env });
  });
  await cluster.ready;
  redis = createRedisConnection({ clusterNodes: cluster.spec.split(','), role: 'command' }) as Cluster;
  await Promise.all(started);
}, 30_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  redis?.disconnect();
  await Promise.all([cluster?.stop(), slack?.close(), executor?.close()]);
});

/** Runs `countersign audit verify --json` (in this process) against the partition. */
async function auditVerify(p: Partition): Promise<{ code: number; report: { ok: boolean; entries: number; checkpoints: number; problem: unknown } }> {
  const out: string[] = [];
  const code = await runCli(['audit', 'verify', '--json'], { REDIS_CLUSTER_NODES: cluster.spec, COUNTERSIGN_PREFIX: p.prefix, COUNTERSIGN_DATA_DIR: p.env['COUNTERSIGN_DATA_DIR']!, LOG_LEVEL: 'silent' }, {
    out: (l) => out.push(l),
    err: () => undefined,
  });
  return { code, report: JSON.parse(out.join('\n')) };
}

describe('two partitions on a 3-master Redis Cluster', () => {
  it('keeps each partition in its own slot, on different masters', async () => {
    const [a, b] = PARTITIONS.map((p) => keySlot(redisKeys(p).pending));
    // The helper hashes as the cluster does.
    expect(Number(await redis.call('CLUSTER', 'KEYSLOT', redisKeys('p1').pending))).toBe(a);
    expect(a).not.toBe(b);
    expect(cluster.nodeForSlot(a!).id).not.toBe(cluster.nodeForSlot(b!).id);
  });

  // The two partitions side by side, as they run.
  it.concurrent.for(PARTITIONS)('%s: allowed and approved proposals executed once, audit verified', { timeout: 40_000 }, async (prefix, { expect }) => {
    const p = partitions.find((x) => x.prefix === prefix)!;
    const allowed = await p.agent.propose(actionBody('deploy', `${prefix}-allowed`));
    expect(allowed.status).toBe(201);
    expect(allowed.body.status).toBe('approved');

    const pending = await p.agent.propose(actionBody('deploy', `${prefix}-approved`, 'approve-me'));
    expect(pending.body.status).toBe('pending');
    const id = pending.body.id as string;
    made.set(prefix, [allowed.body.id as string, id]);
    // The card went out through the partition's card outbox (a stream in its slot); a click on it approves.
    const card = await waitFor(() => slack.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && JSON.stringify(c.args).includes(id)), { what: `card of ${id}`, timeoutMs: 30_000 });
    const click = await postToSlackEndpoint(p.url, SLACK_SECRET, payloadBody(blockActionsPayload({ user: 'U0ALICE', proposalId: id, action: 'countersign_approve', messageTs: card.ts! })));
    expect(click.status).toBe(200);

    for (const done of [allowed.body.id as string, id]) expect((await waitForStatus(p.agent, done, (s) => s === 'succeeded' || s === 'failed')).status).toBe('succeeded');
    for (const target of [`${prefix}-allowed`, `${prefix}-approved`]) expect(executor.requests.filter((r) => r.body?.action?.target === target)).toHaveLength(1);

    // Once the sealer has signed a checkpoint over everything written so far (within a second), verify the chain.
    const seals = createRedisAuditSeals(redis, { prefix });
    const head = await seals.headSeq();
    await until(() => seals.latestCheckpoint(), (c) => c !== null && c.seq >= head);
    const { code, report } = await auditVerify(p);
    expect(report.problem).toBeNull();
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.entries).toBeGreaterThanOrEqual(head);
    expect(report.checkpoints).toBeGreaterThan(0);
  });

  it('has every key of a partition on its slot\'s master, and nothing else on the cluster', async () => {
    const byNode = new Map<string, string[]>();
    for (const node of cluster.nodes) {
      const conn = cluster.connect(node);
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await conn.scan(cursor, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      byNode.set(node.id, keys);
    }
    for (const prefix of PARTITIONS) {
      const tag = redisKeys(prefix).tag;
      const home = cluster.nodeForSlot(keySlot(tag)).id;
      // Proposals, the audit stream and its checkpoints, the card outbox, BullMQ's queues: all under the tag, all at home.
      const keys = redisKeys(prefix);
      const own = byNode.get(home)!.filter((k) => k.startsWith(tag));
      for (const k of [...(made.get(prefix) ?? []).map((id) => keys.proposal(id)), keys.audit, keys.auditCheckpoints, keys.cardOutbox, `${keys.bull}:execute:meta`]) expect(own).toContain(k);
      for (const [node, keys] of byNode) if (node !== home) expect(keys.filter((k) => k.startsWith(tag))).toEqual([]);
    }
    expect([...byNode.values()].flat().filter((k) => !PARTITIONS.some((p) => k.startsWith(`{${p}}`)))).toEqual([]);
  });
});
