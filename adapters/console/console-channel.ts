import type { CardRef } from '../../src/core/card.ts';
import type { ChatChannel } from '../../src/core/ports.ts';

// The console's "channel": people see pending proposals by reading the store, and each
// proposal's timeline from the audit log, so posting, updating and replying need no
// delivery; the ref records which route's console shows the card.
export function createConsoleChannel(): ChatChannel {
  return {
    platform: 'console',
    async postCard(target, card): Promise<CardRef> {
      return { platform: 'console', conversation: target, message: card.proposalId };
    },
    async updateCard() {},
    async replyInThread() {},
  };
}
