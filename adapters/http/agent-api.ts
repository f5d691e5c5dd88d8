import type { AppDeps } from '../../src/app/deps.ts';
import { cancelProposal, getProposal, waitForProposal, type Viewer } from '../../src/app/proposals.ts';
import { searchAudit } from '../../src/app/search-audit.ts';
import { submitProposal } from '../../src/app/submit-proposal.ts';
import { ForbiddenError, ValidationError } from '../../src/core/errors.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import { parseProposalInput, STATUSES, type Proposal, type Status } from '../../src/core/proposal.ts';
import type { Caller } from './agent-auth.ts';
import type { RequestAuthenticator } from './authenticate.ts';
import { readJsonBody } from './json-body.ts';
import { sendJson, type RequestContext, type Router } from './router.ts';
import { auditView, proposalView, submitView } from './views.ts';

// The agent API of DESIGN.md: translate HTTP to use cases and back, nothing more.

export interface AgentApiOptions {
  deps: AppDeps;
  authenticate: RequestAuthenticator;
  /** Poll mode: the execution token for the agent's first read of its approved proposal (and the proposal as that read left it). */
  takeToken?: ((p: Proposal, viewer: Viewer) => Promise<{ token: string | null; proposal: Proposal; credential?: Record<string, string> }>) | undefined;
  /** A token (and the task's login) taken for a client that left before anything was written: offer them to the next read. */
  returnToken?: ((p: Proposal, token: string, credential: Record<string, string> | undefined) => Promise<void>) | undefined;
}

function viewerOf(caller: Caller): Viewer {
  return caller.kind === 'admin' ? { kind: 'admin' } : { kind: 'agent', id: caller.agent.id };
}

