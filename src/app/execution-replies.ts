import type { AuditEventInput } from '../core/audit.ts';
import type { ThreadReply } from '../core/card.ts';
import type { Proposal } from '../core/proposal.ts';

// Thread replies for execution events. Thread replies are rendered as trusted text, but a
// response excerpt comes from the executor (which may echo agent input): markup and
// mention characters are neutralised so it cannot ping a channel or fake formatting.

const EXCERPT_IN_THREAD = 200;

function neutral(text: string): string {
  return text.replace(/[<>&@*_~`|\\[\]]/g, ' ').replace(/\s+/g, ' ').trim().slice(0, EXCERPT_IN_THREAD);
}

function seconds(ms: unknown): string {
  return typeof ms === 'number' ? `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 0)} s` : '?';
}

const REASONS: Record<string, string> = {
  token_expired: 'its execution token expired before it could run',
  executor_unreachable: 'the executor could not be reached',
  error_before_send: 'it failed before anything was sent',
  token_revoked: 'its execution token was revoked',
  no_executor: 'the policy names no executor for this tool any more',
  cancelled: 'it was cancelled',
  timeout: 'the executor did not answer in time',
  connection_lost: 'the connection to the executor broke after the request was sent',
  interrupted: 'the worker running it stopped mid-execution',
  no_outcome_reported: 'the agent never reported an outcome',
  reported_failed: 'the agent reported a failure',
};

export function executionReply(p: Proposal, e: AuditEventInput): ThreadReply | null {
  const d = e.data;
  switch (e.type) {
    case 'execution_started':
      return {
        proposalId: p.id,
        kind: 'execution_started',
        text: d['mode'] === 'executor' ? `Execution started: sent to the ${p.action.tool} executor` : `Execution started by agent ${p.agent}`,
      };
    case 'execution_finished': {
      const reason = typeof d['reason'] === 'string' ? (REASONS[d['reason']] ?? d['reason']) : null;
      const http = typeof d['http_status'] === 'number' ? `, HTTP ${d['http_status']}` : '';
      const excerpt = typeof d['response_excerpt'] === 'string' && d['response_excerpt'] !== '' ? `: "${neutral(d['response_excerpt'])}"` : '';
      if (d['status'] === 'succeeded') return { proposalId: p.id, kind: 'execution_finished', text: `Succeeded in ${seconds(d['duration_ms'])}${http}${excerpt}` };
      if (d['outcome'] === 'not_run') return { proposalId: p.id, kind: 'execution_finished', text: `Not run: ${reason ?? 'unknown reason'}` };
      if (d['outcome'] === 'unknown') {
        return {
          proposalId: p.id,
          kind: 'execution_finished',
          text: `Outcome unknown: ${reason ?? 'no answer'} after ${seconds(d['duration_ms'])}. It is not retried; check the target system before trying again`,
        };
      }
      return { proposalId: p.id, kind: 'execution_finished', text: `Failed in ${seconds(d['duration_ms'])}${http}${excerpt}` };
    }
    case 'callback_failed':
      return {
        proposalId: p.id,
        kind: 'notice',
        text: `Could not tell agent ${p.agent} that the proposal is ${String(d['status'])} (${String(d['attempts'])} attempts${typeof d['http_status'] === 'number' ? `, last HTTP ${d['http_status']}` : ''})`,
      };
    default:
      return null;
  }
}
