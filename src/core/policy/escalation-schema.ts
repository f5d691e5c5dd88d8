import { z } from 'zod';
import { formatDuration } from '../duration.ts';
import { ID_PATTERN as ID, ID_RULE } from '../ids.ts';
import type { EscalationStep } from '../proposal.ts';

// The policy keys for a proposal nobody answers (src/core/escalation.ts): `remind`, `escalate`
// and `on_timeout`, on a rule or the default, with effect approve only. What zod can check
// without the rest of the file is checked here (steps in order, before the ttl); the routes
// and groups they name are checked in load.ts, which sees the channels and groups.


/** The shortest reminder interval: the sweep that sends them runs about once a second. */
export const MIN_REMIND_MS = 1000;
export const MAX_ESCALATION_STEPS = 10;
/**
 * The most reminders one proposal may post before its ttl: each is a reply mentioning every
 * approver and an audit entry, so `remind: 1s` with `ttl: 1h` (3,599 of each) is a storm.
 */
export const MAX_REMINDERS = 100;

export function escalationFields(duration: z.ZodType<number, string>) {
  return {
    remind: duration.optional(),
    escalate: z
      .array(
        z.strictObject({
          after: duration,
          route: z.string().regex(ID, `route must be ${ID_RULE}`),
          approvers: z.string().regex(ID, `group must be ${ID_RULE}`).optional(),
        }),
      )
      .min(1, 'must list at least one step (or leave escalate out)')
      .max(MAX_ESCALATION_STEPS, `must list at most ${MAX_ESCALATION_STEPS} steps`)
      .optional(),
    on_timeout: z.enum(['deny', 'expire'], { error: 'must be deny or expire' }).optional(),
  };
}

export interface RawEscalation {
  remind?: number | undefined;
  escalate?: { after: number; route: string; approvers?: string | undefined }[] | undefined;
  on_timeout?: 'deny' | 'expire' | undefined;
}

export const ESCALATION_KEYS = ['remind', 'escalate', 'on_timeout'] as const;

/** For an approve outcome whose ttl is `ttlMs`: steps strictly later one after another, all before the deadline. */
export function checkEscalation(o: RawEscalation, ttlMs: number, ctx: z.RefinementCtx): void {
  if (o.remind !== undefined && o.remind < MIN_REMIND_MS) ctx.addIssue({ code: 'custom', path: ['remind'], message: 'must be at least 1s' });
  else if (o.remind !== undefined && Math.ceil(ttlMs / o.remind) - 1 > MAX_REMINDERS) {
    const shortest = Math.ceil(ttlMs / (MAX_REMINDERS + 1) / 1000) * 1000;
    const message = `would post ${Math.ceil(ttlMs / o.remind) - 1} reminders under each card before the ttl (${formatDuration(ttlMs)}), at most ${MAX_REMINDERS}: make it at least ${formatDuration(shortest)}`;
    ctx.addIssue({ code: 'custom', path: ['remind'], message });
  }
  let previous = 0;
  for (const [i, step] of (o.escalate ?? []).entries()) {
    const path = ['escalate', i, 'after'];
    if (step.after <= previous) {
      const message = i === 0 ? 'must be longer than 0s' : `must be later than the step before it (${formatDuration(previous)}): steps are listed in the order they are taken`;
      ctx.addIssue({ code: 'custom', path, message });
    } else if (step.after >= ttlMs) {
      ctx.addIssue({ code: 'custom', path, message: `must be shorter than the ttl (${formatDuration(ttlMs)}): a step at or after the deadline is never taken` });
    }
    previous = Math.max(previous, step.after);
  }
}

export interface NormalEscalation {
  remind_ms: number | null;
  /** Each step with its approvers filled in (the outcome's own when a step names none). */
  escalate: EscalationStep[];
  on_timeout: 'deny' | 'expire';
}

export function normaliseEscalation(o: RawEscalation, approvers: string | null): NormalEscalation {
  return {
    remind_ms: o.remind ?? null,
    escalate: (o.escalate ?? []).map((s) => ({ after_ms: s.after, route: s.route, approvers: s.approvers ?? approvers ?? '' })),
    on_timeout: o.on_timeout ?? 'expire',
  };
}
