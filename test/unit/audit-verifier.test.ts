import { describe, expect, it } from 'vitest';
import { createAuditSigner } from '../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../adapters/tokens/jwt-signer.ts';
import { GENESIS_HASH, chainHash, eventDigest, type AuditEvent } from '../../src/core/audit.ts';
import type { Checkpoint } from '../../src/core/audit-checkpoint.ts';
import { parseExportLine, toCefLine } from '../../src/core/audit-export.ts';
import { AuditVerifier } from '../../src/core/audit-verifier.ts';

// The verifier alone, fed by hand: what each kind of tampering reads as, and what a sound log
// that was merely sealed late or left a gap reads as (warnings, not failures).

const T0 = Date.parse('2026-12-01T00:00:00Z');
const signer = await createAuditSigner(await generateSigningKey());
const other = await createAuditSigner(await generateSigningKey());

function entries(n: number, at = (i: number) => T0 + i * 10): (AuditEvent & { id: string })[] {
  let prev = GENESIS_HASH;
  return Array.from({ length: n }, (_, i) => {
    const ev = { type: 'auth_failed' as const, at: new Date(at(i)).toISOString(), proposal_id: null, agent: null, actor: 'system', data: { i } };
    const digest = eventDigest(ev);
    prev = chainHash(prev, i + 1, digest);
    return { ...ev, seq: i + 1, id: `${T0 + i}-0`, digest, prev_hash: null, hash: null, chain: 3 as const };
  });
}

function hashAt(list: AuditEvent[], seq: number): string {
  let h = GENESIS_HASH;
  for (const e of list.slice(0, seq)) h = chainHash(h, e.seq, e.digest);
  return h;
}

const sign = (seq: number, hash: string, at: number, s = signer, log = 'cs') => s.sign({ v: 1, log, kind: 'seal', seq, hash, at: new Date(at).toISOString() });

function verifier(now: number | null = null) {
  return new AuditVerifier({ keys: signer, log: 'cs', anchor: null, heartbeatMs: 60_000, maxLagMs: 60_000, now });
}

async function feed(v: AuditVerifier, list: (AuditEvent & { id: string })[], cps: Checkpoint[]) {
  for (const e of list) {
    await v.entry(e);
    for (const c of cps.filter((x) => x.seq === e.seq)) await v.checkpoint(c, 'log');
  }
}

describe('AuditVerifier', () => {
  it('passes a sealed log and names the tail no checkpoint covers', async () => {
    const list = entries(10);
    const v = verifier();
    await feed(v, list, [await sign(4, hashAt(list, 4), T0 + 100), await sign(8, hashAt(list, 8), T0 + 200)]);
    const r = v.finish({ seq: 10, hash: null });
    expect(r).toMatchObject({ ok: true, entries: 10, checkpoints: 2, firstUnproven: { seq: 9 }, unsealed: { count: 2 } });
    expect(r.lastGood?.seq).toBe(8);
  });

  it('an entry rewritten with its digest redone fails at the checkpoint, naming the first entry after the last good one', async () => {
    const list = entries(10);
    const cps = [await sign(4, hashAt(list, 4), T0 + 100), await sign(8, hashAt(list, 8), T0 + 200)];
    const forged = list.map((e) => ({ ...e }));
    const e6 = forged[5]!;
    e6.data = { i: 600 };
    e6.digest = eventDigest(e6);
    const v = verifier();
    await feed(v, forged, cps);
    const r = v.finish({ seq: 10, hash: null });
    expect(r.ok).toBe(false);
    expect(r.problem).toMatchObject({ seq: 5, id: list[4]!.id });
    expect(r.problem!.reason).toMatch(/checkpoint at seq 8 .* rewritten/);
  });

  it('a checkpoint signed by another key, or for another log, fails', async () => {
    const list = entries(4);
    for (const c of [await sign(4, hashAt(list, 4), T0 + 100, other), await sign(4, hashAt(list, 4), T0 + 100, signer, 'elsewhere')]) {
      const v = verifier();
      await feed(v, list, [c]);
      expect(v.finish().problem?.reason).toMatch(/does not verify|another log/);
    }
  });

  it('checkpoints past the last entry mean deleted entries; the outside copy counts the same way', async () => {
    const list = entries(10);
    const v = verifier();
    await v.checkpoint(await sign(10, hashAt(list, 10), T0 + 300), 'outside');
    await feed(v, list.slice(0, 7), []);
    const r = v.finish();
    expect(r.ok).toBe(false);
    expect(r.problem!.reason).toMatch(/outside copy has a checkpoint .* up to seq 10, but the log ends at seq 7/);
  });

  it('warns, without failing, about entries sealed late, gaps between checkpoints and an old unsealed tail', async () => {
    const list = entries(6, (i) => T0 + i * 1000);
    const v = verifier(T0 + 10 * 60_000);
    // Sealed ten minutes late, then nothing for five minutes.
    await feed(v, list, [await sign(2, hashAt(list, 2), T0 + 10 * 60_000), await sign(4, hashAt(list, 4), T0 + 15 * 60_000 + 1)]);
    const r = v.finish({ seq: 6, hash: null });
    expect(r.ok).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/sealed more than 60 s after being written/);
    expect(r.warnings.join('\n')).toMatch(/1 gap longer than twice the heartbeat/);
    expect(r.warnings.join('\n')).toMatch(/2 entries are not covered by any checkpoint/);
  });

  it('starts after a signed cut, skipping leftovers at or below it; an unsigned cut fails', async () => {
    const list = entries(10);
    const cut = await signer.sign({ v: 1, log: 'cs', kind: 'cut', seq: 5, hash: hashAt(list, 5), at: new Date(T0 + 500).toISOString() });
    const v = new AuditVerifier({ keys: signer, log: 'cs', anchor: { seq: 5, hash: cut.hash, signed: cut }, heartbeatMs: 60_000, maxLagMs: 60_000, now: null });
    await v.start();
    await feed(v, list.slice(3), [await sign(10, hashAt(list, 10), T0 + 600)]);
    expect(v.finish({ seq: 10, hash: null })).toMatchObject({ ok: true, from: 6, entries: 5 });
    const forged = await other.sign({ v: 1, log: 'cs', kind: 'cut', seq: 5, hash: cut.hash, at: cut.at });
    const bad = new AuditVerifier({ keys: signer, log: 'cs', anchor: { seq: 5, hash: cut.hash, signed: forged }, heartbeatMs: 60_000, maxLagMs: 60_000, now: null });
    await bad.start();
    expect(bad.finish().problem?.reason).toMatch(/retention cut .* does not verify/);
  });
});

describe('export records', () => {
  it('names the line and field of a bad record', () => {
    expect(() => parseExportLine('{"record":"entry","seq":0}', 7)).toThrow(/line 7: seq/);
    expect(() => parseExportLine('not json', 3)).toThrow(/line 3 is not JSON/);
  });

  it('CEF escapes what would split a field or a line', () => {
    const [e] = entries(1);
    const line = toCefLine({ record: 'entry', ...e!, actor: 'agent:a|b=c\\d', data: { note: 'x\ny' }, prev_hash: GENESIS_HASH, hash: GENESIS_HASH });
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain('suser=agent:a|b\\=c\\\\d');
    expect(line).toMatch(/^CEF:0\|countersign\|countersign\|1\|auth_failed\|auth failed\|7\|/);
  });
});
