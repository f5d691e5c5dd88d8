import { describe, expect, it } from 'vitest';
import type { AuthFailureLimiter, Clock } from '../../src/core/ports.ts';

// What every AuthFailureLimiter does (src/core/ports.ts): at most `perMinute` audited
// failures per address in each minute of the injected clock (minutes start at multiples of
// 60 000 ms). `make` gives a limiter with counts of its own, on the clock it is handed.

let n = 0;
const address = () => `10.${process.pid % 250}.${Math.floor(++n / 250)}.${n % 250}`;

function movableClock(at: number): Clock & { set(ms: number): void } {
  let now = at;
  return { now: () => now, set: (ms) => void (now = ms) };
}

export function authFailureLimiterContract(make: (clock: Clock, perMinute: number) => Promise<AuthFailureLimiter> | AuthFailureLimiter): void {
  describe('AuthFailureLimiter contract', () => {
    // A minute long past: whatever the wall clock says, the limiter goes by this one.
    const MINUTE = 60_000 * 1_000_003;

    it('allows perMinute failures of one address in a minute, then refuses', async () => {
      const limiter = await make(movableClock(MINUTE + 5_000), 3);
      const ip = address();
      expect([await limiter.allow(ip), await limiter.allow(ip), await limiter.allow(ip)]).toEqual([true, true, true]);
      expect(await limiter.allow(ip)).toBe(false);
      expect(await limiter.allow(ip)).toBe(false);
    });

    it('counts each address apart (IPv4, IPv6, an unknown one)', async () => {
      const limiter = await make(movableClock(MINUTE), 1);
      const ips = [address(), `::ffff:${address()}`, 'fe80::1%eth0', 'unknown'];
      for (const ip of ips) expect(await limiter.allow(ip)).toBe(true);
      for (const ip of ips) expect(await limiter.allow(ip)).toBe(false);
    });

    it("a new minute of the clock starts a new count; the minute's last millisecond does not", async () => {
      const clock = movableClock(MINUTE);
      const limiter = await make(clock, 2);
      const ip = address();
      await limiter.allow(ip);
      await limiter.allow(ip);
      clock.set(MINUTE + 59_999);
      expect(await limiter.allow(ip)).toBe(false);
      clock.set(MINUTE + 60_000);
      expect(await limiter.allow(ip)).toBe(true);
      expect(await limiter.allow(ip)).toBe(true);
      expect(await limiter.allow(ip)).toBe(false);
    });

    it('concurrent failures are all counted', async () => {
      const limiter = await make(movableClock(MINUTE + 30_000), 5);
      const ip = address();
      const answers = await Promise.all(Array.from({ length: 8 }, () => limiter.allow(ip)));
      expect(answers.filter(Boolean)).toHaveLength(5);
    });
  });
}
