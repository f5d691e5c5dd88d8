import type { AppDeps } from '../../src/app/deps.ts';
import { limitNoticeText, type LimitNoticeState } from '../../src/core/limit-notice.ts';
import { html, type Html } from './html.ts';
import { CONSOLE } from './platform.ts';

// The console's over-the-limit notices (app/limit-notices.ts): where Slack and Teams get a
// message in the route's channel, the pending page shows a banner of the current windows'
// notices of the routes that list the console, newest first, with the same words. The
// console channel's postNotice / updateNotice tell open pages to fetch it again (`notice`
// live updates), so the count there moves as it does in chat.

/** The notices the console shows now: windows not over, on routes that list the console. */
export async function consoleNotices(deps: AppDeps): Promise<LimitNoticeState[]> {
  if (deps.limitAlerts === undefined) return [];
  const all = await deps.limitAlerts.current();
  return all.filter((n) => deps.policy.platformsOf(n.route).includes(CONSOLE));
}

/** Always rendered (empty and hidden when there is none), so that a live update has a place to go. */
export function noticesBanner(notices: readonly LimitNoticeState[], now: number): Html {
  return html`<section id="limit-notices" class="limit-notices" aria-label="Agents over their limits" aria-live="polite"${notices.length === 0 ? html` hidden` : ''}>
<ul>${notices.map((n) => html`<li class="limit-notice" data-agent="${n.agent}" data-route="${n.route}" data-count="${n.count}">${limitNoticeText(n, now)}</li>`)}</ul>
</section>`;
}
