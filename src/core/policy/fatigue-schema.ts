import { z } from 'zod';
import { AGGREGATE_FIELDS, DEFAULT_AGGREGATION, DEFAULT_LIMITS, type AggregationSpec, type LimitsSpec, type RuleLimits } from './fatigue.ts';
import { parseDuration } from '../duration.ts';
import { ID_PATTERN, ID_RULE } from '../ids.ts';

// The policy keys of approval-fatigue controls (fatigue.ts), all optional: a file without
// them gets the defaults.

// Not schema.ts's own (it imports this file): the same rule, repeated (at least 1s here).
const duration = z.string().transform((value, ctx) => {
  try {
    const ms = parseDuration(value);
    if (ms < 1000) ctx.addIssue({ code: 'custom', message: 'must be at least 1s' });
    return ms;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const count = (max: number) => z.number().int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`);
const perMinute = count(10_000_000);
const pending = count(10_000_000);

const agentLimits = z.strictObject({ proposals_per_minute: perMinute.optional(), pending: pending.optional() });

export const limitsSchema = z
  .strictObject({
    proposals_per_minute: perMinute.optional(),
    pending: pending.optional(),
    alert_every: duration.optional(),
    agents: z.record(z.string().regex(ID_PATTERN, `agent id must be ${ID_RULE}`), agentLimits).optional(),
  })
  .transform((l): LimitsSpec => {
    const top = { proposals_per_minute: l.proposals_per_minute ?? DEFAULT_LIMITS.proposals_per_minute, pending: l.pending ?? DEFAULT_LIMITS.pending };
    const agents = new Map(Object.entries(l.agents ?? {}).map(([id, a]) => [id, Object.freeze({ proposals_per_minute: a.proposals_per_minute ?? top.proposals_per_minute, pending: a.pending ?? top.pending })]));
    return Object.freeze({ ...top, alert_every_ms: l.alert_every ?? DEFAULT_LIMITS.alert_every_ms, agents });
  });

export const ruleLimitsSchema = z
  .strictObject({ proposals_per_minute: perMinute.optional(), pending: pending.optional() })
  .transform((l): RuleLimits => Object.freeze({ proposals_per_minute: l.proposals_per_minute ?? null, pending: l.pending ?? null }));

export const aggregationSchema = z
  .strictObject({
    window: duration.optional(),
    by: z
      .array(z.enum(AGGREGATE_FIELDS, `must be one of: ${AGGREGATE_FIELDS.join(', ')}`))
      .refine((by) => new Set(by).size === by.length, 'lists a field twice')
      .optional(),
  })
  .transform((a): AggregationSpec => Object.freeze({ window_ms: a.window ?? DEFAULT_AGGREGATION.window_ms, by: Object.freeze([...(a.by ?? DEFAULT_AGGREGATION.by)]) }));
