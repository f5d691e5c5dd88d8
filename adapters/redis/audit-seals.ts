import type { Cluster, Redis } from 'ioredis';
import { GENESIS_HASH } from '../../src/core/audit.ts';
import type { Checkpoint, CheckpointKind } from '../../src/core/audit-checkpoint.ts';
import type { CutWriteResult } from '../../src/core/audit-seal-ports.ts';
import type { AuditSeals, SealableEntry, SealedState, SealWriteResult } from '../../src/core/ports.ts';
import { entryIndexLists } from './audit-index.ts';
import { parseStreamEntry } from './audit-log.ts';
import { redisKeys } from './keys.ts';
import { runLua } from './lua-commands.ts';
import type { RedisStoreOptions } from './proposal-store.ts';

// Where the audit sealer (src/app/seal-audit.ts) reads entries and keeps its lease, progress
// and checkpoints. Every write goes through audit-seal.lua, fenced by the lease. Entries are
// read with the fields their writer stored: `chain` as written (absent: step 1), and
// prev_hash/hash only where the writer computed them (steps 1 and 2). Retention's writes go
// through audit-retention.lua, fenced by the same lease.

type StreamEntry = [id: string, fields: string[]];

function fieldsOf(list: string[]): Map<string, string> {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) f.set(list[i]!, list[i + 1]!);
  return f;
}

function sealableEntry(entry: StreamEntry): SealableEntry {
  const e = parseStreamEntry(entry);
  const f = fieldsOf(entry[1]);
  const chainField = f.get('chain') ?? '';
  // A field that is not a whole number stays visible as NaN, which no step accepts.
  const chain = chainField === '' ? 1 : /^\d+$/.test(chainField) ? Number(chainField) : Number.NaN;
  const stored = (name: string) => {
    const v = f.get(name);
    return v === undefined || v === '' ? null : v;
  };
  return {
    id: e.id,
    seq: e.seq,
    event: { type: e.type, at: e.at, proposal_id: e.proposal_id, agent: e.agent, actor: e.actor, data: e.data },
    digest: e.digest,
    chain,
    prevHash: stored('prev_hash'),
    hash: stored('hash'),
  };
}

function checkpointOf(list: string[]): Checkpoint {
  const f = fieldsOf(list);
  const text = (name: string) => f.get(name) ?? '';
  return {
    v: Number(text('v')) as 1,
    log: text('log'),
    // As stored, whatever it says: judging it is the verifier's job.
    kind: text('kind') as CheckpointKind,
    seq: Number(text('seq')),
    hash: text('hash'),
    at: text('at'),
    kid: text('kid'),
    sig: text('sig'),
  };
}

