import { describe, expect, it } from 'vitest';
import { batchBlocks, parseBatchValue } from '../../adapters/slack/batch.ts';
import { batchSummary, type PendingBatch } from '../../src/app/batch-decisions.ts';
import { proposal } from '../contracts/fixtures.ts';

// The batch buttons under `/countersign pending` stay inside Slack's limits, and say so when
// they had to leave proposals or groups out.

function group(n: number, agent = 'billing-agent', rule = 'payments'): PendingBatch {
  return { agent, rule, risk: 'high', proposals: Array.from({ length: n }, () => proposal({ agent })) };
}
const buttons = (blocks: any[]) => blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements);

describe('Slack batch blocks', () => {
  it('caps a button at 50 ids and 2,000 characters and says it covers the first ones', () => {
    const big = group(63);
    const [button] = buttons(batchBlocks([big], 50));
    expect(button.value.length).toBeLessThanOrEqual(2000);
    expect(parseBatchValue(button.value)!.i).toEqual(big.proposals.slice(0, 50).map((p) => p.id));
    expect(button.text.text).toBe('Approve the first 50 of 63 from billing-agent under rule payments');
    expect(JSON.stringify(batchBlocks([big], 50))).toContain('covers the first 50');

    // Long policy names leave room for fewer ids; the value still fits and the label is cut to 75.
    const long = group(50, 'a'.repeat(300), 'r'.repeat(300));
    const [cut] = buttons(batchBlocks([long], 50));
    expect(cut.value.length).toBeLessThanOrEqual(2000);
    expect(parseBatchValue(cut.value)!.i.length).toBeLessThan(50);
    expect(cut.text.text.length).toBeLessThanOrEqual(75);
  });

  it('keeps the message within its block budget and says how many groups were left out', () => {
    const groups = Array.from({ length: 40 }, (_, i) => group(2, `agent-${i}`));
    const blocks = batchBlocks(groups, 29);
    expect(blocks.length).toBeLessThanOrEqual(29);
    const shown = buttons(blocks).length;
    expect(shown).toBeGreaterThan(0);
    expect(JSON.stringify(blocks.at(-1))).toContain(`${40 - shown} more groups not shown`);
  });

  it('reads back only values it could have made', () => {
    const id = proposal().id;
    expect(parseBatchValue(JSON.stringify({ a: 'x', r: 'y', i: [id] }))).toEqual({ a: 'x', r: 'y', i: [id] });
    expect(parseBatchValue(JSON.stringify({ a: 'x', r: 'y', i: [id, 'p_../../x'] }))).toBeNull();
    expect(parseBatchValue(JSON.stringify({ a: 'x', r: 'y', i: [] }))).toBeNull();
    expect(parseBatchValue('p_not-json')).toBeNull();
  });

  it('summarises a batch in one sentence', () => {
    expect(batchSummary({ batch: 'b_1', vote: 'approve', decided: ['1', '2'], waiting: [], skipped: [{ id: '3', why: 'not_pending' }], refused: [] })).toBe('Approved 2, 1 already decided.');
    expect(batchSummary({ batch: 'b_1', vote: 'approve', decided: ['1', '2'], waiting: ['2'], skipped: [], refused: [] })).toBe('Approved 2 (1 waiting for more approvals).');
    expect(batchSummary({ batch: 'b_1', vote: 'deny', decided: [], waiting: [], skipped: [], refused: [{ id: '1', why: 'sponsor', message: 'you sponsor agent "x"' }] })).toBe('Denied 0, 1 refused (you sponsor agent "x").');
  });
});
