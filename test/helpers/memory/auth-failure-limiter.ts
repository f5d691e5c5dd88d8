import { systemClock, type Clock } from '../../../src/core/clock.ts';
import type { AuthFailureLimiter } from '../../../src/core/ports.ts';

// AuthFailureLimiter in memory, for use-case unit tests (test/contracts states what it
// shares with the Redis one): per address, per minute of the injected clock.

export function createMemoryFailureLimiter(clock: Clock = systemClock, perMinute = 30): AuthFailureLimiter {
  const counts = new Map<string, number>();
  let minute = Number.NaN;
  return {
    async allow(address) {
      const now = Math.floor(clock.now() / 60_000);
      // Only the current minute counts, so older minutes are dropped instead of kept forever.
      if (now !== minute) {
        counts.clear();
        minute = now;
      }
      const count = (counts.get(address) ?? 0) + 1;
      counts.set(address, count);
      return count <= perMinute;
    },
  };
}
