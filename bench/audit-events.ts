import type { AuditEventInput } from '../src/core/audit.ts';

// The synthetic audit events the benchmark loads (phase 5, audit search) and appends to
// measure what an event costs Redis (audit-cost.ts): the same events for both, so the search
// figures and the cost figures describe one workload. Event i is the same in every run.

/** One event in this many carries a word found nowhere else (needleWord). */
export const NEEDLE_EVERY = 50_000;
/** Agents with 3 events in every RARE_EVERY (a filter that matches almost nothing). */
export const RARE_AGENTS = 10;
const RARE_EVERY = 100_000;
const TYPES = ['proposal_received', 'policy_decided', 'approval_recorded', 'decided', 'execution_started', 'execution_finished'] as const;
export const needleWord = (k: number): string => `needle${k}x`;
export const rareAgent = (k: number): string => `rare-agent-${k}`;
export const rareActor = (k: number): string => `person:rare${k}`;

/** How many of the first `total` events belong to rare agent k, at most 50 (a search's limit). */
export function rareCount(k: number, total: number): number {
  // Events i with i % RARE_EVERY in [k*3, k*3+3) belong to rare agent k.
  let n = 0;
  for (let i = 0; i < total; i += RARE_EVERY) for (let j = 0; j < 3; j++) if (i + k * 3 + j < total) n += 1;
  return Math.min(50, n);
}

const AT = new Date('2026-01-01T00:00:00Z').getTime();

export function syntheticEvent(i: number): AuditEventInput {
  const words = [`w${(i * 7919) % 5000}`, `w${(i * 104729) % 5000}`];
  const needle = i % NEEDLE_EVERY === 17 ? ` ${needleWord(Math.floor(i / NEEDLE_EVERY))}` : '';
  const r = i % RARE_EVERY;
  const rare = r < RARE_AGENTS * 3 ? Math.floor(r / 3) : -1;
  return {
    type: TYPES[i % TYPES.length]!,
    at: new Date(AT + i * 10).toISOString(),
    proposal_id: `p_load${Math.floor(i / TYPES.length)}`,
    agent: rare >= 0 ? rareAgent(rare) : `agent-${i % 50}`,
    actor: rare >= 0 ? rareActor(rare) : i % 3 === 0 ? `person:p${i % 200}` : `agent:agent-${i % 50}`,
    data: { intent: `Refund invoice ${i} ${words.join(' ')}${needle}`, amount: i % 1000 },
  };
}
