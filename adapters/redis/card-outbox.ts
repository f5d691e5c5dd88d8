import { Cluster, ReplyError, type Redis } from 'ioredis';
import type { CardOutbox, OutboxEntry } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';

// The card outbox as a Redis stream with one consumer group: create-proposal.lua adds an entry
// (`p` = the proposal id) in the step that stores a pending proposal; every replica's relay
// reads the group, so each entry goes to one of them, and an entry a dead replica had taken is
// claimed again after it idles (XAUTOCLAIM). Finished entries are acknowledged and deleted,
// so the stream holds only cards not yet handed on.
//
// The blocking read has a connection of its own (a duplicate, made here and closed by
// `close`): on the shared command connection it would hold every other command up.

type Client = Redis | Cluster;

export const OUTBOX_GROUP = 'relay';

export interface RedisCardOutbox extends CardOutbox {
  /** Closes the blocking connection; a take in progress rejects. */
  close(): Promise<void>;
}

type StreamEntry = [id: string, fields: string[]];

function entries(list: readonly StreamEntry[] | null | undefined): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  for (const [id, fields] of list ?? []) {
    // An entry deleted while pending reads back with no fields: nothing to post, only to forget.
    const at = fields === null ? -1 : fields.indexOf('p');
    out.push({ id, proposal_id: at >= 0 && at % 2 === 0 ? (fields[at + 1] ?? '') : '' });
  }
  return out;
}

export function createRedisCardOutbox(redis: Client, opts: { prefix: string }): RedisCardOutbox {
  const key = redisKeys(opts.prefix).cardOutbox;
  // Both branches alike on purpose: the union's two duplicate() signatures cannot be called as one.
  const blocking: Client = redis instanceof Cluster ? redis.duplicate() : redis.duplicate();
  // Outages are reported by the main connections (outage-log.ts); this one only reconnects.
  blocking.on('error', () => undefined);
  let group: Promise<void> | null = null;
  /** XAUTOCLAIM's cursor. */
  let reclaimFrom = '0';

  /** From the stream's start: entries written before the first relay ever ran are read too. */
  const ensureGroup = () =>
    (group ??= redis
      .xgroup('CREATE', key, OUTBOX_GROUP, '0', 'MKSTREAM')
      .then(() => undefined)
      .catch((e: unknown) => {
        if (e instanceof ReplyError && (e as Error).message.startsWith('BUSYGROUP')) return;
        group = null;
        throw e;
      }));

  /** A stream deleted by hand (FLUSHDB) loses its group: made again on the next call. */
  async function withGroup<T>(fn: () => Promise<T>): Promise<T> {
    await ensureGroup();
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ReplyError && (e as Error).message.startsWith('NOGROUP'))) throw e;
      group = null;
      await ensureGroup();
      return fn();
    }
  }

  return {
    async take(consumer, max, blockMs) {
      const reply = (await withGroup(() =>
        blocking.xreadgroup('GROUP', OUTBOX_GROUP, consumer, 'COUNT', max, 'BLOCK', blockMs, 'STREAMS', key, '>'),
      )) as [string, StreamEntry[]][] | null;
      return entries(reply?.[0]?.[1]);
    },
    async reclaim(consumer, minIdleMs, max) {
      // From where the last reclaim stopped (back at the start once it reached the end): from
      // the start each time, `max` entries that are never finished would be all it ever saw.
      const reply = (await withGroup(() => redis.xautoclaim(key, OUTBOX_GROUP, consumer, minIdleMs, reclaimFrom, 'COUNT', max))) as [string, StreamEntry[], string[]?];
      reclaimFrom = reply[0] === '0-0' ? '0' : reply[0];
      return entries(reply[1]);
    },
    async done(list) {
      if (list.length === 0) return;
      const ids = list.map((e) => e.id);
      const replies = await redis.multi().xack(key, OUTBOX_GROUP, ...ids).xdel(key, ...ids).exec();
      for (const [error] of replies ?? []) if (error) throw error;
    },
    async close() {
      blocking.disconnect();
    },
  };
}
