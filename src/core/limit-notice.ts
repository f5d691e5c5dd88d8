import { formatWindow, type LimitName } from './policy/fatigue.ts';

// The over-the-limit notice an agent's refusals post to the route (app/limit-notices.ts): one
// message per route, agent and window, posted at the first refusal and updated as the count
// grows, so that what people read in the channel is the true count, not the first one.

/** One window's notice as the store keeps it: enough to write its words again on every platform. */
export interface LimitNoticeState {
  agent: string;
  route: string;
  /** The limit the latest refusal hit (a window may see more than one). */
  limit: LimitName;
  max: number;
  rule: string;
  /** Refused in the window so far. */
  count: number;
  /** The window's first refusal, ms since the epoch. */
  since: number;
  /** When the window ends and the next refusal posts a new notice, ms. */
  ends: number;
}

/** The limit hit, as a policy author would look it up. */
export function limitPhrase(limit: LimitName, max: number, rule: string): string {
  const proposals = `${max} proposal${max === 1 ? '' : 's'}`;
  switch (limit) {
    case 'proposals_per_minute':
      return `${proposals} needing people a minute (limits.proposals_per_minute)`;
    case 'pending':
      return `${proposals} waiting for people (limits.pending)`;
    case 'rule.proposals_per_minute':
      return `${proposals} a minute for rule "${rule}" (rule ${rule}: limits.proposals_per_minute)`;
    case 'rule.pending':
      return `${proposals} waiting for people for rule "${rule}" (rule ${rule}: limits.pending)`;
  }
}

/** HH:MM UTC, with the date when the window began on another day than `now`. */
function sinceText(since: number, now: number): string {
  const at = new Date(since).toISOString();
  const day = at.slice(0, 10);
  return `${at.slice(11, 16)} UTC${day === new Date(now).toISOString().slice(0, 10) ? '' : ` on ${day}`}`;
}

/** The notice's words, for the approvers who see it in the route's channel (plain text, no markup). */
export function limitNoticeText(n: LimitNoticeState, now: number = n.since): string {
  return (
    `${n.agent} is over its limit of ${limitPhrase(n.limit, n.max, n.rule)}: ${n.count} refused since ${sinceText(n.since, now)}. ` +
    `Nothing is waiting for you: refused proposals are not stored and get no card. ` +
    `If ${n.agent} should not be this busy, ask its sponsors. This count is kept up to date; a new notice follows at most every ${formatWindow(n.ends - n.since)}.`
  );
}
