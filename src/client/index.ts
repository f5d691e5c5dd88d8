// The agent client: `import { CountersignClient } from 'countersign/client'`.
// It signs every request with the agent's secret exactly as DESIGN.md says (the same code
// the server verifies with), and verifies countersign's signed callbacks to the agent.
import { AGENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, requestTarget, signedHeaders, verifySignature } from '../core/signing.ts';
import type {
  AuditPage,
  AuditSearch,
  CallbackPayload,
  OutcomeResult,
  ProposalRequest,
  ProposalStatus,
  ProposalView,
  SubmitResponse,
} from './types.ts';

export type * from './types.ts';

export interface CountersignClientOptions {
  /** Where countersign listens, e.g. http://127.0.0.1:3000 */
  url: string;
  agent: string;
  /** The agent's HMAC secret (the variable its policy entry names in `secret_env`). */
  secret: string;
  /**
   * The agent's callback URL as the policy lists it (`callback_url`): callbacks are signed
   * over its path, which verifyCallback checks unless it is given the path they arrived at.
   */
  callbackUrl?: string;
  /** Per request, ms (default 30 s; `wait` adds its long-poll time). */
  timeoutMs?: number;
  /**
   * How long one of wait()'s long polls lasts at most, seconds (default 25, at most 120). Each
   * poll names the status this client last read (`status=`), so a decision that lands between
   * two polls is answered as soon as the next one begins.
   */
  longPollSeconds?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

/** countersign answered with an error: `status` is the HTTP status, `code` the API's error code. */
export class CountersignApiError extends Error {
  /**
   * For a 401 (`code` 'unauthorized'), why: 'missing_credentials', 'stale_timestamp' (check the
   * clock), 'bad_signature' (wrong agent id or secret, or a changed body/path) or 'invalid_token';
   * null otherwise.
   */
  readonly reason: string | null;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'CountersignApiError';
    const detail = (body as { code?: unknown } | null)?.code;
    this.reason = typeof detail === 'string' ? detail : null;
  }
}

/** A callback whose signature, timestamp or agent does not check out: do not act on it. */
export class CallbackVerificationError extends Error {
  constructor(readonly reason: string) {
    super(`countersign callback refused: ${reason}`);
    this.name = 'CallbackVerificationError';
  }
}

const FINAL: ReadonlySet<ProposalStatus> = new Set(['denied', 'expired', 'cancelled', 'rejected', 'succeeded', 'failed']);
/** The longest single long-poll the server accepts, seconds. */
const MAX_POLL_SECONDS = 120;
const DEFAULT_POLL_SECONDS = 25;
/** Between reads for a token (and login) on its way: 10 ms, doubling, at most 1 s. */
const HAND_OVER_FIRST_PAUSE_MS = 10;
const HAND_OVER_MAX_PAUSE_MS = 1000;

/**
 * Approved, and the token will come to this agent's read but has not yet: not recorded yet
 * (`execution` null: the mode is not known yet) or recorded for poll mode (its login, if any,
 * still being made). An approved executor or callback execution never hands a token to a read.
 */
