import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisAuditSeals } from '../../adapters/redis/audit-seals.ts';
import { createAuditSigner } from '../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { eventDigest } from '../../src/core/audit.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { until } from '../helpers/observe.ts';

// `countersign audit verify` and `audit export` as an operator runs them (child processes, exit
// codes) against a running app that seals its log with a known AUDIT_SIGNING_KEY, and the attacks
// issue 13 names: a consistent rewrite (digest recomputed; chain step 3 stores no hash to redo),
// a rewritten checkpoint, the newest entries deleted with the head moved back (and, to hide it,
// the checkpoints too: caught by the witness copy), an edited or shortened export.

const exec = promisify(execFile);
const BIN = new URL('../../bin/countersign.js', import.meta.url).pathname;
const SHORT = { everyMs: 100, heartbeatMs: 400, pollMs: 20, leaseMs: 2000, witnessRetryMs: 30 };
const dir = mkdtempSync(join(tmpdir(), 'countersign-verify-'));

type StreamEntry = [string, string[]];

async function countersign(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const fieldsOf = (list: string[]) => new Map(Array.from({ length: list.length / 2 }, (_, i) => [list[2 * i]!, list[2 * i + 1]!]));

/** Rewrites the stream as someone with write access to Redis can: same ids, one entry changed. */
async function rewriteEntry(redis: Redis, key: string, seq: number, change: (f: Map<string, string>) => void): Promise<void> {
  const all = (await redis.xrange(key, '-', '+')) as StreamEntry[];
  await redis.del(key);
  for (const [id, list] of all) {
    const f = fieldsOf(list);
    if (f.get('seq') === String(seq)) change(f);
    await redis.xadd(key, id, ...[...f].flat());
  }
}

describe('audit verify and export against a sealed log', () => {
  let app: TestApp;
  let redis: Redis;
  let env: Record<string, string>;
  let keysFile: string;
  let signingKey: string;
  const witness = join(dir, 'witness.jsonl');

  beforeAll(async () => {
    const key = await generateSigningKey();
    signingKey = key;
    app = await startTestApp({ env: { AUDIT_SIGNING_KEY: key, AUDIT_WITNESS_FILE: witness }, start: { audit: SHORT } });
    redis = new Redis(inject('redisUrl') ?? '');
    env = { REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix, COUNTERSIGN_DATA_DIR: dir, LOG_LEVEL: 'silent' };
    const seals = createRedisAuditSeals(redis, { prefix: app.prefix });
    // Two batches, each sealed before the next: the rewrite test's victim ("refund 3") then has
    // a good checkpoint before it, whatever the sealer's timing (else verify says, rightly, that
    // no checkpoint holds at all instead of naming where to distrust from).
    let head = 0;
    for (const batch of [[0, 1, 2], [3, 4, 5]]) {
      for (const i of batch) expect((await app.billing.propose(proposalBody({ intent: `refund ${i}` }))).status).toBe(201);
      head = await seals.headSeq();
      await until(() => seals.latestCheckpoint(), (c) => c !== null && c.seq >= head);
    }
    keysFile = join(dir, 'audit-keys.json');
    writeFileSync(keysFile, JSON.stringify((await app.admin('/.well-known/audit-keys.json')).body));
    // Everything below tampers with a log that nobody writes any more.
    await app.running.stop();
    await until(async () => readFileSync(witness, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number }).at(-1)?.seq ?? 0, (s) => s >= head);
  });
  afterAll(async () => {
    await redis.quit();
  });

  const audit = () => `{${app.prefix}}:audit`;

  it('a sound log verifies with the published keys, and so does its export, offline, from the start and from the middle', async () => {
    const ok = await countersign(['audit', 'verify', '--keys', keysFile, '--against', witness], env);
    expect(ok.stderr).not.toContain('warning');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit log ok: \d+ entries \(seq 1 to \d+\), \d+ signed checkpoints, \d+ from the outside copy, head [0-9a-f]{64}/);

    // Without any key, checkpoints cannot be checked: that is not "ok".
    const keyless = await countersign(['audit', 'verify'], env);
    expect(keyless.code).toBe(1);
    expect(keyless.stdout).toContain('no public key');

    const exported = await countersign(['audit', 'export'], env);
    expect(exported.code).toBe(0);
    const lines = exported.stdout.trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as { record: string; seq: number; hash: string; prev_hash?: string });
    expect(records[0]).toMatchObject({ record: 'start', seq: 0 });
    expect(records.filter((r) => r.record === 'checkpoint').length).toBeGreaterThan(0);
    // Every entry carries its place in the chain.
    const entries = records.filter((r) => r.record === 'entry');
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.prev_hash).toBe(entries[i - 1]!.hash);
    const file = join(dir, 'export.jsonl');
    writeFileSync(file, exported.stdout);
    const offline = await countersign(['audit', 'verify', '--offline', file, '--keys', keysFile], env);
    expect(offline.stdout).toMatch(/^export .* ok: \d+ entries \(seq 1 to/);
    expect(offline.code).toBe(0);

    // Resuming after seq 5: a start record the next checkpoint proves, no entry repeated.
    const rest = await countersign(['audit', 'export', '--after-seq', '5'], env);
    const restRecords = rest.stdout.trim().split('\n').map((l) => JSON.parse(l) as { record: string; seq: number });
    expect(restRecords[0]).toMatchObject({ record: 'start', seq: 5 });
    expect(restRecords.find((r) => r.record === 'entry')!.seq).toBe(6);
    const restFile = join(dir, 'rest.jsonl');
    writeFileSync(restFile, rest.stdout);
    const restOk = await countersign(['audit', 'verify', '--offline', restFile, '--keys', keysFile], env);
    expect(restOk.stdout).toContain('(seq 6 to');
    expect(restOk.code).toBe(0);

    const cef = await countersign(['audit', 'export', '--format', 'cef'], env);
    const cefLines = cef.stdout.trim().split('\n');
    expect(cefLines).toHaveLength(lines.length);
    expect(cefLines.find((l) => l.includes('|proposal_received|'))).toMatch(/^CEF:0\|countersign\|countersign\|1\|proposal_received\|proposal received\|3\|rt=\d+ suser=agent:billing-agent /);
    expect(cefLines.some((l) => /\|audit_checkpoint_seal\|/.test(l) && /cs4Label=sig cs4=[A-Za-z0-9_-]{86}/.test(l))).toBe(true);
  });

  it('an idle log heartbeats (over a thousand at one seq) are all read, by verify and by export', async () => {
    const seals = createRedisAuditSeals(redis, { prefix: app.prefix });
    const latest = (await seals.latestCheckpoint())!;
    const signer = await createAuditSigner(signingKey);
    const cps = `{${app.prefix}}:audit:checkpoints`;
    const before = await redis.xlen(cps);
    const [[lastId]] = (await redis.xrevrange(cps, '+', '-', 'COUNT', 1)) as [[string, string[]]];
    let n = Number(lastId.split('-')[1]);
    const pipeline = redis.pipeline();
    const added: string[] = [];
    for (let i = 0; i < 1200; i++) {
      const c = await signer.sign({ v: 1, log: app.prefix, kind: 'heartbeat', seq: latest.seq, hash: latest.hash, at: new Date(Date.parse(latest.at) + (i + 1) * 100).toISOString() });
      added.push(`${latest.seq}-${++n}`);
      pipeline.xadd(cps, added.at(-1)!, ...Object.entries(c).flatMap(([k, v]) => [k, String(v)]));
    }
    await pipeline.exec();
    try {
      const res = await countersign(['audit', 'verify', '--keys', keysFile, '--json'], env);
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ ok: true, checkpoints: before + 1200 });
      const exported = (await countersign(['audit', 'export'], env)).stdout.trim().split('\n');
      expect(exported.filter((l) => l.includes('"record":"checkpoint"'))).toHaveLength(before + 1200);
    } finally {
      await redis.xdel(cps, ...added);
    }
  });

  it('an entry planted with a seq below the log start is caught, not skipped', async () => {
    const all = (await redis.xrange(audit(), '-', '+')) as StreamEntry[];
    // After the 4th entry or the first one after it with a free stream id behind it (entries
    // written in the same millisecond take consecutive ids).
    const after = (id: string) => `${id.split('-')[0]}-${Number(id.split('-')[1]) + 1}`;
    const at = all.findIndex(([id], i) => i >= 3 && all[i + 1]?.[0] !== after(id));
    const [idAt, lAt] = all[at]!;
    const planted = fieldsOf(lAt);
    planted.set('seq', '0');
    await redis.del(audit());
    for (const [id, l] of all) {
      await redis.xadd(audit(), id, ...l);
      if (id === idAt) await redis.xadd(audit(), after(id), ...[...planted].flat());
    }
    try {
      const res = await countersign(['audit', 'verify', '--keys', keysFile], env);
      expect(res.code).toBe(1);
      expect(res.stdout).toMatch(/an entry with seq "0" .* it was planted/);
    } finally {
      await redis.del(audit());
      for (const [id, l] of all) await redis.xadd(audit(), id, ...l);
    }
  });

  it('an edited export fails offline: the edited entry by its digest, a removed line by its seq, a forged start by the next checkpoint', async () => {
    const lines = readFileSync(join(dir, 'export.jsonl'), 'utf8').trim().split('\n');
    const at = lines.findIndex((l) => l.includes('"record":"entry"') && l.includes('refund 2'));
    const edited = [...lines];
    edited[at] = edited[at]!.replace('refund 2', 'refund 9');
    writeFileSync(join(dir, 'edited.jsonl'), edited.join('\n'));
    const bad = await countersign(['audit', 'verify', '--offline', join(dir, 'edited.jsonl'), '--keys', keysFile], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/BROKEN at seq \d+ .*digest/);

    const shorter = lines.filter((_, i) => i !== at);
    writeFileSync(join(dir, 'shorter.jsonl'), shorter.join('\n'));
    const gap = await countersign(['audit', 'verify', '--offline', join(dir, 'shorter.jsonl'), '--keys', keysFile], env);
    expect(gap.code).toBe(1);
    expect(gap.stdout).toMatch(/missing or out of order/);

    const rest = (await countersign(['audit', 'export', '--after-seq', '5'], env)).stdout.trim().split('\n');
    rest[0] = JSON.stringify({ record: 'start', log: app.prefix, seq: 5, hash: 'ab'.repeat(32) });
    writeFileSync(join(dir, 'forged-start.jsonl'), rest.join('\n'));
    const forged = await countersign(['audit', 'verify', '--offline', join(dir, 'forged-start.jsonl'), '--keys', keysFile], env);
    expect(forged.code).toBe(1);
    // The first entry names the hash it chains from; had the forger redone every hash after it, the next checkpoint would not match.
    expect(forged.stdout).toMatch(/BROKEN at seq 6 .*prev_hash does not match/);
  });

  it('a consistent rewrite (content and digest redone) is caught by the signed checkpoint; a checkpoint rewritten to match fails its signature', async () => {
    const before = (await redis.xrange(audit(), '-', '+')) as StreamEntry[];
    const victim = before.map(([id, l]) => ({ id, f: fieldsOf(l) })).find((e) => e.f.get('type') === 'decided' || e.f.get('data')!.includes('refund 3'))!;
    const seq = Number(victim.f.get('seq'));
    await rewriteEntry(redis, audit(), seq, (f) => {
      const data = JSON.parse(f.get('data')!) as Record<string, unknown>;
      const text = JSON.stringify(data).replace('refund 3', 'refund 7');
      f.set('data', text);
      const ev = { type: f.get('type')!, at: f.get('at')!, proposal_id: f.get('proposal_id') || null, agent: f.get('agent') || null, actor: f.get('actor')!, data: JSON.parse(text) } as never;
      f.set('digest', eventDigest(ev));
    });
    try {
      const res = await countersign(['audit', 'verify', '--keys', keysFile], env);
      expect(res.code).toBe(1);
      expect(res.stdout).toMatch(/does not match the log: entries after the last good checkpoint \(seq \d+\) up to seq \d+ were rewritten/);
      expect(res.stdout).toMatch(/distrust everything from seq \d+/);

      // The attacker rewrites the checkpoint's hash too: it no longer verifies.
      const cps = `{${app.prefix}}:audit:checkpoints`;
      const list = (await redis.xrange(cps, '-', '+')) as StreamEntry[];
      const covering = list.find(([, l]) => Number(fieldsOf(l).get('seq')) >= seq)!;
      await redis.xdel(cps, covering[0]);
      const f = fieldsOf(covering[1]);
      f.set('hash', 'cd'.repeat(32));
      // Same id, back in its place (the stream is rebuilt around it).
      const rest = list.filter(([id]) => id !== covering[0]);
      await redis.del(cps);
      for (const [id, l] of [...rest, [covering[0], [...f].flat()] as StreamEntry].sort((a, b) => (Number(a[0].split('-')[0]) - Number(b[0].split('-')[0])) || (Number(a[0].split('-')[1]) - Number(b[0].split('-')[1])))) {
        await redis.xadd(cps, id, ...l);
      }
      const forged = await countersign(['audit', 'verify', '--keys', keysFile], env);
      expect(forged.code).toBe(1);
      expect(forged.stdout).toMatch(/does not verify against the public keys/);
    } finally {
      await redis.del(audit(), `{${app.prefix}}:audit:checkpoints`);
      for (const [id, l] of before) await redis.xadd(audit(), id, ...l);
    }
  });

  it('the newest entries deleted and the head moved back: caught by the checkpoints, and, when those go too, by the witness copy', async () => {
    // (The previous test restored the entries but rebuilt the checkpoints: take them from the witness.)
    const witnessed = readFileSync(witness, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string | number>);
    const cps = `{${app.prefix}}:audit:checkpoints`;
    await redis.del(cps);
    const n = new Map<number, number>();
    for (const c of witnessed) {
      const k = (n.get(c['seq'] as number) ?? 0) + 1;
      n.set(c['seq'] as number, k);
      await redis.xadd(cps, `${c['seq']}-${k}`, ...['v', 'log', 'kind', 'seq', 'hash', 'at', 'kid', 'sig'].flatMap((f) => [f, String(c[f])]));
    }
    expect((await countersign(['audit', 'verify', '--keys', keysFile], env)).code).toBe(0);

    const newest = (await redis.xrevrange(audit(), '+', '-', 'COUNT', 3)) as StreamEntry[];
    const keep = Number(fieldsOf(newest[2]![1]).get('seq')) - 1;
    await redis.xdel(audit(), ...newest.map(([id]) => id));
    await redis.hset(`{${app.prefix}}:audit:head`, 'seq', String(keep));
    const caught = await countersign(['audit', 'verify', '--keys', keysFile], env);
    expect(caught.code).toBe(1);
    expect(caught.stdout).toContain(`the log ends at seq ${keep}: the newest entries were deleted`);

    // Hide it: the checkpoints above go too. The log alone now looks whole; the outside copy does not.
    for (const [id, l] of (await redis.xrange(cps, '-', '+')) as StreamEntry[]) if (Number(fieldsOf(l).get('seq')) > keep) await redis.xdel(cps, id);
    const fooled = await countersign(['audit', 'verify', '--keys', keysFile], env);
    expect(fooled.code).toBe(0);
    const against = await countersign(['audit', 'verify', '--keys', keysFile, '--against', witness], env);
    expect(against.code).toBe(1);
    expect(against.stdout).toMatch(/the outside copy has a checkpoint signed at .* that covers entries up to seq \d+, but the log ends at seq/);
  });
});

