import type { CardRef } from '../core/card.ts';
import type { Clock } from '../core/clock.ts';
import { limitNoticeText, type LimitNoticeState } from '../core/limit-notice.ts';
import type { PlatformId } from '../core/platform.ts';
import type { LimitName } from '../core/policy/fatigue.ts';
import type { Policy } from '../core/policy/model.ts';
import type { ChatChannel, Logger } from '../core/ports.ts';

// The over-the-limit notice (issue 17). Every refusal for a per-agent limit is counted per
// agent, route and window (policy limits.alert_every), in the same store step that decides
// what the notice needs: the window's first refusal posts it at once (people should know
// early), a later one updates the posted message with the running count when the last update
// is `updateEveryMs` old, and otherwise leaves it to the expire sweep (flush), which finishes
// every notice whose count moved once its throttle passed: the last count lands even when the
// refusals stop. The store decides for every replica, so a flood on two replicas still posts one.

/** Over-the-limit notices to the route a refused proposal would have gone to: one per route and agent per window. */
export interface LimitAlerts {
  /** Counts the refusal, and posts or updates the notice when it is due; never throws. */
  refused(r: { agent: string; route: string; limit: LimitName; max: number; rule: string; windowMs: number }): Promise<void>;
  /** Updates the notices whose count moved since their last update and whose throttle passed (the expire sweep); never throws. */
  flush(): Promise<void>;
  /** The notices of windows not over yet, newest first (the console's banner). */
  current(): Promise<LimitNoticeState[]>;
}

/** A notice whose posted messages are to show `notice` now (the claim is the caller's). */
export interface NoticeUpdate {
  notice: LimitNoticeState;
  refs: CardRef[];
}

export type NoticeRefusal =
  /** The window's first refusal: post; `finish` is the previous window's last count not shown yet. */
  | { kind: 'post'; notice: LimitNoticeState; finish: NoticeUpdate | null }
  | { kind: 'update'; update: NoticeUpdate }
  /** Counted; the sweep shows it when the throttle passes (or the post in flight does). */
  | { kind: 'counted' };

export interface LimitNoticeStore {
  /** Counts one refusal and claims what the notice needs, in one step. */
  refused(r: { agent: string; route: string; limit: LimitName; max: number; rule: string; at: number; windowMs: number; updateEveryMs: number }): Promise<NoticeRefusal>;
  /** The window's notice is posted at `refs`; a count that moved meanwhile is left due for the sweep. */
  posted(notice: LimitNoticeState, refs: CardRef[], updateEveryMs: number): Promise<void>;
  /** An update showing `notice` failed: due again after the throttle, unless a later one shows more (a few times per window). */
  failed(notice: LimitNoticeState, at: number, updateEveryMs: number): Promise<void>;
  /** Claims the updates due at `at` (count moved, throttle passed), at most `max`. */
  due(at: number, updateEveryMs: number, max: number): Promise<NoticeUpdate[]>;
  /** Notices whose window has not ended at `at`, newest first. */
  current(at: number): Promise<LimitNoticeState[]>;
}

export interface LimitNoticeDeps {
  store: LimitNoticeStore;
  policy: () => Pick<Policy, 'platformsOf' | 'targetOf'>;
  channels: () => ReadonlyMap<PlatformId, ChatChannel>;
  clock: Clock;
  logger: Logger;
  /** The shortest time between two updates of one notice, ms (Slack allows about one message update a second per channel). */
  updateEveryMs?: number;
}

export const NOTICE_UPDATE_EVERY_MS = 5_000;
/** Updates one sweep sends at most; the rest wait for the next sweep. */
const UPDATES_PER_SWEEP = 50;

export function createLimitAlerts(d: LimitNoticeDeps): LimitAlerts {
  const every = d.updateEveryMs ?? NOTICE_UPDATE_EVERY_MS;
  const warn = (n: Pick<LimitNoticeState, 'agent' | 'route'>, platform: string, e: unknown, what: string) =>
    d.logger.warn({ agent: n.agent, route: n.route, platform, error: (e as Error).message }, what);

  async function post(notice: LimitNoticeState): Promise<void> {
    const policy = d.policy();
    const channels = d.channels();
    const text = limitNoticeText(notice, d.clock.now());
    const refs = await Promise.all(
      policy.platformsOf(notice.route).map(async (platform): Promise<CardRef | null> => {
        const target = policy.targetOf(notice.route, platform)?.target;
        const channel = channels.get(platform);
        if (target === undefined || channel?.postNotice === undefined) return null;
        try {
          return await channel.postNotice(target, text);
        } catch (e) {
          warn(notice, platform, e, 'could not post an over-the-limit notice');
          return null;
        }
      }),
    );
    await d.store.posted(notice, refs.filter((r): r is CardRef => r !== null), every);
  }

  async function update({ notice, refs }: NoticeUpdate): Promise<void> {
    const channels = d.channels();
    const text = limitNoticeText(notice, d.clock.now());
    const sent = await Promise.all(
      refs.map(async (ref) => {
        const channel = channels.get(ref.platform);
        if (channel?.updateNotice === undefined) return true;
        try {
          await channel.updateNotice(ref, text);
          return true;
        } catch (e) {
          warn(notice, ref.platform, e, 'could not update an over-the-limit notice');
          return false;
        }
      }),
    );
    // The sweep tries again (every platform: the same text again is harmless), so the last count still lands.
    if (sent.includes(false)) await d.store.failed(notice, d.clock.now(), every);
  }

  return {
    async refused(r) {
      try {
        const outcome = await d.store.refused({ ...r, at: d.clock.now(), updateEveryMs: every });
        if (outcome.kind === 'post') await Promise.all([post(outcome.notice), outcome.finish === null ? undefined : update(outcome.finish)]);
        else if (outcome.kind === 'update') await update(outcome.update);
      } catch (e) {
        d.logger.warn({ agent: r.agent, route: r.route, error: (e as Error).message }, 'could not record an over-the-limit refusal');
      }
    },
    async flush() {
      try {
        const due = await d.store.due(d.clock.now(), every, UPDATES_PER_SWEEP);
        await Promise.all(due.map(update));
      } catch (e) {
        d.logger.warn({ error: (e as Error).message }, 'could not update the over-the-limit notices');
      }
    },
    current: () => d.store.current(d.clock.now()),
  };
}
