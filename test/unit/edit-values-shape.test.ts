import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/core/json-input.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { checkEditValues } from '../../src/core/revision.ts';
import { valuesFromForm } from '../../src/core/revision-text.ts';

// An edit's values, whichever platform typed them (console form, Slack modal, Teams input, MCP):
// no JSON shape the agent's own body could not have carried at action.parameters.<key>.

const p = {
  action: { tool: 'invoices', operation: 'send', target: 'cus_1', parameters: { lines: [{ sku: 'a' }], meta: { a: 1 } } },
  decision: { editable: ['lines', 'meta'] },
} as unknown as Pick<Proposal, 'action' | 'decision'>;

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const check = (key: string, text: string) => () => checkEditValues(p, valuesFromForm(p, { [key]: text }));

describe('an edited JSON value', () => {
  it(`may be nested as deep as the agent's body allows there (${MAX_JSON_DEPTH} levels from the body), not one level more; the error names the key`, () => {
    expect(check('lines', nested(MAX_JSON_DEPTH - 3))()).toEqual({ lines: JSON.parse(nested(MAX_JSON_DEPTH - 3)) });
    expect(check('lines', nested(MAX_JSON_DEPTH - 2))).toThrow(/^lines: is nested deeper than 32 levels$/);
    expect(check('lines', nested(3_000))).toThrow(/^lines: /);
  });

  it('may not carry a "__proto__" key at any depth (object copies drop it: what runs would differ from what was approved)', () => {
    expect(check('meta', '{"__proto__": {"admin": true}}')).toThrow(/^meta: "__proto__" is not allowed as a key$/);
    expect(check('lines', '[{"x": {"__proto__": 1}}]')).toThrow(/^lines: /);
    expect(check('meta', '{"proto": 1}')()).toEqual({ meta: { proto: 1 } });
  });
});
