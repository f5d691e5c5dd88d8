import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { redisKeys } from '../adapters/redis/keys.ts';
import { keySlot, startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { fmt, pool, wallNow } from './lib.ts';
import { redisSnapshot } from './redis-stats.ts';
import { cardsPosted, deploy, DRAIN_CAP_MS, pct, read, shares, warmUp } from './scale-deployment.ts';
import { waitIndexed, waitSealed } from './sealing-lag.ts';
import { paymentBody, propose } from './workload.ts';

// bench/scale.ts, the cluster part: two partitions (prefixes p1 and p2, one countersign process
// each) on a private 3-master Redis Cluster, pending proposals at c=16 in both at once, until
// every card is posted and the audit sealed and indexed. Prints, per master, its CPU per
// proposal of the partition it holds (all, and above its idle rate), and what a master that
// holds nothing spends on the partitions' PUBLISHes.


/** PUBLISH calls a node has served (INFO commandstats). */
async function publishCalls(node: Redis): Promise<number> {
  return (await redisSnapshot(node)).commands.get('publish')?.calls ?? 0;
}

export async function clusterPartitions(dir: string, env: (prefix: string) => Record<string, string>, count: number): Promise<void> {
  const cluster = await startRedisCluster({ dir: join(dir, 'cluster') });
  const prefixes = ['p1', 'p2'];
  try {
    await cluster.ready;
    const nodes = cluster.nodes.map((n) => cluster.connect(n));
    const deployments = await Promise.all(prefixes.map((prefix) => deploy({ processes: 1, prefix, env: { ...env(prefix), REDIS_CLUSTER_NODES: cluster.spec } })));
    try {
      const homes = prefixes.map((p) => cluster.nodes.indexOf(cluster.nodeForSlot(keySlot(redisKeys(p).tag))));
      const children = deployments.flatMap((d) => d.children);
      for (const [i, d] of deployments.entries()) await warmUp(nodes[homes[i]!]!, d);
      // What each master spends with no traffic (cluster bus, the partitions' background work).
      const i0 = await read(nodes, children);
      await new Promise((r) => setTimeout(r, 3000));
      const i1 = await read(nodes, children);
      const idleMsPerS = i1.redisMs.map((v, i) => (v - i0.redisMs[i]!) / ((i1.t - i0.t) / 1000));
      // Both partitions at once, pending proposals at c=16 each, until every card is posted and sealed.
      const r0 = await read(nodes, children);
      const publishes0 = await Promise.all(nodes.map(publishCalls));
      const ids = deployments.map(() => [] as string[]);
      const runs = await Promise.all(deployments.map((d, i) => pool(count, 16, async () => void ids[i]!.push((await propose(d.clients[0]!, d.agentSecret, paymentBody())).id))));
      const r1 = await read(nodes, children);
      for (const d of deployments) {
        await cardsPosted(nodes[homes[deployments.indexOf(d)]!]!, d, ids[deployments.indexOf(d)]!, wallNow() + DRAIN_CAP_MS);
        await waitSealed(nodes[homes[deployments.indexOf(d)]!]!, d.prefix, DRAIN_CAP_MS);
        await waitIndexed(nodes[homes[deployments.indexOf(d)]!]!, d.prefix, DRAIN_CAP_MS);
      }
      const r2 = await read(nodes, children);
      const published = (await Promise.all(nodes.map(publishCalls))).reduce((a, v, i) => a + v - publishes0[i]!, 0);
      const during = shares(r0, r1);
      const windowS = (r2.t - r0.t) / 1000;
      const lines = [
        `| master | holds | CPU in the window (${fmt(windowS, 1)} s) | idle CPU (ms/s) | per proposal of the partition it holds, µs (all / above idle) | share of a core during the requests |`,
        `|---|---|---|---|---|---|`,
      ];
      cluster.nodes.forEach((n, i) => {
        const held = prefixes.filter((_, j) => homes[j] === i);
        const done = held.reduce((a, p) => a + runs[prefixes.indexOf(p)]!.done, 0);
        const ms = r2.redisMs[i]! - r0.redisMs[i]!;
        const per = held.length > 0 ? `${fmt((ms * 1000) / done, 0)} / ${fmt(((ms - idleMsPerS[i]! * windowS) * 1000) / done, 0)}` : '-';
        lines.push(`| ${n.port} (slots ${n.slots[0]}-${n.slots[1]}) | ${held.map((p) => `{${p}}`).join(', ') || 'nothing'} | ${fmt(ms, 0)} ms | ${fmt(idleMsPerS[i]!, 1)} | ${per} | ${pct(during.redis[i]!)} |`);
      });
      lines.push('');
      // A master that holds no partition still serves and hears PUBLISHes: classic pub/sub is not sharded.
      const total = runs.reduce((a, r) => a + r.done, 0);
      cluster.nodes.forEach((n, i) => {
        if (homes.includes(i)) return;
        const extra = r2.redisMs[i]! - r0.redisMs[i]! - idleMsPerS[i]! * windowS;
        lines.push(
          `- master ${n.port} holds nothing, yet spent ${fmt(extra, 0)} ms above its idle rate in the window: ${fmt((extra * 1000) / total, 1)} µs per proposal of the partitions, ` +
            `${fmt((extra * 1000) / Math.max(1, published), 1)} µs per PUBLISH they made (${fmt(published / total, 2)} per proposal: ioredis sends a PUBLISH to any node, and a cluster passes every PUBLISH on to every node).`,
        );
      });
      const rps = runs.map((r) => (r.done / r.elapsedMs) * 1000);
      lines.push(`- two partitions on a 3-master cluster, pending at c=16 each: ${rps.map((x, i) => `{${prefixes[i]}} ${fmt(x, 0)} req/s`).join(', ')}; countersign ${during.children.map(pct).join(' + ')}, machine ${pct(during.machine)} of a core.`);
      process.stdout.write(`\n${lines.join('\n')}\n`);
    } finally {
      for (const d of deployments) await d.stop();
    }
  } finally {
    await cluster.stop();
  }
}
