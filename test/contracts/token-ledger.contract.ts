import { describe, expect, it } from 'vitest';
import { newId } from '../../src/core/ids.ts';
import type { Clock, TokenLedger, TokenRecord } from '../../src/core/ports.ts';

// What every TokenLedger must do, run against the Redis adapter
// (test/integration/token-ledger.contract.redis.test.ts) and the memory fake
// (test/unit/token-ledger.memory.test.ts). `make` gives a ledger with no tokens and the clock
// its expiries follow (Redis: the real one; the fake: a manual clock). What needs time to pass
// (a token expiring in place) is tested on the fake alone, where the clock can be moved.

export type TokenLedgerSubject = { ledger: TokenLedger; clock: Clock };

export function tokenLedgerContract(name: string, make: () => Promise<TokenLedgerSubject>): void {
  describe(`TokenLedger contract: ${name}`, () => {
    let clock: Clock;
    const record = (pid: string, jti: string, token: string, replace = false, over: Partial<TokenRecord> = {}): TokenRecord => ({
      jti, proposal_id: pid, agent: 'ops-agent', expires_at: clock.now() + 60_000, token, pickup: true, replace, ...over,
    });
    const fresh = async () => {
      const subject = await make();
      clock = subject.clock;
      return subject.ledger;
    };
    const pid = () => newId('p', Date.now());

    it("a losing issuer's revocation leaves the winner's token (after a recovery replaced it)", async () => {
      const ledger = await fresh();
      const p = pid();
      // A live issuer stores its token; a recovery pass replaces it and wins the record; the
      // live issuer loses the record and revokes its own token.
      expect(await ledger.save(record(p, 't-live', 'live.token.sig'))).toBe(true);
      expect(await ledger.save(record(p, 't-recovery', 'recovery.token.sig', true))).toBe(true);
      expect(await ledger.revoke('t-live')).toBe(true);
      expect(await ledger.tokenFor(p)).toBe('recovery.token.sig');
      expect(await ledger.tokenFor(p, 't-recovery')).toBe('recovery.token.sig');
      expect(await ledger.tokenFor(p, 't-live')).toBeNull();
      expect(await ledger.state('t-recovery')).toBe('issued');
      // The pick-up slot too, and only its own token is handed out.
      expect(await ledger.takePickup(p, 't-recovery')).toBe('recovery.token.sig');
      expect(await ledger.takePickup(p, 't-recovery')).toBeNull();
    });

    it('close: an issued token becomes closed and its copies go; a redeemed one stays redeemed', async () => {
      const ledger = await fresh();
      const a = pid();
      await ledger.save(record(a, 't-close-a', 'a.token.sig'));
      expect(await ledger.close('t-close-a')).toBe(true);
      expect(await ledger.state('t-close-a')).toBe('closed');
      expect(await ledger.tokenFor(a)).toBeNull();
      expect(await ledger.takePickup(a)).toBeNull();
      expect(await ledger.redeem('t-close-a')).toBe(false);
      expect(await ledger.outstandingTokens('ops-agent')).not.toContainEqual({ jti: 't-close-a', proposal_id: a });

      const b = pid();
      await ledger.save(record(b, 't-close-b', 'b.token.sig'));
      expect(await ledger.outstandingTokens('ops-agent')).toContainEqual({ jti: 't-close-b', proposal_id: b });
      expect(await ledger.redeem('t-close-b')).toBe(true);
      expect(await ledger.close('t-close-b')).toBe(false);
      expect(await ledger.state('t-close-b')).toBe('redeemed');
    });

    it('keeps one token per proposal: a second issuer loses unless it replaces', async () => {
      const ledger = await fresh();
      const p = pid();
      expect(await ledger.save(record(p, 't-first', 'first.sig'))).toBe(true);
      expect(await ledger.save(record(p, 't-second', 'second.sig'))).toBe(false);
      expect(await ledger.tokenFor(p)).toBe('first.sig');
      expect(await ledger.state('t-second')).toBeNull();
      expect(await ledger.tokenFor(pid())).toBeNull();
    });

    it('hands the poll-mode token to the first taker only, and never to another jti', async () => {
      const ledger = await fresh();
      const polled = pid();
      await ledger.save(record(polled, 't-poll', 'poll.sig'));
      expect(await ledger.takePickup(polled, 't-other')).toBeNull();
      const pushed = pid();
      await ledger.save(record(pushed, 't-push', 'push.sig', false, { pickup: false }));
      expect(await ledger.takePickup(pushed)).toBeNull();
      expect(await ledger.tokenFor(pushed)).toBe('push.sig');
      const again = pid();
      await ledger.save(record(again, 't-again', 'again.sig'));
      const takes = await Promise.all([ledger.takePickup(again), ledger.takePickup(again), ledger.takePickup(again)]);
      expect(takes.filter((t) => t !== null)).toEqual(['again.sig']);
      // The token itself stays available to the executor side.
      expect(await ledger.tokenFor(again, 't-again')).toBe('again.sig');
    });

    it('puts back a pick-up nobody received, only while the token is issued and the slot empty', async () => {
      const ledger = await fresh();
      const p = pid();
      await ledger.save(record(p, 't-restore', 'restore.sig'));
      expect(await ledger.restorePickup(p, 't-restore', 'restore.sig')).toBe(false);
      expect(await ledger.takePickup(p)).toBe('restore.sig');
      expect(await ledger.restorePickup(p, 't-restore', 'restore.sig')).toBe(true);
      expect(await ledger.takePickup(p, 't-restore')).toBe('restore.sig');
      expect(await ledger.restorePickup(p, 't-unknown', 'x.sig')).toBe(false);
      expect(await ledger.redeem('t-restore')).toBe(true);
      expect(await ledger.restorePickup(p, 't-restore', 'restore.sig')).toBe(false);
      expect(await ledger.takePickup(p)).toBeNull();
    });

    it('redeems a token once, never after it was revoked; revokes a redeemed one', async () => {
      const ledger = await fresh();
      const p = pid();
      await ledger.save(record(p, 't-once', 'once.sig'));
      const redeems = await Promise.all([ledger.redeem('t-once'), ledger.redeem('t-once'), ledger.redeem('t-once')]);
      expect(redeems.filter(Boolean)).toHaveLength(1);
      expect(await ledger.state('t-once')).toBe('redeemed');
      expect(await ledger.revoke('t-once')).toBe(true);
      expect(await ledger.state('t-once')).toBe('revoked');
      expect(await ledger.revoke('t-once')).toBe(false);
      expect(await ledger.close('t-once')).toBe(false);

      const q = pid();
      await ledger.save(record(q, 't-revoked', 'revoked.sig'));
      expect(await ledger.revoke('t-revoked')).toBe(true);
      expect(await ledger.redeem('t-revoked')).toBe(false);
      expect(await ledger.tokenFor(q)).toBeNull();
      expect(await ledger.takePickup(q)).toBeNull();

      for (const op of [ledger.redeem('t-nobody'), ledger.revoke('t-nobody'), ledger.close('t-nobody')]) expect(await op).toBe(false);
      expect(await ledger.state('t-nobody')).toBeNull();
    });

    it("lists an agent's outstanding tokens, issued or redeemed, soonest expiry first", async () => {
      const ledger = await fresh();
      const agent = `agent-${newId('a', Date.now()).slice(2, 12)}`;
      const [p1, p2, p3] = [pid(), pid(), pid()];
      await ledger.save(record(p1, `${agent}-1`, 'one.sig', false, { agent, expires_at: clock.now() + 90_000 }));
      await ledger.save(record(p2, `${agent}-2`, 'two.sig', false, { agent, expires_at: clock.now() + 30_000 }));
      await ledger.save(record(p3, `${agent}-3`, 'three.sig', false, { agent, expires_at: clock.now() + 60_000 }));
      await ledger.redeem(`${agent}-3`);
      expect(await ledger.outstandingTokens(agent)).toEqual([
        { jti: `${agent}-2`, proposal_id: p2 },
        { jti: `${agent}-3`, proposal_id: p3 },
        { jti: `${agent}-1`, proposal_id: p1 },
      ]);
      await ledger.close(`${agent}-2`);
      await ledger.revoke(`${agent}-3`);
      expect(await ledger.outstandingTokens(agent)).toEqual([{ jti: `${agent}-1`, proposal_id: p1 }]);
      expect(await ledger.outstandingTokens('agent-with-no-tokens')).toEqual([]);
    });

    it('keeps an expired token out of reach but remembers its state; its proposal may get a new one', async () => {
      const ledger = await fresh();
      const p = pid();
      expect(await ledger.save(record(p, 't-stale', 'stale.sig', false, { expires_at: clock.now() - 1_000 }))).toBe(true);
      expect(await ledger.tokenFor(p)).toBeNull();
      expect(await ledger.takePickup(p)).toBeNull();
      expect(await ledger.state('t-stale')).toBe('issued');
      expect(await ledger.save(record(p, 't-fresh', 'fresh.sig'))).toBe(true);
      expect(await ledger.tokenFor(p)).toBe('fresh.sig');
    });

    it('remembers when an agent was last revoked', async () => {
      const ledger = await fresh();
      const agent = `agent-${newId('a', Date.now()).slice(2, 12)}`;
      expect(await ledger.agentRevokedAt(agent)).toBeNull();
      await ledger.markAgentRevoked(agent, 1_000);
      await ledger.markAgentRevoked(agent, 5_000);
      expect(await ledger.agentRevokedAt(agent)).toBe(5_000);
      expect(await ledger.agentRevokedAt(`${agent}-other`)).toBeNull();
    });

    it('restore lifts only a pulled switch, keeps the revocation time, and is never dated before it', async () => {
      const ledger = await fresh();
      const agent = `agent-${newId('a', Date.now()).slice(2, 12)}`;
      expect(await ledger.markAgentRestored(agent, 1_000)).toBeNull(); // never revoked
      await ledger.markAgentRevoked(agent, 5_000);
      // A replica whose clock is behind the one that revoked: the restore is dated at the revocation.
      expect(await ledger.markAgentRestored(agent, 4_000)).toEqual({ revoked_at: 5_000, restored_at: 5_000 });
      expect(await ledger.agentRevokedAt(agent)).toBe(5_000);
      expect(await ledger.markAgentRestored(agent, 6_000)).toBeNull(); // already restored: nothing changes
      // Revoked again (even at an earlier clock reading): the earlier restore no longer counts.
      await ledger.markAgentRevoked(agent, 4_500);
      expect(await ledger.markAgentRestored(agent, 7_000)).toEqual({ revoked_at: 4_500, restored_at: 7_000 });
      expect(await ledger.agentRevokedAt(agent)).toBe(4_500);
    });

    it('tracks claimed executions and lists the overdue ones, earliest deadline first', async () => {
      const ledger = await fresh();
      const [a, b, c] = [pid(), pid(), pid()];
      await ledger.trackExecuting(a, 1_000);
      await ledger.trackExecuting(b, 500);
      await ledger.trackExecuting(c, 2_000);
      expect(await ledger.executingDeadline(a)).toBe(1_000);
      expect(await ledger.overdueExecutions(1_500, 10)).toEqual([b, a]);
      expect(await ledger.overdueExecutions(1_500, 1)).toEqual([b]);
      expect(await ledger.overdueExecutions(499, 10)).toEqual([]);
      await ledger.trackExecuting(b, 3_000);
      await ledger.untrackExecuting(a);
      expect(await ledger.executingDeadline(a)).toBeNull();
      expect(await ledger.overdueExecutions(2_500, 10)).toEqual([c]);
    });
  });
}
