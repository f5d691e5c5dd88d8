import type { Clock } from '../../../src/core/ports.ts';

/** A clock that moves only when the test moves it. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms` (never backwards); returns the new time. */
  advance(ms: number): number;
  /** Sets the time; a test may set it back (replicas' clocks disagree). */
  set(ms: number): void;
}

/** 2030-01-01T00:00:00Z: far from any real clock, so a fake that read Date.now() would show. */
export const T0 = Date.parse('2030-01-01T00:00:00.000Z');

export function createManualClock(start: number = T0): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      if (!(ms >= 0)) throw new Error(`a manual clock only moves forward (advance by ${ms})`);
      now += ms;
      return now;
    },
    set(ms) {
      now = ms;
    },
  };
}
