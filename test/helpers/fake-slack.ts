import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { parse as parseQuery } from 'node:querystring';

// A local stand-in for Slack: the Web API (every call recorded, failures on demand) and
// the response_url endpoint of slash commands; plus helpers that sign requests to
// countersign exactly as Slack does (v0 HMAC of `v0:<ts>:<body>`, form-encoded `payload=`).

export interface SlackCall {
  method: string;
  args: Record<string, any>;
  token: string | null;
  /** HTTP status the fake answered with. */
  status: number;
  /** When the request arrived (Date.now()): for bounds such as "not retried before Retry-After". */
  at: number;
  ok: boolean;
  /** For successful chat.postMessage: the ts it assigned. */
  ts?: string;
}

export type Failure = { status: 429; retryAfter?: number } | { status: 500 | 502 | 503 } | { error: string };

export interface FakeSlack {
  /** SLACK_API_URL for countersign. */
  apiUrl: string;
  origin: string;
  calls: SlackCall[];
  /** Bodies posted to response_urls (slash-command answers). */
  responses: { path: string; body: any }[];
  callsTo(method: string): SlackCall[];
  /**
   * The next `count` calls to `method` (those `match` accepts, when given) fail this way;
   * `before` runs before each failure is answered (to change the world mid-call).
   */
  failNext(method: string, count: number, failure: Failure, match?: (args: Record<string, any>) => boolean, before?: () => Promise<void>): void;
  /** Every later call to `method` is answered only after `ms` (a slow Slack). */
  delay(method: string, ms: number): void;
  responseUrl(): string;
  /**
   * Socket Mode: apps.connections.open answers `url()` (a fake-socket-mode.ts server) to
   * `appToken`, invalid_auth to another xapp- token and not_allowed_token_type to anything else.
   */
  socketMode(options: { appToken: string; url: () => string }): void;
  close(): Promise<void>;
}

