import type { Cluster, Redis } from 'ioredis';
import { redisKeys } from '../../adapters/redis/keys.ts';
import { GENESIS_HASH, canonicalJson, chainHash, eventDigest, legacyChainHash } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';

// Appends audit entries straight to the stream the way each generation of the commit scripts
// writes them (audit log v3, /tmp design): step 1 (no `chain` field, legacyChainHash) and step 2
// (`chain` 2, chainHash) store prev_hash and hash and move the head's hash; step 3 stores only
// the digest. seq comes from the head as in the scripts. The tests that seal logs of every
// generation use it, whatever the scripts of this release write.

type StreamEntry = [id: string, fields: string[]];

export async function appendRawEntries(redis: Redis | Cluster, prefix: string, events: readonly AuditEventInput[], chain: 1 | 2 | 3): Promise<string[]> {
  const keys = redisKeys(prefix);
  const ids: string[] = [];
  for (const e of events) {
    const seq = await redis.hincrby(keys.auditHead, 'seq', 1);
    const digest = eventDigest(e);
    const fields = ['seq', String(seq), 'at', e.at, 'type', e.type, 'proposal_id', e.proposal_id ?? '', 'agent', e.agent ?? '', 'actor', e.actor, 'data', canonicalJson(e.data), 'digest', digest];
    if (chain === 3) fields.push('chain', '3');
    else {
      const prev = (await redis.hget(keys.auditHead, 'hash')) ?? GENESIS_HASH;
      const hash = (chain === 2 ? chainHash : legacyChainHash)(prev, seq, digest);
      fields.push('prev_hash', prev, 'hash', hash);
      if (chain === 2) fields.push('chain', '2');
      await redis.hset(keys.auditHead, 'hash', hash);
    }
    ids.push((await redis.xadd(keys.audit, '*', ...fields))!);
  }
  return ids;
}

/**
 * Rewrites the stream entry with this seq (same id; streams cannot be edited in place) with
 * `change` applied to its fields, as someone with write access to Redis could.
 */
export async function rewriteRawEntry(redis: Redis | Cluster, prefix: string, seq: number, change: (fields: Map<string, string>) => void): Promise<void> {
  const stream = redisKeys(prefix).audit;
  const entries = (await (redis as Redis).xrange(stream, '-', '+')) as StreamEntry[];
  await redis.del(stream);
  for (const [id, list] of entries) {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < list.length; i += 2) f.set(list[i]!, list[i + 1]!);
    if (f.get('seq') === String(seq)) change(f);
    await redis.xadd(stream, id, ...[...f].flat());
  }
}

/** Every entry's fields, oldest first. */
export async function rawEntries(redis: Redis | Cluster, prefix: string): Promise<{ id: string; fields: Map<string, string> }[]> {
  const entries = (await (redis as Redis).xrange(redisKeys(prefix).audit, '-', '+')) as StreamEntry[];
  return entries.map(([id, list]) => {
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(list[i]!, list[i + 1]!);
    return { id, fields };
  });
}
