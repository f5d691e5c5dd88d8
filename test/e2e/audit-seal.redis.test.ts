import { createPublicKey, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { checkpointBytes, type Checkpoint } from '../../src/core/audit-checkpoint.ts';
import { proposalBody } from '../helpers/agent.ts';
import { restartTestApp, startTestApp, type TestApp } from '../helpers/app.ts';
import { startFakeHttpServer, type FakeHttpServer } from '../helpers/executor-server.ts';
import { logSink, until } from '../helpers/observe.ts';

// The real app seals its audit log: checkpoints signed with AUDIT_SIGNING_KEY (here the
// development key it generates), published keys, the witness file and URL, the metrics.

const SHORT = { everyMs: 100, heartbeatMs: 400, pollMs: 20, leaseMs: 2000, witnessRetryMs: 30 };

const servers: FakeHttpServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function deny(app: TestApp, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await app.ops.propose(proposalBody({ action: { tool: 'postgres', operation: 'drop', target: `db-${i}`, parameters: {} } }));
    expect(res.status).toBe(201);
  }
}

/** Waits until a checkpoint covers every entry appended so far; returns the checkpoints and that last seq. */
async function sealedThrough(app: TestApp): Promise<{ checkpoints: Checkpoint[]; head: number }> {
  const seals = createRedisAuditSeals(app.running.redis, { prefix: app.prefix });
  const head = await seals.headSeq();
  await until(() => seals.latestCheckpoint(), (c) => c !== null && c.seq >= head);
  return { checkpoints: await seals.checkpoints(0, 10_000), head };
}

function verifies(c: Checkpoint, keys: Record<string, unknown>[]): boolean {
  const jwk = keys.find((k) => k['kid'] === c.kid);
  if (jwk === undefined) return false;
  const { sig, ...body } = c;
  return verify(null, checkpointBytes(body), createPublicKey({ key: jwk as never, format: 'jwk' }), Buffer.from(sig, 'base64url'));
}

