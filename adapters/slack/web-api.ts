import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DeliveryRateLimitedError, PermanentDeliveryError } from '../../src/core/delivery-errors.ts';
import type { SlackSettings } from './platform.ts';

// The Web API calls behind every card: chat.postMessage (cards, thread replies) and chat.update.
// One POST of a JSON body on a kept-alive connection, nothing else. The @slack/web-api client
// (still behind Bolt's clicks and the slash command) spends about three times the CPU of the
// request itself on each call: the body redacted and stringified for debug lines it does not
// print, a form-encoded body, a request queue, a retry wrapper, an AbortSignal and fetch; a
// notify job runs several such calls per proposal. Behaviour the notify queue relies on is kept:
// no retries here (the queue owns them), a 429 tells how long to wait, errors that only a person
// can clear are permanent, and no message carries the token.

/** Slack's own Web API base, when the settings name none. */
export const SLACK_API_URL = 'https://slack.com/api/';

/** What Slack answered: `ok: true` and the method's fields. */
export type SlackAnswer = Record<string, unknown>;

export interface SlackWebApi {
  /** POSTs `args` to `method`; Slack's answer when it says ok, else a delivery error (core/delivery-errors.ts) or a plain, retryable Error. */
  call(method: string, args: Record<string, unknown>): Promise<SlackAnswer>;
  /** Closes the kept-alive connections. */
  close(): void;
}

export interface SlackWebApiOptions {
  /** The whole call, connection included, ms. */
  timeoutMs?: number;
}

/**
 * Web API errors (chat.postMessage, chat.update) that only a person can clear: a wrong or
 * archived channel, a bot not invited, a bad or revoked token, a missing scope, a message Slack
 * refuses as built or can no longer edit. Anything not listed (internal_error, an HTTP 5xx,
 * a code Slack adds later) is retried.
 */
export const PERMANENT_ERRORS: ReadonlySet<string> = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
  'too_many_attachments',
  'no_text',
  'invalid_arguments',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'access_denied',
  'ekm_access_denied',
  'team_access_not_granted',
  'restricted_action',
  'restricted_action_read_only_channel',
  'restricted_action_thread_only_channel',
  'restricted_action_non_threadable_channel',
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
]);

/** Idle connections are closed after this (what fetch does), sooner when Slack's Keep-Alive header says so. */
const IDLE_SOCKET_MS = 4000;

/** Slack's answer, in the words of core's delivery errors. */
export function answerError(method: string, status: number, retryAfter: string | undefined, body: unknown): Error | null {
  if (status === 429) {
    const seconds = Number.parseInt(retryAfter ?? '', 10);
    if (Number.isNaN(seconds)) return new Error(`Slack ${method}: rate limited without a valid Retry-After`);
    return new DeliveryRateLimitedError(`Slack ${method}: rate limited, retry after ${seconds} s`, Math.max(0, seconds) * 1000);
  }
  // Slack's Web API uses no status codes besides 200 and 429: anything else is a proxy or an outage.
  if (status !== 200) return new Error(`Slack ${method}: HTTP ${status}`);
  if (typeof body !== 'object' || body === null) return new Error(`Slack ${method}: the answer is not a JSON object`);
  const { ok, error } = body as { ok?: unknown; error?: unknown };
  if (ok === true) return null;
  const code = typeof error === 'string' ? error : 'unknown_error';
  return PERMANENT_ERRORS.has(code) ? new PermanentDeliveryError(`Slack ${method}: ${code}`) : new Error(`Slack ${method}: ${code}`);
}

export function createSlackWebApi(settings: Pick<SlackSettings, 'botToken' | 'apiUrl'>, options: SlackWebApiOptions = {}): SlackWebApi {
  const base = new URL(settings.apiUrl === null ? SLACK_API_URL : settings.apiUrl.endsWith('/') ? settings.apiUrl : `${settings.apiUrl}/`);
  const secure = base.protocol === 'https:';
  const agent = secure ? new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS }) : new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  const send = secure ? httpsRequest : httpRequest;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const authorization = `Bearer ${settings.botToken}`;
  const target = { protocol: base.protocol, hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'), port: base.port, agent };

  function call(method: string, args: Record<string, unknown>): Promise<SlackAnswer> {
    const body = JSON.stringify(args);
    return new Promise<SlackAnswer>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      };
      const req = send(
        {
          ...target,
          method: 'POST',
          path: `${base.pathname}${method}`,
          headers: {
            authorization,
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(body),
            accept: 'application/json',
            'user-agent': 'countersign',
          },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => fail(new Error(`Slack ${method}: ${e.message}`)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let parsed: unknown = null;
            if (status === 200) {
              try {
                parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
              } catch {
                // answerError says so
              }
            }
            const retryAfter = res.headers['retry-after'];
            const error = answerError(method, status, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, parsed);
            if (error !== null) return fail(error);
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(parsed as SlackAnswer);
          });
        },
      );
      // The whole call, as the Web API client's timeout was (a socket's idle timeout would not bound a slow trickle).
      const timer = setTimeout(() => {
        fail(new Error(`Slack ${method}: no answer within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      req.on('error', (e) => fail(new Error(`Slack ${method}: ${e.message}`)));
      req.end(body);
    });
  }

  return { call, close: () => agent.destroy() };
}
