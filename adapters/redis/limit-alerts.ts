import type { Cluster, Redis } from 'ioredis';
import type { LimitAlerts } from '../../src/app/fatigue.ts';
import type { PlatformId } from '../../src/core/platform.ts';
import type { Policy } from '../../src/core/policy/model.ts';
import type { ChatChannel, Logger } from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';

// The over-the-limit notice (app/fatigue.ts): every refusal is counted, and the first in a
// window (SET NX PX, so every replica agrees) posts one plain notice to the route the refused
// proposal would have gone to, with how many were refused since the last one.

/** How long the count of refusals since the last notice is kept when no notice follows. */
const COUNT_TTL_MS = 24 * 3_600_000;

export interface LimitAlertOptions {
  prefix: string;
  policy: () => Pick<Policy, 'platformsOf' | 'targetOf'>;
  channels: () => ReadonlyMap<PlatformId, ChatChannel>;
  logger: Logger;
}

function windowText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)}s`;
}

/** The notice's words: for the approver who sees it in the route's channel. */
export function limitNoticeText(agent: string, refused: number, limitText: string, windowMs: number): string {
  return (
    `${agent} is over its limit: ${refused} proposal${refused === 1 ? '' : 's'} refused since the last notice (${limitText}). ` +
    `Nothing is waiting for you: refused proposals are not stored and get no card. ` +
    `If ${agent} should not be this busy, ask its sponsors; at most one such notice every ${windowText(windowMs)}.`
  );
}

export function createRedisLimitAlerts(redis: Redis | Cluster, opts: LimitAlertOptions): LimitAlerts {
  const keys = redisKeys(opts.prefix);
  return {
    async refused({ agent, route, limitText, windowMs }) {
      try {
        const marker = keys.limitAlert(agent, route);
        const counter = keys.limitRefused(agent, route);
        const replies = (await redis.pipeline().incr(counter).pexpire(counter, Math.max(COUNT_TTL_MS, 2 * windowMs)).set(marker, '1', 'PX', windowMs, 'NX').exec()) ?? [];
        const [countErr, count] = replies[0] ?? [null, null];
        const [setErr, set] = replies[2] ?? [null, null];
        if (countErr) throw countErr;
        if (setErr) throw setErr;
        if (set !== 'OK') return;
        const refused = Number(count);
        // What this notice reports is taken off the count; refusals by other replicas meanwhile stay for the next.
        await redis.decrby(counter, refused);
        const text = limitNoticeText(agent, refused, limitText, windowMs);
        const policy = opts.policy();
        const channels = opts.channels();
        await Promise.all(
          policy.platformsOf(route).map(async (platform) => {
            const target = policy.targetOf(route, platform)?.target;
            const channel = channels.get(platform);
            if (target === undefined || channel?.postNotice === undefined) return;
            try {
              await channel.postNotice(target, text);
            } catch (e) {
              opts.logger.warn({ agent, route, platform, error: (e as Error).message }, 'could not post an over-the-limit notice');
            }
          }),
        );
      } catch (e) {
        opts.logger.warn({ agent, route, error: (e as Error).message }, 'could not record an over-the-limit refusal');
      }
    },
  };
}
