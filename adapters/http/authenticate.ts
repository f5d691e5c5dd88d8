import type { IncomingMessage } from 'node:http';
import type { AppDeps } from '../../src/app/deps.ts';
import { recordAuthFailure } from '../../src/app/record-auth-failure.ts';
import { AuthError } from '../../src/core/errors.ts';
import type { AuthFailureLimiter } from '../../src/core/ports.ts';
import { AGENT_HEADER } from '../../src/core/signing.ts';
import type { AgentAuthenticator, Caller } from './agent-auth.ts';
import type { RequestContext } from './router.ts';

// Every authenticated route goes through here: a failure is a 401 and recordAuthFailure
// (reason, claimed agent, path, address; never a credential).

export function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export type RequestAuthenticator = (ctx: RequestContext, allowAdmin: boolean, allowMcpKey?: boolean) => Promise<Caller>;

export function createRequestAuthenticator(
  deps: Pick<AppDeps, 'audit' | 'clock' | 'logger'>,
  auth: AgentAuthenticator,
  limiter: AuthFailureLimiter,
): RequestAuthenticator {
  return async (ctx, allowAdmin, allowMcpKey = false) => {
    const body = await ctx.body();
    try {
      return await auth.authenticate({ method: ctx.req.method ?? 'GET', route: ctx.req.url ?? '/', headers: ctx.req.headers, body }, allowAdmin, allowMcpKey);
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      const claimed = ctx.req.headers[AGENT_HEADER];
      await recordAuthFailure(deps, limiter, {
        address: clientAddress(ctx.req),
        reason: e.reason,
        via: allowMcpKey ? 'mcp' : 'agent-api',
        details: {
          claimed_agent: typeof claimed === 'string' ? claimed.slice(0, 100) : null,
          method: ctx.req.method ?? '',
          path: new URL(ctx.req.url ?? '/', 'http://x').pathname.slice(0, 200),
        },
      });
      throw e;
    }
  };
}
