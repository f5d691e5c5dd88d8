import type { Clock, TokenLedger, TokenRecord, TokenState } from '../../../src/core/ports.ts';

// The token ledger in memory, held to the Redis adapter's behaviour by
// test/contracts/token-ledger.contract.ts (adapters/redis/token-ledger.ts and its token-*.lua scripts),
// with every expiry on the injected clock instead of Redis' own:
//   - the proposal's token slot and the poll pick-up slot hold "<jti> <token>" until the
//     token expires or its execution is over; a slot is forgotten only by its own jti;
//   - a token's state (issued | redeemed | revoked | closed) outlives the token by 7 days;
//   - the agent's token set is trimmed of expired tokens when the agent saves another.
// One difference, on purpose: restorePickup of an expired token answers false (the port's
// rule); the Redis script answers true while storing nothing (see the contract's note).

/** Token state outlives the token, so a late outcome report or redemption gets a clear "no". */
export const STATE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

interface Slot {
  jti: string;
  token: string;
  expiresAt: number;
}

interface TokenEntry {
  proposal_id: string;
  agent: string;
  state: TokenState;
  expires_at: number;
}

/** An agent's kill switch as the ledger keeps it; the memory proposal store reads it at intake. */
export interface MemoryRevocations {
  /** The agent's last revocation and, once lifted, when; null when it was never revoked. */
  revocation(agent: string): { revoked_at: number; restored_at: number | null } | null;
}

export interface MemoryTokenLedger extends TokenLedger, MemoryRevocations {
  /** Every saved record, in order (the token text included): what issuers stored. */
  readonly saved: TokenRecord[];
}

const byScore = <K extends string>(a: [K, number], b: [K, number]) => (a[1] !== b[1] ? a[1] - b[1] : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

export function createMemoryTokenLedger(opts: { clock: Clock }): MemoryTokenLedger {
  const { clock } = opts;
  const tokens = new Map<string, TokenEntry>();
  const proposalTokens = new Map<string, Slot>();
  const pickups = new Map<string, Slot>();
  const agentTokens = new Map<string, Map<string, number>>();
  const executing = new Map<string, number>();
  const revokedAgents = new Map<string, number>();
  const restoredAgents = new Map<string, number>();
  const saved: TokenRecord[] = [];

  /** A live slot, or null once its token expired (Redis drops the key then). */
  function live(slots: Map<string, Slot>, pid: string): Slot | null {
    const slot = slots.get(pid);
    if (slot === undefined) return null;
    if (clock.now() < slot.expiresAt) return slot;
    slots.delete(pid);
    return null;
  }

  function entry(jti: string): TokenEntry | null {
    const t = tokens.get(jti);
    if (t === undefined) return null;
    if (clock.now() < t.expires_at + STATE_RETENTION_MS) return t;
    tokens.delete(jti);
    return null;
  }

  /** Ends a token: forgets its own stored copies, then moves its state (token-revoke.lua). */
  function end(jti: string, to: 'revoked' | 'closed'): boolean {
    const t = entry(jti);
    if (t === null) return false;
    for (const slots of [proposalTokens, pickups]) {
      if (live(slots, t.proposal_id)?.jti === jti) slots.delete(t.proposal_id);
    }
    agentTokens.get(t.agent)?.delete(jti);
    if (t.state === 'issued' || (t.state === 'redeemed' && to === 'revoked')) {
      t.state = to;
      return true;
    }
    return false;
  }

  return {
    saved,

    async save(r) {
      if (r.replace !== true && live(proposalTokens, r.proposal_id) !== null) return false;
      saved.push({ ...r });
      const now = clock.now();
      tokens.set(r.jti, { proposal_id: r.proposal_id, agent: r.agent, state: 'issued', expires_at: r.expires_at });
      const slot = { jti: r.jti, token: r.token, expiresAt: r.expires_at };
      proposalTokens.set(r.proposal_id, { ...slot });
      if (r.pickup) pickups.set(r.proposal_id, { ...slot });
      const set = agentTokens.get(r.agent) ?? new Map<string, number>();
      for (const [jti, expiresAt] of set) if (expiresAt < now) set.delete(jti);
      set.set(r.jti, r.expires_at);
      agentTokens.set(r.agent, set);
      return true;
    },

    async tokenFor(pid, jti) {
      const slot = live(proposalTokens, pid);
      if (slot === null || (jti !== undefined && slot.jti !== jti)) return null;
      return slot.token;
    },

    async takePickup(pid, jti) {
      // Taken whatever the answer, as GETDEL does: a wrong jti still empties the slot.
      const slot = live(pickups, pid);
      pickups.delete(pid);
      if (slot === null || (jti !== undefined && slot.jti !== jti)) return null;
      return slot.token;
    },

    async restorePickup(pid, jti, token) {
      const t = entry(jti);
      if (t === null || t.state !== 'issued' || clock.now() >= t.expires_at) return false;
      if (live(pickups, pid) !== null) return false;
      pickups.set(pid, { jti, token, expiresAt: t.expires_at });
      return true;
    },

    async redeem(jti) {
      const t = entry(jti);
      if (t === null || t.state !== 'issued') return false;
      t.state = 'redeemed';
      return true;
    },

    async state(jti) {
      return entry(jti)?.state ?? null;
    },

    async close(jti) {
      return end(jti, 'closed');
    },

    async revoke(jti) {
      return end(jti, 'revoked');
    },

    async outstandingTokens(agent) {
      const out: { jti: string; proposal_id: string }[] = [];
      for (const [jti] of [...(agentTokens.get(agent) ?? new Map<string, number>())].sort(byScore)) {
        const t = entry(jti);
        if (t !== null && (t.state === 'issued' || t.state === 'redeemed')) out.push({ jti, proposal_id: t.proposal_id });
      }
      return out;
    },

    revocation(agent) {
      const revoked = revokedAgents.get(agent);
      return revoked === undefined ? null : { revoked_at: revoked, restored_at: restoredAgents.get(agent) ?? null };
    },

    async markAgentRevoked(agent, at) {
      revokedAgents.set(agent, at);
      restoredAgents.delete(agent);
    },

    async markAgentRestored(agent, at) {
      const revoked = revokedAgents.get(agent);
      if (revoked === undefined || restoredAgents.has(agent)) return null;
      const restored = Math.max(at, revoked);
      restoredAgents.set(agent, restored);
      return { revoked_at: revoked, restored_at: restored };
    },

    async agentRevokedAt(agent) {
      return revokedAgents.get(agent) ?? null;
    },

    async trackExecuting(pid, deadline) {
      executing.set(pid, deadline);
    },

    async untrackExecuting(pid) {
      executing.delete(pid);
    },

    async executingDeadline(pid) {
      return executing.get(pid) ?? null;
    },

    async overdueExecutions(now, limit) {
      const due = [...executing].filter(([, deadline]) => deadline <= now).sort(byScore);
      return (limit < 0 ? due : due.slice(0, limit)).map(([pid]) => pid);
    },
  };
}