export function createRedisAuditSeals(redis: Redis | Cluster, opts: RedisStoreOptions): AuditSeals {
  const keys = redisKeys(opts.prefix);
  const scriptKeys = [keys.auditSealer, keys.auditSealed, keys.auditCheckpoints];
  const run = (args: (string | number)[]) => runLua(redis, 'countersignAuditSeal', [...scriptKeys, ...args]);
  const retentionKeys = [keys.auditSealer, keys.auditCut, keys.audit, keys.auditCheckpoints, keys.auditHead];
  const retention = async (lists: string[], args: string[]) => {
    const k = [...retentionKeys, ...lists];
    return Number(await runLua(redis, 'countersignAuditRetention', [k.length, ...k, ...args]));
  };

  return {
    async acquireLease(owner, ttlMs) {
      return Number(await run(['acquire', owner, Math.ceil(ttlMs)])) === 1;
    },
    async renewLease(owner, ttlMs) {
      return Number(await run(['renew', owner, Math.ceil(ttlMs)])) === 1;
    },
    async releaseLease(owner) {
      await run(['release', owner]);
    },
    async sealed(): Promise<SealedState | null> {
      const [seq, hash, id, at, legacy] = await redis.hmget(keys.auditSealed, 'seq', 'hash', 'id', 'at', 'legacy_hash');
      if (seq == null || hash == null || id == null) return null;
      return { seq: Number(seq), hash, id, at: at ?? '', legacyHash: legacy ?? GENESIS_HASH };
    },
    async entriesAfter(afterId, count) {
      const entries = (await redis.xrange(keys.audit, `(${afterId}`, '+', 'COUNT', Math.max(1, Math.floor(count)))) as StreamEntry[];
      return entries.map(sealableEntry);
    },
    async seal(owner, leaseMs, expectedSeq, next, checkpoint): Promise<SealWriteResult> {
      const args: (string | number)[] = ['seal', owner, Math.ceil(leaseMs), String(expectedSeq), String(next.seq), next.hash, next.id, next.at, next.legacyHash];
      if (checkpoint !== null) {
        const c = checkpoint;
        args.push(String(c.v), c.log, c.kind, String(c.seq), c.hash, c.at, c.kid, c.sig);
      }
      const reply = Number(await run(args));
      return reply === 1 ? 'ok' : reply === 0 ? 'fenced' : 'conflict';
    },
    async checkpoints(fromSeq, limit) {
      if (limit <= 0) return [];
      const entries = (await redis.xrange(keys.auditCheckpoints, String(Math.max(0, Math.floor(fromSeq))), '+', 'COUNT', Math.floor(limit))) as StreamEntry[];
      return entries.map(([, list]) => checkpointOf(list));
    },
    async checkpointPage(from, limit) {
      const count = Math.max(1, Math.floor(limit));
      const start = 'after' in from ? `(${from.after}` : String(Math.max(0, Math.floor(from.seq)));
      const entries = (await redis.xrange(keys.auditCheckpoints, start, '+', 'COUNT', count)) as StreamEntry[];
      return { checkpoints: entries.map(([, list]) => checkpointOf(list)), ids: entries.map(([id]) => id), next: entries.length < count ? null : entries.at(-1)![0] };
    },
    async latestCheckpoint() {
      const [entry] = (await redis.xrevrange(keys.auditCheckpoints, '+', '-', 'COUNT', 1)) as StreamEntry[];
      return entry === undefined ? null : checkpointOf(entry[1]);
    },
    async headSeq() {
      return Number((await redis.hget(keys.auditHead, 'seq')) ?? 0);
    },
    async cut() {
      const fields = (await redis.hgetall(keys.auditCut)) as Record<string, string>;
      return Object.keys(fields).length === 0 ? null : checkpointOf(Object.entries(fields).flat());
    },
    async holdsLease(owner) {
      return (await redis.get(keys.auditSealer)) === owner;
    },
    async writeCut(owner, c): Promise<CutWriteResult> {
      const reply = await retention([], ['cut', owner, String(c.v), c.log, c.kind, String(c.seq), c.hash, c.at, c.kid, c.sig]);
      return reply === 1 ? 'ok' : reply === 0 ? 'fenced' : 'behind';
    },
    async trimToCut(owner, limit) {
      const cutSeq = await redis.hget(keys.auditCut, 'seq');
      if (cutSeq === null) return 0;
      const through = Number(cutSeq);
      const oldest = (await redis.xrange(keys.audit, '-', '+', 'COUNT', Math.max(1, Math.floor(limit)))) as StreamEntry[];
      const batch: StreamEntry[] = [];
      for (const entry of oldest) {
        // A seq that is not a number compares false: trimming stops there, as sealing did.
        if (!(Number(fieldsOf(entry[1]).get('seq')) <= through)) break;
        batch.push(entry);
      }
      if (batch.length === 0) return 0;
      const lists = new Set<string>();
      for (const [, list] of batch) for (const key of entryIndexLists(keys.auditIndex, list)) lists.add(key);
      const reply = await retention([...lists], ['trim', owner, ...batch.map(([id]) => id)]);
      return reply === -1 ? 'fenced' : reply;
    },
    async trimCheckpointsToCut(owner) {
      const reply = await retention([], ['checkpoints', owner]);
      return reply === -1 ? 'fenced' : reply === -2 ? 'pending' : reply;
    },
  };
}
