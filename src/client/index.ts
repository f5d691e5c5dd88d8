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
  fetch?: typeof fetch;
  now?: () => number;
}

/** countersign answered with an error: `status` is the HTTP status, `code` the API's error code. */
export class CountersignApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'CountersignApiError';
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

  constructor(private readonly options: CountersignClientOptions) {
    if (options.secret === '') throw new Error('CountersignClient: the agent secret is empty');
    this.base = options.url.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  get agent(): string {
    return this.options.agent;
  }

  /** Submits an action; `201` new, `200` an earlier proposal with the same idempotency_key. */
  propose(request: ProposalRequest): Promise<SubmitResponse> {
    return this.request<SubmitResponse>('POST', '/v1/proposals', request);
  }

  /** The proposal as it is now (for an approved proposal in poll mode, the first read carries `execution_token`). */
  get(id: string): Promise<ProposalView> {
    return this.request<ProposalView>('GET', `/v1/proposals/${encodeURIComponent(id)}`);
  }

  /**
   * Waits until the proposal is decided (`until: 'decided'`, the default: no longer pending)
   * or finished (`'final'`), or `timeout` seconds pass; then returns it as it is. Never
   * throws for a timeout: check `status`. A read that carries `execution_token` (poll mode:
   * handed out once) is returned at once, whatever `until` says: act, then report.
   */
  async wait(id: string, options: { timeout?: number; until?: 'decided' | 'final'; signal?: AbortSignal } = {}): Promise<ProposalView> {
    const deadline = this.now() + (options.timeout ?? 60) * 1000;
    const done = (p: ProposalView) => (options.until === 'final' ? FINAL.has(p.status) : p.status !== 'pending');
    for (;;) {
      const left = Math.max(0, Math.ceil((deadline - this.now()) / 1000));
      const seconds = Math.min(left, MAX_POLL_SECONDS);
      const p = await this.request<ProposalView>('GET', `/v1/proposals/${encodeURIComponent(id)}/wait?timeout=${seconds}`, undefined, seconds * 1000, options.signal);
      if (p.execution_token !== undefined || done(p) || FINAL.has(p.status) || left === 0 || options.signal?.aborted) return p;
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
