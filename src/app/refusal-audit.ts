import { auditEvent, type AuditEventData } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import type { Proposal } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';

type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** Why it was refused: the entry's data without what every refusal carries (the key, the action). */
export type RefusalWhy = OmitEach<AuditEventData['proposal_refused'], 'idempotency_key' | 'action'>;

/**
 * A proposal refused before anything was stored (revoked agent, over a limit): logged, and
 * audited within the agent's share of the refusal limiter (a flood must not grow the chain
 * without bound); past its share the line is logged at debug only. The refusal stands whatever
 * happens here (a full store refuses the entry, not the answer).
 */
export async function auditRefusal(
  deps: Pick<AppDeps, 'refusalLimiter' | 'logger' | 'audit'>,
  p: Proposal,
  message: string,
  fields: Record<string, unknown>,
  why: RefusalWhy,
): Promise<void> {
  const audited = await deps.refusalLimiter.allow(`agent:${p.agent}`).catch(() => true);
  const line = { agent: p.agent, ...fields, audited };
  if (!audited) {
    deps.logger.debug(line, message);
    return;
  }
  deps.logger.warn(line, message);
  const { tool, operation, target } = p.action;
  try {
    await deps.audit.append([
      auditEvent('proposal_refused', { at: iso(p.created_at), proposal_id: null, agent: p.agent, actor: `agent:${p.agent}` }, {
        ...why,
        idempotency_key: p.idempotency_key,
        action: { tool, operation, target },
      }),
    ]);
  } catch (e) {
    deps.logger.error({ agent: p.agent, error: (e as Error).message }, 'could not record a refused proposal');
  }
}
