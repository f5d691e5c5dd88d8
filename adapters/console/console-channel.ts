import type { CardRef } from '../../src/core/card.ts';
import type { ChatChannel, LiveNotice, LiveUpdates } from '../../src/core/ports.ts';
import { CONSOLE } from './platform.ts';

// The console's "channel": people see pending proposals by reading the store, and each
// proposal's timeline from the audit log, so posting, updating and replying deliver
// nothing. What they do is announce the change: every replica hears it (LiveUpdates) and
// tells its open browsers (Server-Sent Events) which card to refresh. The notify queue calls
// these after each committed change, exactly as it calls Slack's.

export function createConsoleChannel(live: LiveUpdates): ChatChannel {
  const announce = (id: string, change: LiveNotice['change']) => live.publish({ id, change });
  return {
    platform: CONSOLE,
    async postCard(target, card): Promise<CardRef> {
      await announce(card.proposalId, 'posted');
      return { platform: CONSOLE, conversation: target, message: card.proposalId };
    },
    async updateCard(ref) {
      await announce(ref.message, 'updated');
    },
    async replyInThread(ref) {
      await announce(ref.message, 'reply');
    },
    // Over-the-limit notices: the pending page reads them from the store (LimitAlerts.current),
    // so posting or updating one only tells open pages to fetch the banner again.
    async postNotice(target) {
      await announce(target, 'notice');
      return { platform: CONSOLE, conversation: target, message: target };
    },
    async updateNotice(ref) {
      await announce(ref.conversation, 'notice');
    },
  };
}
