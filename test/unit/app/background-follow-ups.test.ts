import { describe, expect, it } from 'vitest';
import { readWithExecutionToken } from '../../../src/app/agent-execution.ts';
import { revokeAgent } from '../../../src/app/revoke-agent.ts';
import { submitProposal } from '../../../src/app/submit-proposal.ts';
import type { ExecutionDeps } from '../../../src/app/execution-deps.ts';
import { createMemoryApp } from '../../helpers/memory/app.ts';

// An allowed proposal is answered before its token is issued (the follow-ups run in the
// background): what may happen between the answer and the issue.

const allowed = { action: { tool: 'crm', operation: 'tag', target: 'cus_1' }, context: { reversible: true } };

/** The token's signing held until `release` (the follow-ups stopped before the issue). */
function holdSigning(x: ExecutionDeps) {
  let release = () => undefined as void;
  const held = new Promise<void>((r) => (release = r));
  const real = x.signer;
  (x as { signer: ExecutionDeps['signer'] }).signer = { ...real, sign: async (claims) => (await held, real.sign(claims)) };
  return () => release();
}

describe('follow-ups after the 201', () => {
  it('the agent revoked between the answer and the issue: no token can be taken, and the proposal ends cancelled', async () => {
    const app = await createMemoryApp();
    const release = holdSigning(app.x);
    const { proposal, created } = await submitProposal(app.deps, app.agent('billing-agent'), app.input(allowed));
    expect([created, proposal.status]).toEqual([true, 'approved']);
    await revokeAgent(app.x, 'billing-agent', 'admin');
    release();
    await app.deps.commits.idle();
    const now = (await app.store.get(proposal.id))!;
    expect(now.status).toBe('cancelled');
    expect((await readWithExecutionToken(app.x, now, { kind: 'agent', id: 'billing-agent' })).token).toBeNull();
    for (const t of app.ledger.saved) expect(await app.ledger.state(t.jti)).toBe('revoked');
  });

  it("the agent's read at once (this process) waits for the issue and takes the token", async () => {
    const app = await createMemoryApp();
    const release = holdSigning(app.x);
    const { proposal } = await submitProposal(app.deps, app.agent('billing-agent'), app.input(allowed));
    const read = readWithExecutionToken(app.x, proposal, { kind: 'agent', id: 'billing-agent' });
    release();
    expect((await read).token).not.toBeNull();
    expect((await app.store.get(proposal.id))?.status).toBe('executing');
  });
});
