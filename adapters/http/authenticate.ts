import type { IncomingMessage } from 'node:http';
import type { AppDeps } from '../../src/app/deps.ts';
import { iso } from '../../src/core/clock.ts';
import { AuthError } from '../../src/core/errors.ts';
import { AGENT_HEADER } from '../../src/core/signing.ts';
import type { AgentAuthenticator, Caller } from './agent-auth.ts';
import type { RequestContext } from './router.ts';

// Every authenticated route goes through here: a failure is a 401, a log line and an
// `auth_failed` audit event (reason, claimed agent, path, address; never a credential).

export function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** Counts failures per address; beyond the limit, failures are still refused but not each audited. */
export interface FailureLimiter {
  /** True while this address may add audit events for its failures in the current window. */
  allow(address: string): Promise<boolean>;
}

export type RequestAuthenticator = (ctx: RequestContext, allowAdmin: boolean) => Promise<Caller>;

export function createRequestAuthenticator(
  deps: Pick<AppDeps, 'audit' | 'clock' | 'logger'>,
  auth: AgentAuthenticator,
  limiter: FailureLimiter,
): RequestAuthenticator {
  return async (ctx, allowAdmin) => {
    const body = await ctx.body();
    try {
      return await auth.authenticate({ method: ctx.req.method ?? 'GET', route: ctx.req.url ?? '/', headers: ctx.req.headers, body }, allowAdmin);
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      const address = clientAddress(ctx.req);
      deps.logger.warn({ reason: e.reason, ip: address }, 'authentication failed');
      // The chain cannot be trimmed, so a flood of bad requests must not grow it without bound.
      if (await limiter.allow(address).catch(() => true)) {
        const claimed = ctx.req.headers[AGENT_HEADER];
        await deps.audit
          .append([
            {
              type: 'auth_failed',
              at: iso(deps.clock.now()),
              proposal_id: null,
              agent: null,
              actor: `ip:${address}`,
              data: {
                reason: e.reason,
                claimed_agent: typeof claimed === 'string' ? claimed.slice(0, 100) : null,
                method: ctx.req.method ?? '',
                path: new URL(ctx.req.url ?? '/', 'http://x').pathname.slice(0, 200),
              },
            },
          ])
          .catch((err: unknown) => deps.logger.error({ error: (err as Error).message }, 'could not record an auth failure'));
      }
      throw e;
    }
  };
}
