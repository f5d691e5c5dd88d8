// One small error hierarchy. Adapters map `status` to HTTP and `code` to the JSON body;
// messages never contain secrets, tokens or signatures.

export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'agent_revoked'
  | 'rate_limited'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'policy_invalid'
  | 'config_invalid'
  | 'unavailable'
  | 'store_full';

export class CountersignError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, status: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

export interface FieldIssue {
  path: string;
  code: string;
  message: string;
}

export class ValidationError extends CountersignError {
  readonly issues: FieldIssue[];
  constructor(message: string, issues: FieldIssue[]) {
    super('invalid_request', 400, message);
    this.issues = issues;
  }
}

/**
 * What a refused caller is told (the 401's `code`): enough to fix a client, never whether an
 * agent exists (an unknown agent reads as a bad signature).
 */
export type AuthFailureCode = 'missing_credentials' | 'stale_timestamp' | 'bad_signature' | 'invalid_token';

const AUTH_FAILURE_MESSAGES: Record<AuthFailureCode, string> = {
  missing_credentials: 'authentication failed: no credentials (sign the request: x-countersign-agent, x-countersign-timestamp, x-countersign-signature; or a bearer token)',
  stale_timestamp: "authentication failed: the request's x-countersign-timestamp is not whole seconds within 5 minutes of the server's clock (check the agent's clock)",
  bad_signature: 'authentication failed: the signature does not match this agent and secret for this method, path and body',
  invalid_token: 'authentication failed: the bearer token is not accepted',
};

/** 401: who are you? `reason` is for the audit log; callers see `publicCode` and its message. */
export class AuthError extends CountersignError {
  readonly reason: string;
  readonly publicCode: AuthFailureCode;
  constructor(reason: string, publicCode: AuthFailureCode = 'bad_signature') {
    super('unauthorized', 401, AUTH_FAILURE_MESSAGES[publicCode]);
    this.reason = reason;
    this.publicCode = publicCode;
  }
}

export class ForbiddenError extends CountersignError {
  constructor(message = 'not allowed') {
    super('forbidden', 403, message);
  }
}

export class NotFoundError extends CountersignError {
  constructor(message = 'not found') {
    super('not_found', 404, message);
  }
}

/** 403: the agent's kill switch is pulled (`countersign revoke`); it may propose again once restored. */
export class AgentRevokedError extends CountersignError {
  readonly agent: string;
  readonly revokedAt: number;
  constructor(agent: string, revokedAt: number) {
    super('agent_revoked', 403, `agent ${agent} was revoked at ${new Date(revokedAt).toISOString()}: countersign refuses its proposals until an admin restores it`);
    this.agent = agent;
    this.revokedAt = revokedAt;
  }
}

/** 429: over one of the agent's limits (policy `limits:`); nothing was stored. Try again after `retryAfterSeconds`. */
export class RateLimitedError extends CountersignError {
  readonly agent: string;
  /** Which limit (policy/fatigue.ts LimitName). */
  readonly limit: string;
  readonly retryAfterSeconds: number;
  constructor(agent: string, limit: string, message: string, retryAfterMs: number) {
    super('rate_limited', 429, message);
    this.agent = agent;
    this.limit = limit;
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  }
}

export class ConflictError extends CountersignError {
  constructor(message: string) {
    super('conflict', 409, message);
  }
}

export class PayloadTooLargeError extends CountersignError {
  constructor(limitBytes: number) {
    super('payload_too_large', 413, `request body is larger than ${limitBytes} bytes`);
  }
}

export class UnsupportedMediaTypeError extends CountersignError {
  constructor(message: string) {
    super('unsupported_media_type', 415, message);
  }
}

/** The policy file is wrong: names the file, the rule (when there is one) and the reason. */
export class PolicyError extends CountersignError {
  readonly file: string;
  readonly rule: string | undefined;
  readonly reason: string;
  constructor(file: string, rule: string | undefined, reason: string) {
    super('policy_invalid', 500, `${file}${rule === undefined ? '' : `: rule "${rule}"`}: ${reason}`);
    this.file = file;
    this.rule = rule;
    this.reason = reason;
  }
}

/** An environment variable is wrong: names the variable and what is wrong. */
export class ConfigError extends CountersignError {
  constructor(message: string) {
    super('config_invalid', 500, message);
  }
}

/** A dependency (Redis) is not reachable, or a write lost too many races: try again. */
export class UnavailableError extends CountersignError {
  constructor(message: string) {
    super('unavailable', 503, message);
  }
}

/** The store refuses writes because it is out of memory (Redis `maxmemory`, noeviction): nothing was written. */
export class StoreFullError extends CountersignError {
  constructor(message = 'the store is full and refuses writes; try again later') {
    super('store_full', 503, message);
  }
}
