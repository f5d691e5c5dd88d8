import { z } from 'zod';
import { ValidationError, type FieldIssue } from './errors.ts';
import type { Execution } from './execution.ts';
import type { PlatformId } from './platform.ts';

// What an agent may send. Strict: an unknown key is an error, so a typo never silently
// drops a field a policy rule was meant to see.
export const DATA_SENSITIVITIES = ['public', 'internal', 'confidential', 'restricted'] as const;
export const DESTINATIONS = ['internal', 'external'] as const;

const shortText = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

export const actionSchema = z.strictObject({
  tool: shortText(100),
  operation: shortText(100),
  target: shortText(1000),
  parameters: z.record(z.string(), z.json()).default({}),
});

export const contextSchema = z.strictObject({
  data_sensitivity: z.enum(DATA_SENSITIVITIES).default('internal'),
  destination: z.enum(DESTINATIONS).default('internal'),
  environment: shortText(64).default('production'),
  reversible: z.boolean().default(false),
  value: z
    .strictObject({
      amount: z.number().finite().min(0, 'must not be negative'),
      currency: z.string().trim().max(8).default(''),
    })
    .default({ amount: 0, currency: '' }),
});

export const proposalInputSchema = z.strictObject({
  idempotency_key: shortText(200).optional(),
  intent: shortText(4000),
  action: actionSchema,
  context: contextSchema.default({
    data_sensitivity: 'internal',
    destination: 'internal',
    environment: 'production',
    reversible: false,
    value: { amount: 0, currency: '' },
  }),
});

export type ProposalInput = z.output<typeof proposalInputSchema>;
export type Action = ProposalInput['action'];
export type ProposalContext = ProposalInput['context'];

/** Turns zod issues into `{path: "action.tool", code, message}`, the shape the API returns. */
export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.length === 0 ? '(body)' : z.core.toDotPath(issue.path).replace(/^\./, ''),
    code: issue.code,
    message: issue.message,
  }));
}

export function parseProposalInput(body: unknown): ProposalInput {
  const result = proposalInputSchema.safeParse(body);
  if (!result.success) {
    const issues = toFieldIssues(result.error);
    const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new ValidationError(`invalid proposal: ${summary}`, issues);
  }
  return result.data;
}

export const STATUSES = [
  'pending',
  'approved',
  'denied',
  'expired',
  'cancelled',
  'rejected',
  'executing',
  'succeeded',
  'failed',
] as const;
export type Status = (typeof STATUSES)[number];

export const RISKS = ['low', 'medium', 'high', 'critical'] as const;
export type Risk = (typeof RISKS)[number];

export type Effect = 'allow' | 'deny' | 'approve';

/** What the policy decided, recorded with the proposal and never changed afterwards. */
export interface Decision {
  effect: Effect;
  risk: Risk;
  /** Name of the rule that matched, or "default". */
  rule: string;
  reasons: string[];
  /** Channel route (policy `channels` key) for cards; null unless effect is approve. */
  route: string | null;
  /** Group (policy `groups` key) whose members may decide; null unless effect is approve. */
  approvers: string | null;
  approvals_required: number;
  /** How long a pending proposal waits for people, in milliseconds. */
  ttl_ms: number;
  /**
   * The rule's `step_up: true`: approvals count only from a platform that vouches for a sign-in
   * within STEP_UP_WINDOW_MS (lifecycle.ts). Absent otherwise, and in proposals stored before it existed.
   */
  step_up?: true;
  /** The rule's `credentials`: a login from this issuer for the task, valid ttl_ms from its issue. Absent otherwise. */
  credentials?: { issuer: string; ttl_ms: number };
}

export type Vote = 'approve' | 'deny';

export interface Approval {
  /** The seat: the approver the vote counts for. */
  person: string;
  /** Who cast it for `person`, away then (src/core/away.ts); absent when `person` cast it. */
  delegate?: string;
  platform: PlatformId;
  vote: Vote;
  reason: string | null;
  at: number;
}

/** How a proposal ended its human (or policy) phase. */
export interface Resolution {
  status: Status;
  by: string | null;
  reason: string | null;
  at: number;
}

export interface Proposal {
  id: string;
  agent: string;
  idempotency_key: string | null;
  intent: string;
  action: Action;
  context: ProposalContext;
  decision: Decision;
  status: Status;
  created_at: number;
  /** When a pending proposal expires; null when it was never pending. */
  expires_at: number | null;
  approvals: Approval[];
  resolution: Resolution | null;
  /** Bumped by every committed change; the store refuses a change made against an older version. */
  version: number;
  /** Set once an approved proposal's execution token is minted (src/core/execution.ts). */
  execution?: Execution;
}
