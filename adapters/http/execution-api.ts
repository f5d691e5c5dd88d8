import { z } from 'zod';
import { reportOutcome, redeemToken } from '../../src/app/agent-execution.ts';
import type { ExecutionDeps } from '../../src/app/execution-deps.ts';
import { restoreAgent, revokeAgent } from '../../src/app/revoke-agent.ts';
import { ForbiddenError, ValidationError } from '../../src/core/errors.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import { toFieldIssues } from '../../src/core/proposal.ts';
import { clientAddress, type RequestAuthenticator } from './authenticate.ts';
import { readJsonBody } from './json-body.ts';
import { sendJson, type RequestContext, type Router } from './router.ts';
import { proposalView } from './views.ts';

// Execution routes: the JWKS, token redemption, outcome reports and the admin kill switch (revoke, restore).

// `audience`: the tool the downstream serves; a token minted for another is refused.
const redeemSchema = z.strictObject({ token: z.string().min(1).max(8192), audience: z.string().min(1).max(200).optional() });

const outcomeSchema = z.strictObject({
  token: z.string().min(1).max(8192),
  status: z.enum(['succeeded', 'failed']),
  status_code: z.number().int().min(100).max(999).optional(),
  detail: z.string().max(4000).optional(),
});

async function parseBody<T>(schema: z.ZodType<T>, ctx: RequestContext): Promise<T> {
  const result = schema.safeParse(await readJsonBody(ctx));
  if (!result.success) {
    const issues = toFieldIssues(result.error);
    throw new ValidationError(`invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return result.data;
}

export function mountExecutionApi(x: ExecutionDeps, authenticate: RequestAuthenticator): (router: Router) => void {
  return (router) => {
    router.on('GET', '/.well-known/jwks.json', (ctx) => {
      sendJson(ctx.res, 200, x.signer.jwks(), { 'cache-control': 'public, max-age=300' });
    });

    // Unauthenticated like OAuth introspection by the token's holder: the token is the
    // credential, and every failure looks the same ({active: false}).
    router.on('POST', '/v1/tokens/redeem', async (ctx) => {
      const { token, audience } = await parseBody(redeemSchema, ctx);
      sendJson(ctx.res, 200, await redeemToken(x, token, `ip:${clientAddress(ctx.req)}`, audience));
    });

    router.on('POST', '/v1/proposals/:id/outcome', async (ctx) => {
      const caller = await authenticate(ctx, false);
      if (caller.kind !== 'agent') throw new ForbiddenError('only agents report outcomes');
      const id = ctx.params['id'] ?? '';
      if (!PROPOSAL_ID_PATTERN.test(id)) throw new ValidationError('not a proposal id', [{ path: 'id', code: 'invalid_format', message: 'not a proposal id' }]);
      const report = await parseBody(outcomeSchema, ctx);
      const p = await reportOutcome(x, caller.agent.id, id, report);
      sendJson(ctx.res, 200, proposalView(p));
    });

    router.on('POST', '/v1/agents/:id/revoke', async (ctx) => {
      const caller = await authenticate(ctx, true);
      if (caller.kind !== 'admin') throw new ForbiddenError('revoking an agent needs the admin token');
      sendJson(ctx.res, 200, await revokeAgent(x, ctx.params['id'] ?? '', 'admin'));
    });

    router.on('POST', '/v1/agents/:id/restore', async (ctx) => {
      const caller = await authenticate(ctx, true);
      if (caller.kind !== 'admin') throw new ForbiddenError('restoring an agent needs the admin token');
      sendJson(ctx.res, 200, await restoreAgent(x, ctx.params['id'] ?? '', 'admin'));
    });
  };
}
