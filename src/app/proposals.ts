import { ForbiddenError, NotFoundError, StoreFullError, UnavailableError } from '../core/errors.ts';
import { cancel, expire, isFinal, isOverdue, type CancelOutcome } from '../core/lifecycle.ts';
import type { Proposal, Status } from '../core/proposal.ts';
import type { AppDeps } from './deps.ts';
import { mutate, type Mutation } from './mutate.ts';

// Reading, waiting on and withdrawing proposals, as an agent (only its own) or an admin.

export type Viewer = { kind: 'agent'; id: string } | { kind: 'admin' };

async function load(deps: AppDeps, id: string): Promise<Proposal> {
  const p = await deps.store.get(id);
  if (p === null) throw new NotFoundError(`no proposal ${id}`);
  return p;
}

function checkAccess(viewer: Viewer, p: Proposal): void {
  // Same answer for "not yours" whether or not it exists would hide ids, but agents get
  // ids only from their own submissions, and a clear 403 helps an operator debug.
  if (viewer.kind === 'agent' && viewer.id !== p.agent) throw new ForbiddenError('this proposal belongs to another agent');
}

/** The proposal, expired first if its deadline passed and no job has done it yet. */
export async function getProposal(deps: AppDeps, viewer: Viewer, id: string): Promise<Proposal> {
  const p = await load(deps, id);
  checkAccess(viewer, p);
  if (isOverdue(p, deps.clock.now())) return (await expireProposal(deps, id)).proposal;
  return p;
}

/**
 * Long-poll: returns as soon as the status differs from what it was at the call, or at the
 * timeout; at once when the status is final, since nothing can change it any more.
 * `seen`: the status the caller last read. A decision that landed between that read and this
 * call is answered at once, instead of sleeping on the new status until the timeout.
 */
export async function waitForProposal(deps: AppDeps, viewer: Viewer, id: string, timeoutMs: number, signal?: AbortSignal, seen?: Status): Promise<Proposal> {
  const first = await getProposal(deps, viewer, id);
  const deadline = deps.clock.now() + timeoutMs;
  const from = seen ?? first.status;
  let current = first;
  while (current.status === from && !isFinal(current.status) && !signal?.aborted) {
    const now = deps.clock.now();
    if (now >= deadline) break;
    // Wake at the expiry too, so a waiter sees "expired" even if no job has run yet.
    const untilExpiry = current.status === 'pending' && current.expires_at !== null ? current.expires_at - now + 20 : Infinity;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // Listen first, then read: a change committed in between is not missed.
      const changed = deps.changes.waitForChange(id, Math.max(1, Math.min(deadline - now, untilExpiry)), stop.signal);
      current = await getProposal(deps, viewer, id);
      if (current.status === from) {
        await changed;
        current = await getProposal(deps, viewer, id);
      }
    } finally {
      // Also on a failed read: the listener and its timer must not outlive the request.
      stop.abort();
      signal?.removeEventListener('abort', onAbort);
    }
  }
  return current;
}

export async function cancelProposal(deps: AppDeps, viewer: Viewer, id: string, reason: string | null): Promise<Mutation<CancelOutcome>> {
  checkAccess(viewer, await load(deps, id));
  const actor = viewer.kind === 'agent' ? `agent:${viewer.id}` : 'admin';
  return mutate(deps, id, (p, now) => cancel(p, actor, reason, now));
}

export async function expireProposal(deps: AppDeps, id: string): Promise<Mutation<{ expired: boolean }>> {
  return mutate(deps, id, (p, now) => expire(p, now));
}

/**
 * Proposals the sweep expires at once. One by one, a sweep expired 320-480 a second on a 2-core
 * box (16 at once: 1,000-1,950), so a busier second's proposals expired seconds late.
 */
const EXPIRE_SIDE_BY_SIDE = 16;

/**
 * The expire sweep: expires everything overdue. Each proposal on its own: one that cannot be
 * expired (its key deleted by hand) must not hold up the others, which it would at every sweep,
 * the earliest deadline being read first.
 */
export async function expireOverdue(deps: AppDeps, limit = 500): Promise<number> {
  const ids = await deps.store.pendingDueBy(deps.clock.now(), limit);
  let count = 0;
  let next = 0;
  const worker = async () => {
    for (let id = ids[next++]; id !== undefined; id = ids[next++]) {
      try {
        const r = await expireProposal(deps, id);
        if (r.outcome.expired) count++;
      } catch (e) {
        // The store itself failing fails every other one too: the sweep ends, the next one tries again.
        if (e instanceof UnavailableError || e instanceof StoreFullError) throw e;
        deps.logger.warn({ proposal_id: id, error: (e as Error).message }, 'expire sweep: a pending proposal could not be expired');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(EXPIRE_SIDE_BY_SIDE, ids.length) }, worker));
  return count;
}
