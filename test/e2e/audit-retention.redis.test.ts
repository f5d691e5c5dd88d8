import { createPublicKey, verify } from 'node:crypto';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { chainHash } from '../../src/core/audit.ts';
import { checkpointBytes, type Checkpoint } from '../../src/core/audit-checkpoint.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp } from '../helpers/app.ts';
import { logSink, until } from '../helpers/observe.ts';

// The running app with AUDIT_RETENTION=2s: while proposals keep coming, a signed cut appears,
// the entries up to it are trimmed, and what is left chains from the cut to every checkpoint.

const SHORT = { everyMs: 100, heartbeatMs: 400, pollMs: 20, leaseMs: 2000, witnessRetryMs: 30, retentionEveryMs: 100 };

describe('audit retention in the running app', () => {
  it('AUDIT_RETENTION=2s: a signed cut appears and entries are trimmed while proposals keep coming; the rest chains from the cut', async () => {
    const log = logSink();
    const app = await startTestApp({ env: { AUDIT_RETENTION: '2s', LOG_LEVEL: 'info' }, start: { audit: SHORT, logStream: log.stream } });
    const redis = app.running.redis as Redis;
    const k = redisKeys(app.prefix);
    const seals = createRedisAuditSeals(redis, { prefix: app.prefix });

    let proposing = true;
    let proposed = 0;
    const traffic = (async () => {
      while (proposing) {
        const res = await app.ops.propose(proposalBody({ action: { tool: 'postgres', operation: 'drop', target: `db-${proposed}`, parameters: {} } }));
        expect(res.status).toBe(201);
        proposed += 1;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    // A cut, then another beyond it, with entries gone up to it, all while proposals go on.
    const first = await until(() => seals.cut(), (c) => c !== null);
    const later = await until(() => seals.cut(), (c) => c !== null && c.seq > first!.seq);
    const oldest = async () => {
      const fields = (await redis.xrange(k.audit, '-', '+', 'COUNT', 1))[0]?.[1] ?? [];
      return Number(fields[fields.indexOf('seq') + 1] ?? 0);
    };
    await until(oldest, (seq) => seq > later!.seq);
    const during = proposed;
    proposing = false;
    await traffic;
    expect(during).toBeGreaterThan(0);
    expect(await seals.headSeq()).toBeGreaterThan(later!.seq);

    // Every cut is signed with a published key, logged and counted like every checkpoint.
    const { keys } = (await (await fetch(`${app.url}/.well-known/audit-keys.json`)).json()) as { keys: Record<string, unknown>[] };
    const verifies = (c: Checkpoint) => {
      const jwk = keys.find((x) => x['kid'] === c.kid);
      const { sig, ...body } = c;
      return jwk !== undefined && verify(null, checkpointBytes(body), createPublicKey({ key: jwk as never, format: 'jwk' }), Buffer.from(sig, 'base64url'));
    };
    const cuts = log.lines().filter((l) => l['msg'] === 'audit checkpoint' && (l['checkpoint'] as Checkpoint).kind === 'cut').map((l) => l['checkpoint'] as Checkpoint);
    expect(cuts).toContainEqual(first);
    expect(cuts).toContainEqual(later);
    for (const c of cuts) expect(verifies(c)).toBe(true);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(Number(/^countersign_audit_trimmed_entries_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(later!.seq);

    // What is left (read between two reads of the same cut) chains from the cut's hash to the
    // hash every later checkpoint names, as verify will check it.
    for (;;) {
      const cut = (await seals.cut())!;
      const entries = await seals.entriesAfter('0-0', 100_000);
      const checkpoints = await seals.checkpoints(cut.seq, 100_000);
      if ((await seals.cut())!.seq !== cut.seq) continue;
      const rest = entries.filter((e) => e.seq > cut.seq);
      expect(rest[0]?.seq ?? cut.seq + 1).toBe(cut.seq + 1);
      const hashAt = new Map<number, string>([[cut.seq, cut.hash]]);
      let prev = cut.hash;
      for (const e of rest) {
        prev = chainHash(prev, e.seq, e.digest);
        hashAt.set(e.seq, prev);
      }
      expect(checkpoints.length).toBeGreaterThan(0);
      for (const c of checkpoints) if (hashAt.has(c.seq)) expect(c.hash, `checkpoint at ${c.seq}`).toBe(hashAt.get(c.seq));
      expect(checkpoints.every((c) => verifies(c))).toBe(true);
      break;
    }
  });
});
