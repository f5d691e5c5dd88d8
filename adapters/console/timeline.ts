import { timelineEntry, type TimelineEntry } from '../../src/core/event-text.ts';
import type { StoredAuditEvent } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';

// A proposal's timeline: one line per audit event, worded in core (event-text.ts) like the
// card's thread on every platform.

export type { TimelineEntry };

export function timeline(p: Proposal, events: readonly StoredAuditEvent[]): TimelineEntry[] {
  return events.map((e) => timelineEntry(p, e));
}
