import type { Cluster, Redis } from 'ioredis';
import type { AuditIndexStep, AuditIndexStore } from '../../src/core/audit-index-ports.ts';
import { entryIndexLists } from './audit-index.ts';
import { redisKeys } from './keys.ts';
import { runLua } from './lua-commands.ts';
import type { RedisStoreOptions } from './proposal-store.ts';

// The audit search index's writer (audit-index.ts says what the lists hold, audit-index.lua
// how a batch is written): reads the entries after the index position, works out each one's
// lists with the function the search and retention use, and writes the batch grouped per list
// (one LPUSH with many ids, instead of one per event and list in the commit scripts), fenced
// by the audit sealer's lease and by the position.

type StreamEntry = [id: string, fields: string[]];

export function createRedisAuditIndex(redis: Redis | Cluster, opts: RedisStoreOptions): AuditIndexStore {
  const keys = redisKeys(opts.prefix);

  return {
    async position() {
      return (await redis.hget(keys.auditHead, 'ix_to')) ?? null;
    },

    async indexNext(owner, count): Promise<AuditIndexStep> {
      // The lease first: a follower reads nothing.
      const replies = (await (redis as Redis).pipeline().get(keys.auditSealer).hmget(keys.auditHead, 'ix_from', 'ix_to').exec()) ?? [];
      for (const [err] of replies) if (err !== null) throw err;
      if (replies[0]?.[1] !== owner) return 'fenced';
      const [ixFrom = null, ixTo = null] = (replies[1]?.[1] ?? []) as (string | null)[];
      // No position yet: from the first entry ever indexed (a log indexed by the commit scripts
      // of an earlier release, which set ix_from), else from the start of the log.
      const start = ixTo !== null ? `(${ixTo}` : (ixFrom ?? '-');
      const entries = (await redis.xrange(keys.audit, start, '+', 'COUNT', Math.max(1, Math.floor(count)))) as StreamEntry[];
      const first = entries[0];
      const last = entries.at(-1);
      if (first === undefined || last === undefined) return { indexed: 0 };
      const groups = new Map<string, string[]>();
      for (const [id, fields] of entries) {
        for (const key of entryIndexLists(keys.auditIndex, fields)) {
          const ids = groups.get(key);
          if (ids === undefined) groups.set(key, [id]);
          else ids.push(id);
        }
      }
      const args: string[] = [owner, ixTo ?? '', first[0], last[0]];
      for (const ids of groups.values()) args.push(String(ids.length), ...ids);
      const reply = Number(await runLua(redis, 'countersignAuditIndex', [groups.size + 2, keys.auditSealer, keys.auditHead, ...groups.keys(), ...args]));
      return reply === 1 ? { indexed: entries.length } : reply === 0 ? 'fenced' : 'moved';
    },
  };
}