export function mountAgentApi(router: Router, { deps, authenticate, takeToken, returnToken }: AgentApiOptions): void {
  /** The proposal's view, with the execution token when this read is the one that takes it. */
  async function viewFor(p: Proposal, viewer: Viewer) {
    const taken = takeToken === undefined ? { token: null, proposal: p } : await takeToken(p, viewer);
    const { token, proposal } = taken;
    if (token === null) return proposalView(proposal);
    const credential = 'credential' in taken ? taken.credential : undefined;
    return credential === undefined ? { ...proposalView(proposal), execution_token: token } : { ...proposalView(proposal), execution_token: token, credential };
  }

  /**
   * Writes a read's answer. A poll-mode read takes the one-time execution token, so it is
   * taken only for a client still there (checked before), viewFor is the last await, and a
   * client that left while the token was being read gets nothing written: the token provably
   * never left, so it is put back for the agent's next read (never handed out twice).
   */
  async function answer(ctx: RequestContext, p: Proposal, viewer: Viewer, gone: () => boolean): Promise<void> {
    if (gone()) return;
    const view = await viewFor(p, viewer);
    if (!gone()) {
      sendJson(ctx.res, 200, view);
      return;
    }
    if ('execution_token' in view && returnToken !== undefined) {
      await returnToken(p, view.execution_token, 'credential' in view ? view.credential : undefined).catch((e: unknown) => deps.logger.error({ err: e, proposal_id: p.id }, 'could not put back an execution token nobody received'));
    }
  }

  const left = (ctx: RequestContext) => () => ctx.res.writableEnded || ctx.res.destroyed || ctx.req.socket.destroyed;

  function proposalId(ctx: RequestContext): string {
    const id = ctx.params['id'] ?? '';
    if (!PROPOSAL_ID_PATTERN.test(id)) throw new ValidationError(`"${id.slice(0, 40)}" is not a proposal id`, [{ path: 'id', code: 'invalid_format', message: 'not a proposal id' }]);
    return id;
  }

  router.on('POST', '/v1/proposals', async (ctx) => {
    const caller = await authenticate(ctx, false);
    if (caller.kind !== 'agent') throw new ForbiddenError('only agents submit proposals');
    const input = parseProposalInput(await readJsonBody(ctx));
    const { proposal, created } = await submitProposal(deps, caller.agent, input, { requestKey: caller.requestKey, signedAt: caller.signedAt });
    sendJson(ctx.res, created ? 201 : 200, submitView(proposal));
  });

  router.on('GET', '/v1/proposals/:id', async (ctx) => {
    const caller = await authenticate(ctx, true);
    const viewer = viewerOf(caller);
    await answer(ctx, await getProposal(deps, viewer, proposalId(ctx)), viewer, left(ctx));
  });

  router.on('GET', '/v1/proposals/:id/wait', async (ctx) => {
    const caller = await authenticate(ctx, true);
    const timeoutText = ctx.query.get('timeout') ?? '30';
    const seconds = Number(timeoutText);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > 120) {
      throw new ValidationError('timeout must be a number of seconds from 0 to 120', [{ path: 'timeout', code: 'out_of_range', message: 'must be 0 to 120 seconds' }]);
    }
    // The status the client last read (optional): a change since then answers at once.
    const seen = ctx.query.get('status') ?? undefined;
    if (seen !== undefined && !(STATUSES as readonly string[]).includes(seen)) {
      throw new ValidationError(`status must be one of ${STATUSES.join(', ')}`, [{ path: 'status', code: 'invalid_value', message: `must be one of ${STATUSES.join(', ')}` }]);
    }
    const abort = new AbortController();
    ctx.res.on('close', () => abort.abort());
    const p = await waitForProposal(deps, viewerOf(caller), proposalId(ctx), seconds * 1000, abort.signal, seen as Status | undefined);
    const closed = left(ctx);
    await answer(ctx, p, viewerOf(caller), () => abort.signal.aborted || closed());
  });

  router.on('POST', '/v1/proposals/:id/cancel', async (ctx) => {
    const caller = await authenticate(ctx, true);
    const body = await readJsonBody(ctx);
    const reason = typeof body === 'object' && body !== null && typeof (body as { reason?: unknown }).reason === 'string' ? (body as { reason: string }).reason.slice(0, 1000) : null;
    const result = await cancelProposal(deps, viewerOf(caller), proposalId(ctx), reason);
    if (result.outcome.kind === 'refused') {
      sendJson(ctx.res, 409, { error: 'conflict', message: result.outcome.message, proposal: proposalView(result.proposal) });
      return;
    }
    sendJson(ctx.res, 200, proposalView(result.proposal));
  });

  router.on('GET', '/v1/audit', async (ctx) => {
    const caller = await authenticate(ctx, true);
    const q = ctx.query;
    const issues: { path: string; code: string; message: string }[] = [];
    const timeParam = (name: string): number | undefined => {
      const v = q.get(name);
      if (v === null || v === '') return undefined;
      const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
      if (Number.isNaN(ms)) issues.push({ path: name, code: 'invalid_date', message: 'must be ISO-8601 or unix seconds' });
      return ms;
    };
    const status = q.get('status') ?? undefined;
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) {
      issues.push({ path: 'status', code: 'invalid_value', message: `must be one of ${STATUSES.join(', ')}` });
    }
    const limit = Number(q.get('limit') ?? '50');
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) issues.push({ path: 'limit', code: 'out_of_range', message: 'must be an integer from 1 to 500' });
    const since = timeParam('since');
    const until = timeParam('until');
    if (issues.length > 0) throw new ValidationError(`invalid audit query: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
    const optional = <K extends string, V>(key: K, value: V | undefined | null) => (value === undefined || value === null || value === '' ? {} : ({ [key]: value } as Record<K, V>));
    const result = await searchAudit(deps.audit, viewerOf(caller), {
      words: (q.get('q') ?? '').split(/\s+/).filter(Boolean),
      limit,
      ...optional('agent', q.get('agent')),
      ...optional('actor', q.get('actor')),
      ...optional('status', status as Status | undefined),
      ...optional('proposalId', q.get('proposal_id')),
      ...optional('since', since),
      ...optional('until', until),
      ...optional('cursor', q.get('cursor')),
    });
    sendJson(ctx.res, 200, { events: result.events.map(auditView), next: result.next });
  });
}
