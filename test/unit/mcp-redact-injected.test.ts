import { describe, expect, it } from 'vitest';
import { createRedactor, REDACTED } from '../../adapters/mcp/redact-injected.ts';

describe('createRedactor', () => {
  const secret = 'sk-live-4f9a';
  const redactor = createRedactor([secret, `Bearer ${secret}`]);

  it('replaces the prefixed value whole, and the raw value alone', () => {
    expect(redactor.text(`auth: Bearer ${secret}; raw ${secret}${secret}`)).toBe(`auth: ${REDACTED}; raw ${REDACTED}${REDACTED}`);
  });

  it('leaves text without the values as it is', () => {
    expect(redactor.text('nothing to see, sk-live-4f9 is not it')).toBe('nothing to see, sk-live-4f9 is not it');
  });

  it('redacts every string of a result, keys included, and leaves the input untouched', () => {
    const result = {
      content: [{ type: 'text', text: `{"credential":"Bearer ${secret}"}` }],
      structuredContent: { [secret]: [1, true, null, { deep: `x${secret}x` }] },
      isError: false,
    };
    const copy = structuredClone(result);
    expect(redactor.deep(result)).toEqual({
      content: [{ type: 'text', text: `{"credential":"${REDACTED}"}` }],
      structuredContent: { [REDACTED]: [1, true, null, { deep: `x${REDACTED}x` }] },
      isError: false,
    });
    expect(result).toEqual(copy);
  });

  it('finds a value as JSON text escapes it', () => {
    const quoted = 'pa"ss\\word';
    const r = createRedactor([quoted]);
    expect(r.text(JSON.stringify({ token: quoted }))).toBe(`{"token":"${REDACTED}"}`);
    expect(r.text(`plain ${quoted}`)).toBe(`plain ${REDACTED}`);
  });

  it('treats regular-expression characters in a value literally', () => {
    const r = createRedactor(['a.b*c']);
    expect(r.text('aXbbbc a.b*c')).toBe(`aXbbbc ${REDACTED}`);
  });

  it('never redacts inside its own marker (a short secret that occurs in "[redacted]")', () => {
    const r = createRedactor(['tokenvalue', 'e']);
    expect(r.text('tokenvalue e')).toBe(`${REDACTED} ${REDACTED}`);
  });

  it('keeps a "__proto__" key as data', () => {
    const parsed = JSON.parse(`{"__proto__": {"polluted": "${secret}"}}`) as Record<string, unknown>;
    const out = redactor.deep(parsed);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ polluted: REDACTED });
  });

  it('ignores empty values (they would match everywhere)', () => {
    const r = createRedactor(['', '']);
    expect(r.text('abc')).toBe('abc');
    const value = { a: 'b' };
    expect(r.deep(value)).toBe(value);
  });
});
