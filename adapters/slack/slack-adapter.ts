import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { AppDeps } from '../../src/app/deps.ts';
import type { CardRef } from '../../src/core/card.ts';
import type { AuthFailureLimiter, CardRefStore, ChatChannel, Logger } from '../../src/core/ports.ts';
import { recordAuthFailure } from '../../src/app/record-auth-failure.ts';
import { renderCard, renderReply } from './blocks.ts';
import { registerCommands } from './commands.ts';
import { registerInteractions } from './interactions.ts';
import { CountersignReceiver } from './receiver.ts';

// The Slack adapter: a ChatChannel (cards, updates, thread replies through the Web API) and
// the handler for POST /slack/events (buttons, the deny modal, the slash command), both
// on @slack/bolt. Outgoing calls never retry on their own (no retries, 429s rejected):
// they run inside notify jobs, and the queue owns retries and backoff, so a rate limit
// or a Slack outage delays the job instead of blocking a worker for half an hour.

export interface SlackAdapterConfig {
  botToken: string;
  signingSecret: string;
  /** Web API base (tests, GovSlack); Slack's own when null. */
  apiUrl: string | null;
  logger: Logger;
  /** Known bot ids spare Bolt an auth.test call; countersign does not need them. */
  botId?: string;
  botUserId?: string;
  /** Per-call timeout for the Web API, ms. */
  timeoutMs?: number;
  now?: () => number;
}

/** What the request handlers need, available once the store is up (see `connect`). */
export interface SlackServices {
  deps: AppDeps;
  cards: CardRefStore;
  /** Whether this address may add another auth_failed audit event now (floods are only logged). */
  failureLimiter?: AuthFailureLimiter;
}

export interface SlackAdapter {
  channel: ChatChannel;
  /** Mount under `/slack/`; only `POST /slack/events` is served. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  connect(services: SlackServices): void;
}

// The Web API client logs whole request bodies at debug level (tokens redacted, cards not):
// too noisy for countersign's debug log, so the client's logger drops debug lines.
function boltLogger(logger: Logger, source: 'bolt' | 'slack-web-api'): BoltLogger {
  let level = LogLevel.INFO;
  const text = (msg: unknown[]) => msg.map((m) => (m instanceof Error ? m.message : String(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => (source === 'bolt' ? logger.debug({ source }, text(msg)) : undefined),
    info: (...msg: unknown[]) => logger.info({ source }, text(msg)),
    warn: (...msg: unknown[]) => logger.warn({ source }, text(msg)),
    error: (...msg: unknown[]) => logger.error({ source }, text(msg)),
    setLevel: (l: LogLevel) => void (level = l),
    getLevel: () => level,
    setName: () => undefined,
  };
}

export function webClientOptions(config: Pick<SlackAdapterConfig, 'apiUrl' | 'timeoutMs'>, logger: BoltLogger): webApi.WebClientOptions {
  return {
    ...(config.apiUrl === null ? {} : { slackApiUrl: config.apiUrl.endsWith('/') ? config.apiUrl : `${config.apiUrl}/` }),
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: config.timeoutMs ?? 10_000,
    logger,
  };
}

export function createSlackAdapter(config: SlackAdapterConfig): SlackAdapter {
  const log = boltLogger(config.logger, 'bolt');
  const clientOptions = webClientOptions(config, boltLogger(config.logger, 'slack-web-api'));
  const web = new webApi.WebClient(config.botToken, clientOptions);
  let services: SlackServices | null = null;
  const need = (): SlackServices => {
    if (services === null) throw new Error('the Slack adapter is not connected yet');
    return services;
  };

  async function auditAuthFailure(reason: string, ip: string, method: string): Promise<void> {
    if (services === null) {
      config.logger.warn({ reason, ip }, 'Slack request failed verification');
      return;
    }
    await recordAuthFailure(services.deps, services.failureLimiter, { address: ip, reason, via: 'slack', details: { method, path: '/slack/events' } });
  }


  const receiver = new CountersignReceiver({
    signingSecret: config.signingSecret,
    logger: log,
    ...(config.now === undefined ? {} : { now: config.now }),
    onAuthFailure: (reason, req) => void auditAuthFailure(reason, req.socket.remoteAddress ?? 'unknown', req.method ?? ''),
  });

  // No `token`: Bolt would call auth.test at construction and fail every click while Slack
  // was unreachable at start. `authorize` hands it the one bot token without a round trip.
  const app = new App({
    receiver,
    authorize: async () => ({
      botToken: config.botToken,
      ...(config.botId === undefined ? {} : { botId: config.botId }),
      ...(config.botUserId === undefined ? {} : { botUserId: config.botUserId }),
    }),
    clientOptions,
    logger: log,
    ignoreSelf: false,
  });
  app.error(async (error) => {
    config.logger.error({ err: error.message, code: (error as { code?: string }).code }, 'Slack listener failed');
  });
  const deps = () => need().deps;
  registerInteractions(app, { web, deps, logger: config.logger });
  registerCommands(app, { web, deps, cards: () => need().cards, logger: config.logger });

  const channel: ChatChannel = {
    platform: 'slack',
    async postCard(target, card): Promise<CardRef> {
      const res = await web.chat.postMessage({ channel: target, ...renderCard(card), unfurl_links: false, unfurl_media: false });
      if (typeof res.ts !== 'string') throw new Error('chat.postMessage answered without a message ts');
      return { platform: 'slack', conversation: typeof res.channel === 'string' ? res.channel : target, message: res.ts };
    },
    async updateCard(ref, card) {
      await web.chat.update({ channel: ref.conversation, ts: ref.message, ...renderCard(card) });
    },
    async replyInThread(ref, reply) {
      await web.chat.postMessage({ channel: ref.conversation, thread_ts: ref.message, ...renderReply(reply), unfurl_links: false, unfurl_media: false });
    },
  };

  return {
    channel,
    handle: async (req, res) => {
      if (services === null) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'unavailable', message: 'Slack is starting' }));
        return;
      }
      await receiver.handle(req, res);
    },
    connect(s) {
      services = s;
    },
  };
}