function handOverComing(p: ProposalView): boolean {
  if (p.status !== 'approved' || p.execution_token !== undefined) return false;
  const mode = p.execution?.['mode'];
  return p.execution === null || p.execution === undefined || mode === 'poll';
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function headerValue(headers: HeaderBag, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const direct = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(direct) ? direct[0] : direct;
}

export class CountersignClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly pollSeconds: number;

  constructor(private readonly options: CountersignClientOptions) {
    if (options.secret === '') throw new Error('CountersignClient: the agent secret is empty');
    this.base = options.url.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pollSeconds = Math.max(1, Math.min(MAX_POLL_SECONDS, Math.floor(options.longPollSeconds ?? DEFAULT_POLL_SECONDS)));
  }

  get agent(): string {
    return this.options.agent;
  }

  /** Submits an action; `201` new, `200` an earlier proposal with the same idempotency_key. */
  propose(request: ProposalRequest): Promise<SubmitResponse> {
    return this.request<SubmitResponse>('POST', '/v1/proposals', request);
  }

  /**
   * The proposal as it is now. For an approved proposal in poll mode, the first read once the
   * token is ready carries `execution_token` (and `credential`, when the rule issues one).
   */
  get(id: string): Promise<ProposalView> {
    return this.request<ProposalView>('GET', `/v1/proposals/${encodeURIComponent(id)}`);
  }

  /**
   * Waits until the proposal is decided (`until: 'decided'`, the default: no longer pending)
   * or finished (`'final'`), or `timeout` seconds pass; then returns it as it is. Never
   * throws for a timeout: check `status`.
   *
   * Poll mode (no `callback_url`, no executor for the tool): an approved proposal's token is
   * minted a moment after the approval, and its login (`credential`, when the rule has
   * `credentials`) is made on the downstream before the token goes out; wait() keeps reading
   * until that read, and returns it at once, whatever `until` says: the token and the
   * credential are handed out once, so act on them, then report with `reportOutcome`. It stops
   * early when the proposal moves on without them (another reader took them, the login could
   * not be made, the kill switch).
   */
  async wait(id: string, options: { timeout?: number; until?: 'decided' | 'final'; signal?: AbortSignal } = {}): Promise<ProposalView> {
    const deadline = this.now() + (options.timeout ?? 60) * 1000;
    const done = (p: ProposalView) => (options.until === 'final' ? FINAL.has(p.status) : p.status !== 'pending');
    const path = `/v1/proposals/${encodeURIComponent(id)}`;
    const aborted = () => options.signal?.aborted === true;
    // A plain read first: a long poll started on an approved proposal whose token is on its way
    // would sleep until the status changes, which a token waiting for its reader never does.
    let p = await this.request<ProposalView>('GET', path, undefined, 0, options.signal);
    for (let handOverReads = 0; ; ) {
      if (p.execution_token !== undefined || FINAL.has(p.status) || aborted()) return p;
      const leftMs = Math.max(0, deadline - this.now());
      if (handOverComing(p)) {
        if (leftMs === 0) return p;
        await pause(Math.min(HAND_OVER_MAX_PAUSE_MS, HAND_OVER_FIRST_PAUSE_MS * 2 ** handOverReads, leftMs), options.signal);
        handOverReads++;
        if (aborted()) return p;
        p = await this.request<ProposalView>('GET', path, undefined, 0, options.signal);
        continue;
      }
      handOverReads = 0;
      if (done(p) || leftMs === 0) return p;
      const seconds = Math.min(Math.ceil(leftMs / 1000), this.pollSeconds);
      // `status`: what this client last read, so a decision landing before the poll begins answers at once.
      p = await this.request<ProposalView>('GET', `${path}/wait?timeout=${seconds}&status=${p.status}`, undefined, seconds * 1000, options.signal);
    }
  }

  /** Withdraws a pending proposal. A proposal that is no longer pending answers 409. */
  cancel(id: string, reason?: string): Promise<ProposalView> {
    return this.request<ProposalView>('POST', `/v1/proposals/${encodeURIComponent(id)}/cancel`, reason === undefined ? {} : { reason });
  }

  /** For an agent that executes the action itself: the result, with the execution token it was given. */
  reportOutcome(id: string, token: string, result: OutcomeResult): Promise<ProposalView> {
    const body: Record<string, unknown> = { token, status: result.status };
    if (result.status_code !== undefined) body['status_code'] = result.status_code;
    if (result.detail !== undefined) body['detail'] = result.detail;
    return this.request<ProposalView>('POST', `/v1/proposals/${encodeURIComponent(id)}/outcome`, body);
  }

  /** This agent's own audit history (the server scopes it to the agent, whatever is asked). */
  searchAudit(search: AuditSearch = {}): Promise<AuditPage> {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(search)) if (value !== undefined && value !== '') q.set(key, String(value));
    return this.request<AuditPage>('GET', `/v1/audit?${q.toString()}`);
  }

  /**
   * Checks a callback from countersign (signed with this agent's secret, within 300 s) and
   * returns its payload. Pass the raw body exactly as received (re-serialised JSON will not
   * verify) and the path (with query) the callback arrived at (Node: `req.url`): the
   * signature covers it. Without `path`, the path of the `callbackUrl` option is used.
   */
  verifyCallback(headers: HeaderBag, body: string | Buffer, path?: string): CallbackPayload {
    const agent = headerValue(headers, AGENT_HEADER);
    if (agent !== this.options.agent) throw new CallbackVerificationError('it is addressed to another agent');
    const target = path ?? (this.options.callbackUrl === undefined ? undefined : requestTarget(this.options.callbackUrl));
    if (target === undefined) throw new Error('verifyCallback needs the path the callback arrived at, or the callbackUrl option');
    const check = verifySignature(this.options.secret, headerValue(headers, TIMESTAMP_HEADER), headerValue(headers, SIGNATURE_HEADER), { method: 'POST', path: target, body }, this.now());
    if (!check.ok) throw new CallbackVerificationError(check.reason);
    try {
      return JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as CallbackPayload;
    } catch {
      throw new CallbackVerificationError('the body is not JSON');
    }
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, extraMs = 0, signal?: AbortSignal): Promise<T> {
    const raw = body === undefined ? '' : JSON.stringify(body);
    // Sign the path as the server will receive it, including any prefix in the base URL.
    const headers = signedHeaders(this.options.agent, this.options.secret, { method, path: requestTarget(`${this.base}${path}`), body: raw }, this.now());
    const timeout = AbortSignal.timeout(this.timeoutMs + extraMs);
    const res = await this.fetchImpl(`${this.base}${path}`, {
      method,
      headers,
      signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
      ...(method === 'GET' ? {} : { body: raw }),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const error = parsed as { error?: unknown; message?: unknown } | null;
      const code = typeof error?.error === 'string' ? error.error : 'http_error';
      const message = typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`;
      throw new CountersignApiError(res.status, code, `${method} ${path}: ${res.status} ${message}`, parsed);
    }
    return parsed as T;
  }
}
