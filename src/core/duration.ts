// Durations as people write them in policy files and environment variables: `30s`, `15m`,
// `2h`, `1d`, compounds such as `1h30m`. Milliseconds everywhere else in the code.

const UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

const UNIT_MS = new Map<string, number>(UNITS);
// `ms` must be tried before `m` and `s`, or `5ms` would read as 5 minutes and a stray `s`.
const PART = /(\d+)(ms|d|h|m|s)/y;

/** Parses `30s`, `15m`, `2h`, `1d`, `250ms` or a compound like `1h30m` into milliseconds. */
export function parseDuration(text: string): number {
  const input = text.trim();
  const fail = (why: string): never => {
    throw new Error(`invalid duration ${JSON.stringify(text)}: ${why} (write it like 30s, 15m, 2h, 1d or 1h30m)`);
  };
  if (input === '') fail('it is empty');

  let total = 0;
  let lastRank = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < input.length) {
    const match = PART.exec(input);
    if (match === null) fail(`cannot read it from position ${PART.lastIndex + 1}`);
    const [, digits = '', unit = ''] = match as RegExpExecArray;
    // Descending, non-repeating units keep `30m1h` or `1h1h` from meaning something by accident.
    const rank = UNITS.findIndex(([name]) => name === unit);
    if (rank <= lastRank) fail(`unit "${unit}" is repeated or out of order`);
    lastRank = rank;
    total += Number(digits) * (UNIT_MS.get(unit) ?? 0);
  }
  if (!Number.isSafeInteger(total)) fail('it is too long');
  return total;
}

/** The inverse of parseDuration: 5_400_000 -> `1h30m`, 0 -> `0s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`cannot format duration ${ms}`);
  let rest = Math.round(ms);
  if (rest === 0) return '0s';
  let out = '';
  for (const [name, size] of UNITS) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${name}`;
      rest -= count * size;
    }
  }
  return out;
}
