import { iso } from './clock.ts';
import { isFinal } from './lifecycle.ts';
import type { Proposal } from './proposal.ts';
import { changesText } from './revision-text.ts';

// What the agent's MCP client is told about a proposal: a CallToolResult while it holds the
// call, a Task (the Tasks extension) while it polls. Pure, so every path says the same words.

export interface ToolAnswer {
  content: { type: 'text'; text: string }[];
  isError: boolean;
  /** Countersign's own facts, for clients that read them (never shown to the model by most). */
  _meta?: Record<string, unknown>;
}

export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

export interface TaskView {
  taskId: string;
  status: TaskStatus;
  statusMessage?: string;
  createdAt: string;
  lastUpdatedAt: string;
  ttl: number | null;
  pollInterval?: number;
}

const META_KEY = 'countersign/proposal';

function text(message: string, isError: boolean, p: Proposal): ToolAnswer {
  return { content: [{ type: 'text', text: message }], isError, _meta: { [META_KEY]: { id: p.id, status: p.status } } };
}

/** "denied by alice: not this month", "expired without a decision", … */
export function whyNotRun(p: Proposal): string {
  const reason = p.resolution?.reason ? `: ${p.resolution.reason}` : '';
  switch (p.status) {
    case 'rejected':
      return `denied by policy (rule ${p.decision.rule})${p.decision.reasons.length > 0 ? `: ${p.decision.reasons.join('; ')}` : ''}`;
    case 'denied':
      return `denied by ${p.resolution?.by ?? 'an approver'}${reason}`;
    case 'expired':
      return 'expired: nobody decided before the deadline';
    case 'cancelled':
      return p.execution === undefined ? 'cancelled before a decision' : 'cancelled after approval, before it ran';
    default:
      return p.status;
  }
}

/** The pending message: what the agent should do now. */
export function awaitingApproval(p: Proposal): ToolAnswer {
  const expires = p.expires_at === null ? '' : `, expires ${iso(p.expires_at)}`;
  const state = p.status === 'pending' ? 'awaiting approval' : 'approved, running';
  return text(`${state} (proposal ${p.id}${expires}): call again with the same arguments to continue`, true, p);
}

/** The call left, but its outcome could not be recorded: the agent must not take it as "not run" and send it again. */
export function outcomeNotRecorded(p: Proposal): ToolAnswer {
  return text(`outcome unknown: the call was sent to the tool, but countersign could not record its outcome; it is not retried, and is recorded as unknown. Check before calling again (proposal ${p.id})`, true, p);
}

/**
 * The answer for a proposal the agent's call is attached to. `kept`: the upstream's own result
 * (returned as it came, its isError included); null when nothing was kept (denied, expired, or
 * a call that never answered).
 */
export function answerFor(p: Proposal, kept: Record<string, unknown> | null): ToolAnswer | Record<string, unknown> {
  if (!isFinal(p.status)) return awaitingApproval(p);
  if (kept !== null) return withEdits(p, kept);
  if (p.revision !== undefined) return withEdits(p, { ...answerWithoutResult(p) });
  return answerWithoutResult(p);
}

/** "approved with edits: amount 24800 → 2000 (edited by alice; …)", or null for a proposal nobody edited. */
export function editsNote(p: Proposal): string | null {
  const r = p.revision;
  if (r === undefined) return null;
  if (p.status === 'denied' && p.resolution?.by === 'policy') return `edited by ${r.by}: ${changesText(r.changes, false)}; the policy denies the edited call`;
  return `approved with edits: ${changesText(r.changes, false)} (edited by ${r.by}; the call ran with these arguments, not the ones it was made with)`;
}

/**
 * The answer with the edit said first, so the model knows the call ran with other arguments
 * than it sent; the upstream's own content follows unchanged.
 */
