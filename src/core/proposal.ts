import { z } from 'zod';
import { ValidationError, type FieldIssue } from './errors.ts';
import type { Execution } from './execution.ts';
import type { PlatformId } from './platform.ts';
import type { Revision } from './revision.ts';
import type { DecisionAggregate } from './policy/fatigue.ts';

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

/**
 * Whole numbers JSON.parse could not keep (beyond 2^53 - 1: a 64-bit id sent as a number): the
 * value here is already another number, which would be stored, shown to the approver and
 * handed back in the approved action. At most `max` paths.
 */
function inexactIntegers(value: unknown, path: string, out: FieldIssue[], max = 10): void {
  if (out.length >= max) return;
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      out.push({ path, code: 'inexact_number', message: 'a whole number beyond 2^53 - 1 cannot be kept exactly (JSON numbers are doubles): send it as a string' });
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => inexactIntegers(v, `${path}.${i}`, out, max));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) inexactIntegers(v, `${path}.${k}`, out, max);
  }
}

export function parseProposalInput(body: unknown): ProposalInput {
  const result = proposalInputSchema.safeParse(body);
  const inexact: FieldIssue[] = [];
  if (result.success) inexactIntegers(result.data.action.parameters, 'action.parameters', inexact);
  if (inexact.length > 0) {
    throw new ValidationError(`invalid proposal: ${inexact.map((i) => `${i.path}: ${i.message}`).join('; ')}`, inexact);
  }
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
export interface Decision extends Escalation {
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
  /** The rule's `editable`: parameters approvers may change (src/core/revision.ts). Absent otherwise. */
  editable?: string[];
  /** Earlier proposals summed with this one made the decision stricter (policy/fatigue.ts). Absent otherwise. */
  aggregate?: DecisionAggregate;
}

/** One `escalate` step of a rule: `after_ms` from created_at, cards to `route`, `approvers` may decide too. */
export interface EscalationStep {
  after_ms: number;
  route: string;
  approvers: string;
}

/** What a rule says about a proposal nobody answers (escalation.ts), copied into its Decision. */
export interface Escalation {
  /**
   * The rule's `escalate` steps, copied at decision time so that a policy change never moves a
   * proposal already on its way. Absent when the rule has none.
   */
  escalate?: EscalationStep[];
  /** The rule's `remind`: a reminder under every card this often while pending. Absent without one. */
  remind_ms?: number;
  /** The rule's `on_timeout: deny`: at the deadline the proposal is denied, not expired. Absent for expire (the default). */
  on_timeout?: 'deny';
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
  /** How far it escalated: `step` steps of decision.escalate reached (counting from 1), the last one `at`. Absent before the first. */
  escalation?: { step: number; at: number };
  /** Reminders posted so far (`count`), the last one `at`. Absent before the first. */
  reminders?: { count: number; at: number };

  /**
   * Set when an approver changed editable parameters before approving: `action` (and `context`)
   * are then the revision, which is what is approved and run; `revision.proposed` is what the agent sent.
   */
  revision?: Revision;
}
