import { parse as parseQuery } from 'node:querystring';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTPModuleFunctions, HTTPResponseAck, verifySlackRequest, type App, type Logger as BoltLogger, type Receiver, type ReceiverEvent } from '@slack/bolt';

// A Bolt Receiver fed by countersign's own node:http server (one port for everything),
// instead of Bolt's HTTPReceiver, which wants to own a server. It keeps Bolt's request
// verification (`verifySlackRequest`: v0 HMAC, 5-minute staleness) and adds what Bolt
// leaves out: timestamps too far in the future are refused as well, every refusal is
// reported (for the audit log) and answered 401 before anything is parsed or run.

export const SLACK_EVENTS_PATH = '/slack/events';
const MAX_SKEW_SECONDS = 300;
const BODY_LIMIT = 1024 * 1024;

export interface ReceiverOptions {
  signingSecret: string;
  logger: BoltLogger;
  now?: () => number;
  /** A request that failed verification; never given the body or the signature. */
  onAuthFailure?: (reason: string, req: IncomingMessage) => void;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Why a request is not from Slack, or null when it is. */
export function verificationFailure(secret: string, rawBody: string, req: IncomingMessage, nowMs: number): string | null {
  const signature = header(req, 'x-slack-signature');
  const timestamp = header(req, 'x-slack-request-timestamp');
  if (signature === undefined || timestamp === undefined) return 'missing signature headers';
  if (!/^\d{1,12}$/.test(timestamp)) return 'malformed timestamp';
  const ts = Number(timestamp);
  if (ts - Math.floor(nowMs / 1000) > MAX_SKEW_SECONDS) return 'timestamp in the future';
  try {
    verifySlackRequest({
      signingSecret: secret,
      body: rawBody,
      headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': ts },
      nowMilliseconds: nowMs,
    });
    return null;
  } catch (e) {
    const message = (e as Error).message;
    return /stale/.test(message) ? 'stale timestamp' : /mismatch|version/.test(message) ? 'bad signature' : 'unverifiable request';
  }
}

export function parseSlackBody(rawBody: string, contentType: string | undefined): Record<string, unknown> {
  if ((contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
    const form = parseQuery(rawBody);
    if (typeof form['payload'] === 'string') return JSON.parse(form['payload']) as Record<string, unknown>;
    return form as Record<string, unknown>;
  }
  return JSON.parse(rawBody) as Record<string, unknown>;
}

export class CountersignReceiver implements Receiver {
  private app: App | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ReceiverOptions) {
    this.now = options.now ?? Date.now;
  }

  init(app: App): void {
    this.app = app;
  }

  // The HTTP server is countersign's; there is nothing to start or stop here.
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  /** The handler mounted at /slack/ on countersign's server. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== SLACK_EVENTS_PATH) return reply(res, 404, { error: 'not_found', message: `no route ${req.method ?? ''} ${path}` });
    if (req.method !== 'POST') return reply(res, 405, { error: 'method_not_allowed', message: 'POST only' });
    const app = this.app;
    if (app === undefined) return reply(res, 503, { error: 'unavailable', message: 'Slack is starting' });

    let raw: string;
    let buffered: Awaited<ReturnType<typeof HTTPModuleFunctions.bufferIncomingMessage>>;
    try {
      buffered = await HTTPModuleFunctions.bufferIncomingMessage(req, BODY_LIMIT);
      raw = buffered.rawBody.toString('utf8');
    } catch (e) {
      return reply(res, HTTPModuleFunctions.isRawBodyError(e) && e.statusCode === 413 ? 413 : 400);
    }
    const contentType = header(req, 'content-type');
    // Slack's SSL check carries no signature and must not smuggle anything in: answer and stop.
    if ((contentType ?? '').startsWith('application/x-www-form-urlencoded') && parseQuery(raw)['ssl_check'] === '1') return reply(res, 200);

    const failure = verificationFailure(this.options.signingSecret, raw, req, this.now());
    if (failure !== null) {
      this.options.onAuthFailure?.(failure, req);
      return reply(res, 401);
    }

    let body: Record<string, unknown>;
    try {
      body = parseSlackBody(raw, contentType);
    } catch {
      return reply(res, 400);
    }
    if (body['type'] === 'url_verification') return reply(res, 200, { challenge: body['challenge'] });

    const ack = new HTTPResponseAck({ logger: this.options.logger, processBeforeResponse: false, httpRequest: buffered, httpRequestBody: body, httpResponse: res });
    const retryNum = HTTPModuleFunctions.extractRetryNumFromHTTPRequest(req);
    const retryReason = HTTPModuleFunctions.extractRetryReasonFromHTTPRequest(req);
    const event: ReceiverEvent = {
      body,
      ack: ack.bind(),
      ...(retryNum === undefined ? {} : { retryNum }),
      ...(retryReason === undefined ? {} : { retryReason }),
    };
    try {
      await app.processEvent(event);
    } catch (e) {
      this.options.logger.error('Slack request failed', (e as Error).message);
      if (!res.headersSent) reply(res, 500);
      return;
    }
    // Nothing listened (an event type countersign ignores): acknowledge it so Slack stops retrying.
    if (!res.headersSent) await event.ack().catch(() => reply(res, 200));
  }
}
