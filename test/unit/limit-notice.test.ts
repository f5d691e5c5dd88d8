import { describe, expect, it } from 'vitest';
import { limitNoticeText, type LimitNoticeState } from '../../src/core/limit-notice.ts';

// The notice's words: the limit hit as the policy names it, the running count, since when (UTC).

const since = Date.UTC(2026, 11, 1, 11, 2, 40);
const notice: LimitNoticeState = { agent: 'billing-agent', route: 'finance', limit: 'proposals_per_minute', max: 30, rule: 'default', count: 312, since, ends: since + 5 * 60_000 };

describe('limitNoticeText', () => {
  it('names the limit, the true count and the window start, then what to do', () => {
    expect(limitNoticeText(notice, since + 60_000)).toBe(
      'billing-agent is over its limit of 30 proposals needing people a minute (limits.proposals_per_minute): 312 refused since 11:02 UTC. ' +
        'Nothing is waiting for you: refused proposals are not stored and get no card. ' +
        'If billing-agent should not be this busy, ask its sponsors. This count is kept up to date; a new notice follows at most every 5 min.',
    );
  });

  it("names each kind of limit, a rule's with the rule, and one proposal in the singular", () => {
    const of = (limit: LimitNoticeState['limit'], max: number) => limitNoticeText({ ...notice, limit, max, rule: 'payments' }).split(':')[0];
    expect(of('pending', 100)).toBe('billing-agent is over its limit of 100 proposals waiting for people (limits.pending)');
    expect(of('rule.proposals_per_minute', 1)).toBe('billing-agent is over its limit of 1 proposal a minute for rule "payments" (rule payments');
    expect(of('rule.pending', 20)).toBe('billing-agent is over its limit of 20 proposals waiting for people for rule "payments" (rule payments');
  });

  it('adds the date when the window began on another day', () => {
    expect(limitNoticeText(notice, since + 24 * 3_600_000)).toContain('312 refused since 11:02 UTC on 2026-12-01.');
  });
});