describe('audit export --follow', () => {
  it('streams new entries as checkpoints cover them, each checkpoint right after its entry, until stopped', async () => {
    const key = await generateSigningKey();
    const app = await startTestApp({ env: { AUDIT_SIGNING_KEY: key }, start: { audit: SHORT } });
    const env = { PATH: process.env['PATH'] ?? '', REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix, COUNTERSIGN_DATA_DIR: dir, LOG_LEVEL: 'silent' };
    const child = spawn(process.execPath, [BIN, 'audit', 'export', '--follow'], { env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const records = () => out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { record: string; seq: number; data?: { proposal?: { intent?: string } } });
    expect((await app.billing.propose(proposalBody({ intent: 'followed refund' }))).status).toBe(201);
    const headSeq = Number(await app.running.redis.hget(`{${app.prefix}}:audit:head`, 'seq'));
    await until(async () => records(), (r) => r.some((x) => x.record === 'checkpoint' && x.seq >= headSeq));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const r = records();
    expect(r[0]!.record).toBe('start');
    const entrySeqs = r.filter((x) => x.record === 'entry').map((x) => x.seq);
    expect(entrySeqs).toEqual(Array.from({ length: entrySeqs.length }, (_, i) => i + 1));
    // Each checkpoint follows the entry it covers.
    r.forEach((x, i) => {
      if (x.record === 'checkpoint' && x.seq > 0) expect(r.slice(0, i).filter((y) => y.record === 'entry').at(-1)!.seq).toBe(x.seq);
    });
  });
});

describe('audit verify after retention', () => {
  it('AUDIT_RETENTION trims the log and verify stays green from the signed cut, in Redis and in an export', async () => {
    const key = await generateSigningKey();
    const app = await startTestApp({ env: { AUDIT_SIGNING_KEY: key, AUDIT_RETENTION: '1s' }, start: { audit: { ...SHORT, retentionEveryMs: 100 } } });
    const seals = createRedisAuditSeals(app.running.redis, { prefix: app.prefix });
    const env = { REDIS_URL: inject('redisUrl') ?? '', COUNTERSIGN_PREFIX: app.prefix, COUNTERSIGN_DATA_DIR: dir, LOG_LEVEL: 'silent' };
    const firstSeq = async () => Number(fieldsOf(((await app.running.redis.xrange(`{${app.prefix}}:audit`, '-', '+', 'COUNT', 1)) as StreamEntry[])[0]?.[1] ?? []).get('seq') ?? 0);
    // Proposals keep coming until a cut exists and the entries up to it are gone.
    let i = 0;
    const cut = await until(async () => {
      await app.ops.propose(proposalBody({ action: { tool: 'postgres', operation: 'drop', target: `db-${i++}`, parameters: {} } }));
      const c = await seals.cut();
      return c !== null && (await firstSeq()) === c.seq + 1 ? c : null;
    }, (c) => c !== null);
    const keys = join(dir, `keys-${app.prefix}.json`);
    writeFileSync(keys, JSON.stringify((await app.admin('/.well-known/audit-keys.json')).body));
    const res = await countersign(['audit', 'verify', '--keys', keys], env);
    // The app goes on cutting: the log starts at this cut or a later one.
    const [, a, b] = /\(seq (\d+) to|all up to seq (\d+) trimmed/.exec(res.stdout) ?? [];
    const from = a !== undefined ? Number(a) : Number(b) + 1;
    expect(from).toBeGreaterThanOrEqual(cut!.seq + 1);
    expect(res.code).toBe(0);
    const exported = await countersign(['audit', 'export'], env);
    const records = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { record: string; kind?: string; seq: number });
    expect(records[0]).toMatchObject({ record: 'start' });
    expect(records[0]!.seq).toBeGreaterThanOrEqual(cut!.seq);
    const file = join(dir, `retained-${app.prefix}.jsonl`);
    writeFileSync(file, exported.stdout);
    const offline = await countersign(['audit', 'verify', '--offline', file, '--keys', keys], env);
    expect(offline.code).toBe(0);
  });
});
