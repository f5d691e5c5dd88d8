// How a chat platform's refusal reaches the notify queue. Each platform adapter decides which of
// its own errors mean which (core and app never name one); anything else is an ordinary error,
// retried with backoff. Messages name the platform's error code, never a token.

/**
 * The platform will refuse this message again however often it is sent (the channel does not
 * exist, the bot was never invited, the token is revoked, the card is refused): do not retry.
 * Someone can still fix the cause (invite the bot, unarchive the channel), so a post that failed
 * this way gets a later, slower round while its proposal is pending.
 */
export class PermanentDeliveryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentDeliveryError';
  }
}

/** The platform asked to be called again no sooner than `retryAfterMs`: the next attempt waits at least that. */
export class DeliveryRateLimitedError extends Error {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DeliveryRateLimitedError';
    this.retryAfterMs = retryAfterMs;
  }
}
