import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, notifyBackoff, retryAfterMs } from '../../adapters/bullmq/queues.ts';
import { DeliveryRateLimitedError } from '../../src/core/delivery-errors.ts';

// The notify queue's backoff: exponential, never sooner than a platform's Retry-After, and
// never parked longer than MAX_RETRY_AFTER_MS whatever the platform asks.

const limited = (ms: number) => new DeliveryRateLimitedError('rate limited', ms);

describe('notify backoff', () => {
  it('waits at least the Retry-After, else the exponential delay', () => {
    const backoff = notifyBackoff(1000);
    expect(backoff(1, 'retry-after', new Error('x'))).toBe(1000);
    expect(backoff(3, 'retry-after', new Error('x'))).toBe(4000);
    expect(backoff(1, 'retry-after', limited(7000))).toBe(7000);
    expect(backoff(5, 'retry-after', limited(7000))).toBe(16_000);
  });

  it('caps an absurd Retry-After, so the attempts run out and the failure is audited instead of a card parked for days', () => {
    expect(retryAfterMs(limited(1_000_000_000))).toBe(MAX_RETRY_AFTER_MS);
    expect(notifyBackoff(1000)(1, 'retry-after', limited(1_000_000_000))).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs(new Error('other'))).toBe(0);
  });
});
