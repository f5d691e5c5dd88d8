import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.ts';

describe('parseDuration', () => {
  it.each([
    ['1s', 1_000],
    ['30s', 30_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s', 93_784_000],
    ['250ms', 250],
    ['1m5ms', 60_005],
    [' 10s ', 10_000],
    ['0s', 0],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '   ', '10', 's', '1.5h', '-1s', '10 s', '1x', '30m1h', '1h1h', '1hour', '1s ms', '1S'])(
    'refuses %j with a message that names it',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/invalid duration/);
      expect(() => parseDuration(text)).toThrow(JSON.stringify(text));
    },
  );

  it('refuses durations too long to be exact', () => {
    expect(() => parseDuration('99999999999999999d')).toThrow(/too long/);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [1_000, '1s'],
    [900_000, '15m'],
    [5_400_000, '1h30m'],
    [86_400_000 + 1, '1d1ms'],
  ])('formats %d as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips with parseDuration', () => {
    for (const ms of [1, 999, 1_000, 61_001, 3_599_999, 90_061_001]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it('refuses negative and non-finite values', () => {
    expect(() => formatDuration(-1)).toThrow();
    expect(() => formatDuration(Number.NaN)).toThrow();
  });
});