describe('audit sealing in the running app', () => {
  it('every checkpoint reaches the witness file and URL, verifies with /.well-known/audit-keys.json, and is logged', async () => {
    const hook = await startFakeHttpServer();
    servers.push(hook);
    const dir = mkdtempSync(join(tmpdir(), 'countersign-witness-'));
    const file = join(dir, 'checkpoints.jsonl');
    const log = logSink();
    const app = await startTestApp({
      env: { AUDIT_WITNESS_URL: `${hook.url}/witness/checkpoints`, AUDIT_WITNESS_FILE: file, LOG_LEVEL: 'info' },
      start: { audit: SHORT, logStream: log.stream },
    });
    await deny(app, 5);
    const { checkpoints: written, head } = await sealedThrough(app);
    expect(head).toBeGreaterThanOrEqual(10);
    expect(written.at(-1)!.seq).toBe(head);
    expect(written.map((c) => c.log)).toEqual(written.map(() => app.prefix));

    // Published keys: public only, and they verify every checkpoint.
    const res = await fetch(`${app.url}/.well-known/audit-keys.json`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    for (const c of written) expect(verifies(c, keys)).toBe(true);

    // Both witnesses have every checkpoint, in order, exactly as signed.
    const posted = await hook.waitFor(written.length);
    expect(posted.slice(0, written.length).map((r) => r.body)).toEqual(written);
    expect(posted.every((r) => r.path === '/witness/checkpoints' && /^application\/json/.test(String(r.headers['content-type'])))).toBe(true);
    const lines = await until(
      () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []),
      (l) => l.length >= written.length,
    );
    expect(lines.slice(0, written.length).map((l) => JSON.parse(l))).toEqual(written);
    // ...and so does the log: one line each, with every field.
    const logged = log.lines().filter((l) => l['msg'] === 'audit checkpoint').map((l) => l['checkpoint']);
    expect(logged.slice(0, written.length)).toEqual(written);

    // The development key: generated into the data directory, owner-only, said so in a warning.
    const warning = log.lines().find((l) => l['level'] === 40 && /AUDIT_SIGNING_KEY is not set/.test(String(l['msg'])));
    expect(warning).toMatchObject({ file: expect.stringMatching(/audit-signing-key$/) });
    expect(statSync(String(warning!['file'])).mode & 0o777).toBe(0o600);
  });

  it('keeps the development key across a restart (same kid); the sealing goes on from where it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-devkey-'));
    const first = await startTestApp({ env: { COUNTERSIGN_DATA_DIR: dir }, start: { audit: SHORT } });
    await deny(first, 2);
    const { checkpoints: before, head: headBefore } = await sealedThrough(first);
    const kid = before.at(-1)!.kid;
    expect(statSync(join(dir, 'audit-signing-key')).mode & 0o777).toBe(0o600);
    const second = await restartTestApp(first, { env: { COUNTERSIGN_DATA_DIR: dir }, start: { audit: SHORT } });
    await deny(second, 2);
    const { checkpoints: after, head: headAfter } = await sealedThrough(second);
    expect(headAfter).toBeGreaterThan(headBefore);
    expect(after.at(-1)).toMatchObject({ kid, seq: headAfter });
    // One chain across the restart: the new checkpoints follow the old ones.
    expect(after.slice(0, before.length)).toEqual(before);
    const { keys } = (await (await fetch(`${second.url}/.well-known/audit-keys.json`)).json()) as { keys: Record<string, unknown>[] };
    for (const c of after) expect(verifies(c, keys)).toBe(true);
  });

  it('a failing witness URL is retried in order, logged without its address, counted, and never holds sealing up', async () => {
    const hook = await startFakeHttpServer();
    servers.push(hook);
    let refusing = true;
    let refused = 0;
    const accepted: Checkpoint[] = [];
    hook.respond = (req, res) => {
      if (refusing) refused += 1;
      else accepted.push(req.body as Checkpoint);
      res.writeHead(refusing ? 503 : 204);
      res.end();
    };
    const log = logSink();
    const secretUrl = `${hook.url}/w?token=witness-secret-123`;
    const app = await startTestApp({ env: { AUDIT_WITNESS_URL: secretUrl, LOG_LEVEL: 'info' }, start: { audit: SHORT, logStream: log.stream } });
    // Everything is sealed and signed while the witness refuses every checkpoint.
    await deny(app, 1);
    await sealedThrough(app);
    await deny(app, 2);
    const { checkpoints: written } = await sealedThrough(app);
    expect(written.length).toBeGreaterThan(1);
    await until(async () => refused, (n) => n >= 2);
    expect(accepted).toEqual([]);

    // Once it answers again, it gets every checkpoint, in the order they were written.
    refusing = false;
    await until(async () => accepted.length, (n) => n >= written.length);
    expect(accepted.slice(0, written.length)).toEqual(written);

    const warnings = log.lines().filter((l) => l['msg'] === 'audit witness failed; retrying');
    expect(warnings.length).toBe(refused);
    expect(warnings[0]).toMatchObject({ witness: 'url', seq: written[0]!.seq, error: 'HTTP 503', attempt: 1 });
    expect(JSON.stringify(log.lines())).not.toContain('witness-secret-123');
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(Number(/countersign_audit_witness_failures_total\{witness="url"\} (\d+)/.exec(metrics)?.[1])).toBe(refused);
  });

  it('/metrics reports the unsealed entries, the seal lag, the leader and the seal errors', async () => {
    const app = await startTestApp({ start: { audit: SHORT } });
    await deny(app, 2);
    const { head } = await sealedThrough(app);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toMatch(/^countersign_audit_unsealed_entries 0$/m);
    expect(text).toMatch(/^countersign_audit_sealer_leader 1$/m);
    // Each entry once, from its own time to the checkpoint that covered it.
    expect(Number(/^countersign_audit_seal_lag_seconds_count (\d+)$/m.exec(text)?.[1])).toBe(head);
    expect(text).toMatch(/^# TYPE countersign_audit_seal_errors_total counter$/m);
  });
});