const JSON_ARGS = new Set(['blocks', 'view', 'attachments', 'metadata']);

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseArgs(text: string, contentType: string | undefined): Record<string, any> {
  if ((contentType ?? '').includes('json')) return text === '' ? {} : JSON.parse(text);
  const form = parseQuery(text) as Record<string, any>;
  for (const key of Object.keys(form)) {
    if (JSON_ARGS.has(key) && typeof form[key] === 'string') {
      try {
        form[key] = JSON.parse(form[key]);
      } catch {
        // left as sent
      }
    }
  }
  return form;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const responses: { path: string; body: any }[] = [];
  const failures: { method: string; failure: Failure; match: (args: Record<string, any>) => boolean; before?: () => Promise<void> }[] = [];
  const delays = new Map<string, number>();
  let seq = 0;
  let respondSeq = 0;
  let socket: { appToken: string; url: () => string } | null = null;
  const nextTs = () => `1700000000.${String(++seq).padStart(6, '0')}`;

  function answer(method: string, args: Record<string, any>, token: string | null): Record<string, unknown> {
    switch (method) {
      case 'apps.connections.open':
        if (socket === null) return { ok: false, error: 'unknown_method' };
        if (token === socket.appToken) return { ok: true, url: socket.url() };
        return { ok: false, error: token?.startsWith('xapp-') ? 'invalid_auth' : 'not_allowed_token_type' };
      case 'auth.test':
        return { ok: true, user_id: 'U0BOT', bot_id: 'B0BOT', team_id: 'T0TEST', user: 'countersign' };
      case 'chat.postMessage': {
        const ts = nextTs();
        return { ok: true, channel: args['channel'], ts, message: { ts, text: args['text'] } };
      }
      case 'chat.update':
        return { ok: true, channel: args['channel'], ts: args['ts'] };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: nextTs() };
      case 'views.open':
        return { ok: true, view: { id: `V${++seq}` } };
      case 'chat.getPermalink':
        return { ok: true, channel: args['channel'], permalink: `https://fake.slack.test/archives/${String(args['channel'])}/p${String(args['message_ts']).replace('.', '')}` };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  const server: Server = createServer(async (req, res) => {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const text = await readBody(req);
    if (url.pathname.startsWith('/respond/')) {
      responses.push({ path: url.pathname, body: text === '' ? null : JSON.parse(text) });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    const method = url.pathname.replace(/^\/api\//, '');
    const slow = delays.get(method) ?? 0;
    if (slow > 0) await new Promise((r) => setTimeout(r, slow));
    const args = parseArgs(text, req.headers['content-type']);
    const auth = req.headers['authorization'];
    const token = typeof auth === 'string' ? auth.replace(/^Bearer /, '') : typeof args['token'] === 'string' ? args['token'] : null;
    const index = failures.findIndex((f) => f.method === method && f.match(args));
    const entry = index < 0 ? undefined : failures.splice(index, 1)[0]!;
    await entry?.before?.();
    const failure = entry?.failure;
    if (failure !== undefined) {
      if ('status' in failure) {
        calls.push({ method, args, token, status: failure.status, ok: false, at });
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (failure.status === 429) headers['retry-after'] = String(failure.retryAfter ?? 1);
        res.writeHead(failure.status, headers);
        res.end(JSON.stringify({ ok: false, error: failure.status === 429 ? 'ratelimited' : 'internal_error' }));
        return;
      }
      calls.push({ method, args, token, status: 200, ok: false, at });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error: failure.error }));
      return;
    }
    const body = answer(method, args, token);
    const call: SlackCall = { method, args, token, status: 200, ok: body['ok'] === true, at };
    if (method === 'chat.postMessage' && typeof body['ts'] === 'string') call.ts = body['ts'];
    calls.push(call);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const origin = `http://127.0.0.1:${port}`;

  return {
    apiUrl: `${origin}/api/`,
    origin,
    calls,
    responses,
    callsTo: (method) => calls.filter((c) => c.method === method),
    failNext(method, count, failure, match = () => true, before) {
      for (let i = 0; i < count; i++) failures.push({ method, failure, match, ...(before === undefined ? {} : { before }) });
    },
    delay: (method, ms) => void delays.set(method, ms),
    responseUrl: () => `${origin}/respond/${++respondSeq}`,
    socketMode: (options) => void (socket = options),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Resolves with the predicate's first truthy value; polls, never sleeps a fixed time. */
export async function waitFor<T>(predicate: () => T | Promise<T>, { timeoutMs = 10_000, intervalMs = 20, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value !== undefined && value !== null && value !== false) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---- requests as Slack sends them ----

export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SignedOptions {
  /** Unix seconds; now by default. */
  timestamp?: number;
  /** Overrides the computed signature (forgery tests). */
  signature?: string;
  headers?: Record<string, string>;
  contentType?: string;
}

export async function postToSlackEndpoint(
  baseUrl: string,
  secret: string,
  body: string,
  options: SignedOptions = {},
): Promise<{ status: number; text: string; json: any }> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const res = await fetch(`${baseUrl}/slack/events`, {
    method: 'POST',
    headers: {
      'content-type': options.contentType ?? 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? slackSignature(secret, timestamp, body),
      ...options.headers,
    },
    body,
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, text, json };
}

export function payloadBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

let triggerSeq = 0;

export interface ClickSpec {
  user: string;
  proposalId: string;
  action: 'countersign_approve' | 'countersign_deny';
  channel?: string;
  messageTs?: string;
  responseUrl?: string;
}

export function blockActionsPayload(spec: ClickSpec): Record<string, unknown> {
  const channel = spec.channel ?? 'C0FINANCE';
  const ts = spec.messageTs ?? '1700000000.000001';
  return {
    type: 'block_actions',
    token: 'legacy-verification-token',
    api_app_id: 'A0TEST',
    team: { id: 'T0TEST', domain: 'test' },
    user: { id: spec.user, username: spec.user.toLowerCase(), team_id: 'T0TEST' },
    channel: { id: channel, name: 'finance' },
    container: { type: 'message', message_ts: ts, channel_id: channel, is_ephemeral: false },
    message: { type: 'message', ts, text: 'card' },
    trigger_id: `trigger-${++triggerSeq}`,
    response_url: spec.responseUrl ?? 'http://127.0.0.1:9/unused',
    actions: [
      {
        type: 'button',
        action_id: spec.action,
        block_id: `decide:${spec.proposalId}`,
        value: spec.proposalId,
        text: { type: 'plain_text', text: spec.action === 'countersign_approve' ? 'Approve' : 'Deny…' },
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
}

export function viewSubmissionPayload(user: string, view: { callback_id: string; private_metadata: string }, reason: string | null): Record<string, unknown> {
  return {
    type: 'view_submission',
    token: 'legacy-verification-token',
    api_app_id: 'A0TEST',
    team: { id: 'T0TEST', domain: 'test' },
    user: { id: user, name: user.toLowerCase(), team_id: 'T0TEST' },
    trigger_id: `trigger-${++triggerSeq}`,
    view: {
      id: 'V0TEST',
      type: 'modal',
      team_id: 'T0TEST',
      callback_id: view.callback_id,
      private_metadata: view.private_metadata,
      state: { values: { reason: { reason: { type: 'plain_text_input', value: reason } } } },
      hash: 'h',
      blocks: [],
    },
  };
}

export function slashCommandBody(user: string, text: string, responseUrl: string): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: 'T0TEST',
    team_domain: 'test',
    channel_id: 'C0FINANCE',
    channel_name: 'finance',
    user_id: user,
    user_name: user.toLowerCase(),
    command: '/countersign',
    text,
    api_app_id: 'A0TEST',
    response_url: responseUrl,
    trigger_id: `trigger-${++triggerSeq}`,
  }).toString();
}
