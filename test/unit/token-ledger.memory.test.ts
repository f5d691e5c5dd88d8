import { describe, expect, it } from 'vitest';
import { tokenLedgerContract } from '../contracts/token-ledger.contract.ts';
import { createManualClock } from '../helpers/memory/clock.ts';
import { STATE_RETENTION_MS, createMemoryTokenLedger } from '../helpers/memory/token-ledger.ts';

tokenLedgerContract('memory', async () => {
  const clock = createManualClock();
  return { ledger: createMemoryTokenLedger({ clock }), clock };
});

// What needs time to pass, on the fake's clock.
describe('memory TokenLedger', () => {
  const setup = () => {
    const clock = createManualClock();
    const ledger = createMemoryTokenLedger({ clock });
    const record = (pid: string, jti: string, ttlMs = 60_000) => ({ jti, proposal_id: pid, agent: 'ops-agent', expires_at: clock.now() + ttlMs, token: `${jti}.sig`, pickup: true });
    return { clock, ledger, record };
  };

  it('drops the token and its pick-up when the token expires, and refuses to put a pick-up back after', async () => {
    const { clock, ledger, record } = setup();
    await ledger.save(record('p_1', 't1'));
    expect(await ledger.takePickup('p_1')).toBe('t1.sig');
    clock.advance(59_999);
    expect(await ledger.tokenFor('p_1')).toBe('t1.sig');
    expect(await ledger.restorePickup('p_1', 't1', 't1.sig')).toBe(true);
    clock.advance(1);
    expect(await ledger.tokenFor('p_1')).toBeNull();
    expect(await ledger.takePickup('p_1')).toBeNull();
    expect(await ledger.restorePickup('p_1', 't1', 't1.sig')).toBe(false);
    expect(await ledger.state('t1')).toBe('issued');
  });

  it("keeps a token's state for 7 days after it expired, then forgets it", async () => {
    const { clock, ledger, record } = setup();
    await ledger.save(record('p_2', 't2'));
    await ledger.redeem('t2');
    clock.advance(60_000 + STATE_RETENTION_MS - 1);
    expect(await ledger.state('t2')).toBe('redeemed');
    clock.advance(1);
    expect(await ledger.state('t2')).toBeNull();
    expect(await ledger.revoke('t2')).toBe(false);
    expect(await ledger.outstandingTokens('ops-agent')).toEqual([]);
  });

  it("trims an agent's expired tokens when it saves another", async () => {
    const { clock, ledger, record } = setup();
    await ledger.save(record('p_3', 't3', 1_000));
    clock.advance(2_000);
    expect(await ledger.outstandingTokens('ops-agent')).toEqual([{ jti: 't3', proposal_id: 'p_3' }]);
    await ledger.save(record('p_4', 't4'));
    expect(await ledger.outstandingTokens('ops-agent')).toEqual([{ jti: 't4', proposal_id: 'p_4' }]);
    expect(ledger.saved.map((r) => r.jti)).toEqual(['t3', 't4']);
  });
});
