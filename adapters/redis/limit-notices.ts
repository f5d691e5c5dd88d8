import type { Cluster, Redis } from 'ioredis';
import type { LimitNoticeStore, NoticeRefusal, NoticeUpdate } from '../../src/app/limit-notices.ts';
import type { CardRef } from '../../src/core/card.ts';
import type { LimitNoticeState } from '../../src/core/limit-notice.ts';
import type { LimitName } from '../../src/core/policy/fatigue.ts';
import { redisKeys } from './keys.ts';
import { runLua } from './lua-commands.ts';

// The over-the-limit notices in Redis (app/limit-notices.ts): one hash per agent and route
// holding its window's running count and where it was posted; every claim (post, update) is a
// script, so replicas agree on who sends what. lua/limit-notice-*.lua.

/** How long a notice outlives its window: long enough for the sweep to land its last count. */
const KEEP_AFTER_WINDOW_MS = 3_600_000;
/** Failed updates made due again, per window. */
const RETRIES_PER_WINDOW = 5;

type Fields = Record<string, string | undefined>;

function noticeOf(f: Fields): LimitNoticeState {
  return {
    agent: f['agent'] ?? '',
    route: f['route'] ?? '',
    limit: (f['limit'] ?? 'proposals_per_minute') as LimitName,
    max: Number(f['max']),
    rule: f['rule'] ?? '',
    count: Number(f['count']),
    since: Number(f['since']),
    ends: Number(f['ends']),
  };
}

function refsOf(f: Fields): CardRef[] {
  try {
    const refs = JSON.parse(f['refs'] ?? '[]') as unknown;
    return Array.isArray(refs) ? (refs as CardRef[]) : [];
  } catch {
    return [];
  }
}

const updateOf = (f: Fields): NoticeUpdate => ({ notice: noticeOf(f), refs: refsOf(f) });

export function createRedisLimitNoticeStore(redis: Redis | Cluster, prefix: string): LimitNoticeStore {
  const keys = redisKeys(prefix);
  const member = (agent: string, route: string) => `${agent}:${route}`;
  return {
    async refused(r) {
      const reply = await runLua(redis, 'countersignLimitNoticeRefused', [
        keys.limitNotice(r.agent, r.route),
        keys.limitNotices,
        keys.limitNoticesDue,
        String(r.at),
        String(r.at + r.windowMs),
        String(r.updateEveryMs),
        r.agent,
        r.route,
        r.limit,
        String(r.max),
        r.rule,
        member(r.agent, r.route),
        String(KEEP_AFTER_WINDOW_MS),
      ]);
      const out = JSON.parse(String(reply)) as { kind: NoticeRefusal['kind']; notice?: Fields; finish?: Fields | null };
      if (out.kind === 'post' && out.notice !== undefined) return { kind: 'post', notice: noticeOf(out.notice), finish: out.finish ? updateOf(out.finish) : null };
      if (out.kind === 'update' && out.notice !== undefined) return { kind: 'update', update: updateOf(out.notice) };
      return { kind: 'counted' };
    },
    async posted(notice, refs, updateEveryMs) {
      await runLua(redis, 'countersignLimitNoticePosted', [
        keys.limitNotice(notice.agent, notice.route),
        keys.limitNoticesDue,
        String(notice.since),
        JSON.stringify(refs),
        String(updateEveryMs),
        member(notice.agent, notice.route),
      ]);
    },
    async failed(notice, at, updateEveryMs) {
      await runLua(redis, 'countersignLimitNoticeRetry', [
        keys.limitNotice(notice.agent, notice.route),
        keys.limitNoticesDue,
        String(notice.since),
        String(notice.count),
        String(at),
        String(updateEveryMs),
        member(notice.agent, notice.route),
        String(RETRIES_PER_WINDOW),
      ]);
    },
    async due(at, updateEveryMs, max) {
      const members = await redis.zrangebyscore(keys.limitNoticesDue, '-inf', at, 'LIMIT', 0, max);
      const claimed = await Promise.all(
        members.map(async (m) => {
          const [agent, route] = m.split(':');
          if (agent === undefined || route === undefined) {
            await redis.zrem(keys.limitNoticesDue, m);
            return null;
          }
          const reply = await runLua(redis, 'countersignLimitNoticeClaim', [keys.limitNotice(agent, route), keys.limitNoticesDue, String(at), String(updateEveryMs), m]);
          return typeof reply === 'string' ? updateOf(JSON.parse(reply) as Fields) : null;
        }),
      );
      return claimed.filter((u): u is NoticeUpdate => u !== null);
    },
    async current(at) {
      const members = await redis.zrangebyscore(keys.limitNotices, `(${at}`, '+inf');
      const pipeline = redis.pipeline();
      for (const m of members) {
        const [agent, route] = m.split(':');
        if (agent !== undefined && route !== undefined) pipeline.hgetall(keys.limitNotice(agent, route));
      }
      const replies = members.length === 0 ? [] : ((await pipeline.exec()) ?? []);
      return replies
        .map(([err, f]) => (err || f === null || typeof f !== 'object' || !('since' in f) ? null : noticeOf(f as Fields)))
        .filter((n): n is LimitNoticeState => n !== null && n.ends > at)
        .sort((a, b) => b.since - a.since);
    },
  };
}