function withEdits(p: Proposal, answer: Record<string, unknown>): Record<string, unknown> {
  const note = editsNote(p);
  if (note === null) return answer;
  const content = Array.isArray(answer['content']) ? (answer['content'] as unknown[]) : [];
  const meta = typeof answer['_meta'] === 'object' && answer['_meta'] !== null ? (answer['_meta'] as Record<string, unknown>) : {};
  const r = p.revision;
  return {
    ...answer,
    content: [{ type: 'text', text: note }, ...content],
    _meta: { ...meta, [EDITS_META_KEY]: { by: r?.by, changes: r?.changes, arguments: p.action.parameters } },
  };
}

const EDITS_META_KEY = 'countersign/edits';

function answerWithoutResult(p: Proposal): ToolAnswer {
  const e = p.execution;
  if (p.status === 'succeeded') return text(`succeeded (proposal ${p.id}); the result is no longer kept`, false, p);
  if (p.status === 'failed' && e !== undefined) {
    if (e.outcome === 'unknown') return text(`outcome unknown (${e.reason ?? 'no answer'}): the call was sent to the tool but no answer came back; it is not retried. Check before calling again (proposal ${p.id})`, true, p);
    if (e.outcome === 'not_run') return text(`approved, but not run (${e.reason ?? 'unknown reason'}) (proposal ${p.id})`, true, p);
    return text(`the tool failed (${e.reason ?? 'error'})${e.response_excerpt ? `: ${e.response_excerpt}` : ''} (proposal ${p.id})`, true, p);
  }
  return text(`${whyNotRun(p)} (proposal ${p.id})`, true, p);
}

/** The Tasks extension's view of a proposal; `ttlMs`: how long its result is kept. */
export function taskOf(p: Proposal, ttlMs: number, now: number, pollIntervalMs: number): TaskView {
  const status: TaskStatus =
    p.status === 'succeeded' ? 'completed' : p.status === 'cancelled' ? 'cancelled' : isFinal(p.status) ? 'failed' : 'working';
  const statusMessage =
    p.status === 'pending'
      ? `awaiting approval${p.expires_at === null ? '' : ` until ${iso(p.expires_at)}`}`
      : p.status === 'approved' || p.status === 'executing'
        ? 'approved; running'
        : p.status === 'succeeded'
          ? 'succeeded'
          : p.status === 'failed'
            ? `failed: ${p.execution?.reason ?? 'error'}`
            : whyNotRun(p);
  const last = Math.max(p.created_at, p.resolution?.at ?? 0, p.execution?.started_at ?? 0, p.execution?.finished_at ?? 0, p.status === 'expired' ? (p.expires_at ?? 0) : 0);
  return {
    taskId: p.id,
    status,
    statusMessage,
    createdAt: iso(p.created_at),
    lastUpdatedAt: iso(Math.min(last, now)),
    ttl: ttlMs,
    ...(status === 'working' ? { pollInterval: pollIntervalMs } : {}),
  };
}

/** The text parts of a CallToolResult, for the audit's excerpt (redacted there). */
export function resultText(result: Record<string, unknown>): string {
  const content = Array.isArray(result['content']) ? (result['content'] as unknown[]) : [];
  const texts = content.flatMap((c) => (typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'text' && typeof (c as { text?: unknown }).text === 'string' ? [(c as { text: string }).text] : []));
  return texts.join('\n').slice(0, 2000);
}

/** The largest upstream result kept for pick-up (JSON characters): Redis holds it for an hour. */
export const MAX_KEPT_RESULT_CHARS = 1_000_000;

/** What is kept of a result: itself, or, when larger than countersign keeps, an error saying so. */
export function keepable(result: Record<string, unknown>): Record<string, unknown> {
  const size = JSON.stringify(result).length;
  if (size <= MAX_KEPT_RESULT_CHARS) return result;
  const text = `the tool ran, but its result (${size} characters) is larger than countersign keeps for pick-up (${MAX_KEPT_RESULT_CHARS})`;
  return { content: [{ type: 'text', text }], isError: result['isError'] === true };
}
