import { auditEvent } from '../core/audit.ts';
import { iso } from '../core/clock.ts';
import type { AuthFailureLimiter } from '../core/ports.ts';
import type { AppDeps } from './deps.ts';

// Every refused credential, wherever it was presented (agent API, Slack, console sign-in):
// a log line, and an `auth_failed` audit event unless this address has already had its
// share this minute (the chain cannot be trimmed, so a flood must not grow it without
// bound). Callers pass only what is safe to keep: never a secret, signature or token.

export interface AuthFailure {
  /** The client's address. */
  address: string;
  /** Why it was refused, a short code (`bad_signature`, `wrong_console_key`, …). */
  reason: string;
  /** Where: `agent-api`, `slack`, `console`. */
  via: string;
  details?: Record<string, unknown>;
}

export async function recordAuthFailure(
  deps: Pick<AppDeps, 'audit' | 'clock' | 'logger'>,
  limiter: AuthFailureLimiter | undefined,
  failure: AuthFailure,
): Promise<void> {
  const { address, reason, via, details = {} } = failure;
  deps.logger.warn({ reason, ip: address, via }, 'authentication failed');
  try {
    if (limiter !== undefined && !(await limiter.allow(address).catch(() => true))) return;
    await deps.audit.append([
      auditEvent('auth_failed', { at: iso(deps.clock.now()), proposal_id: null, agent: null, actor: `ip:${address}` }, { reason, via, ...details }),
    ]);
  } catch (err) {
    deps.logger.error({ error: (err as Error).message }, 'could not record an auth failure');
  }
}
