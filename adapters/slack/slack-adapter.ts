import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { ChatPlatform, PlatformServices } from '../../src/app/platforms.ts';
import { recordAuthFailure } from '../../src/app/record-auth-failure.ts';
import type { CardRef } from '../../src/core/card.ts';
import type { ChatChannel, Logger } from '../../src/core/ports.ts';
import { registerBatchInteractions } from './batch.ts';
import { renderCard, renderReply } from './blocks.ts';
import { registerCommands } from './commands.ts';
import { registerInteractions } from './interactions.ts';
import { SLACK, type SlackSettings } from './platform.ts';
import { CountersignReceiver } from './receiver.ts';
import { CountersignSocketReceiver } from './socket-receiver.ts';
import { createSlackWebApi, type SlackAnswer, type SlackWebApi } from './web-api.ts';

// The Slack adapter: a ChatChannel (cards, updates, thread replies through the Web API, on
// web-api.ts) and what comes in (buttons, the modals, the slash command, on @slack/bolt):
// either over a Socket Mode connection countersign opens (socket-receiver.ts) or as
// POST /slack/events (receiver.ts); the same listeners handle both. Outgoing calls never retry on their own (no retries, 429s
// rejected): they run inside notify jobs (or the card relay, which hands a failed post to
// one), and the queue owns retries and backoff, so a rate limit or a Slack outage delays the
// job instead of blocking a worker for half an hour. The
// channel tells the queue what it cannot know: how long a 429 asked to wait, and which
// Slack errors will come back however often the call is repeated.

export interface SlackOptions {
  /** Per-call timeout for the Web API, ms. */
  timeoutMs?: number;
  /** Known bot ids spare Bolt an auth.test call; countersign does not need them. */
  botId?: string;
  botUserId?: string;
  /** Socket Mode's ping/pong bound and wait before a reconnect, ms (Bolt's default 5 s). */
  socketPingTimeoutMs?: number;
  /** How long the start waits for the first Socket Mode connection before going on without it, ms. */
  socketConnectWaitMs?: number;
  /** The wait before another try after Slack refused a Socket Mode reconnect, ms (30 s). */
  socketRetryMs?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

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

export function webClientOptions(settings: Pick<SlackSettings, 'apiUrl'>, options: SlackOptions, logger: BoltLogger): webApi.WebClientOptions {
  return {
    ...(settings.apiUrl === null ? {} : { slackApiUrl: settings.apiUrl.endsWith('/') ? settings.apiUrl : `${settings.apiUrl}/` }),
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: options.timeoutMs ?? 10_000,
    logger,
  };
}

/** Where a chat.postMessage answer says the card went. */
function posted(res: SlackAnswer, target: string): CardRef {
  if (typeof res['ts'] !== 'string') throw new Error('chat.postMessage answered without a message ts');
  return { platform: SLACK, conversation: typeof res['channel'] === 'string' ? res['channel'] : target, message: res['ts'] };
}

/** Outbound only: cards, updates and thread replies, through the lean Web API caller (web-api.ts). */
export function createSlackChannel(api: SlackWebApi): ChatChannel {
  return {
    platform: SLACK,
    async postCard(target, card): Promise<CardRef> {
      return posted(await api.call('chat.postMessage', { channel: target, ...renderCard(card), unfurl_links: false, unfurl_media: false }), target);
    },
    async updateCard(ref, card) {
      await api.call('chat.update', { channel: ref.conversation, ts: ref.message, ...renderCard(card) });
    },
    async replyInThread(ref, reply) {
      await api.call('chat.postMessage', { channel: ref.conversation, thread_ts: ref.message, ...renderReply(reply), unfurl_links: false, unfurl_media: false });
    },
    async postNotice(target, text) {
      // Plain text, no blocks: nothing to click. mrkdwn off, so an agent id never formats or pings.
      return posted(await api.call('chat.postMessage', { channel: target, text, mrkdwn: false, unfurl_links: false, unfurl_media: false }), target);
    },
    async updateNotice(ref, text) {
      await api.call('chat.update', { channel: ref.conversation, ts: ref.message, text });
    },
  };
}

export function slackWebClient(settings: SlackSettings, logger: Logger, options: SlackOptions = {}): webApi.WebClient {
  return new webApi.WebClient(settings.botToken, webClientOptions(settings, options, boltLogger(logger, 'slack-web-api')));
}

export function createSlackAdapter(settings: SlackSettings, services: PlatformServices, options: SlackOptions = {}): ChatPlatform<Handler> {
  const { logger, deps } = services;
  const log = boltLogger(logger, 'bolt');
  const clientOptions = webClientOptions(settings, options, boltLogger(logger, 'slack-web-api'));
  const web = slackWebClient(settings, logger, options);

  const socket =
    settings.appToken === null
      ? null
      : new CountersignSocketReceiver({
          appToken: settings.appToken,
          apiUrl: settings.apiUrl,
          logger: log,
          clientLogger: boltLogger(logger, 'slack-web-api'),
          ...(options.socketPingTimeoutMs === undefined ? {} : { pingTimeoutMs: options.socketPingTimeoutMs }),
          ...(options.socketConnectWaitMs === undefined ? {} : { connectWaitMs: options.socketConnectWaitMs }),
          ...(options.socketRetryMs === undefined ? {} : { retryMs: options.socketRetryMs }),
        });
  const receiver = new CountersignReceiver({
    signingSecret: settings.signingSecret ?? '',
    logger: log,
    now: () => deps.clock.now(),
    onAuthFailure: (reason, req) =>
      void recordAuthFailure(deps, services.failureLimiter, {
        address: req.socket.remoteAddress ?? 'unknown',
        reason,
        via: SLACK,
        details: { method: req.method ?? '', path: '/slack/events' },
      }),
  });

  // No `token`: Bolt would call auth.test at construction and fail every click while Slack
  // was unreachable at start. `authorize` hands it the one bot token without a round trip.
  const app = new App({
    receiver: socket ?? receiver,
    authorize: async () => ({
      botToken: settings.botToken,
      ...(options.botId === undefined ? {} : { botId: options.botId }),
      ...(options.botUserId === undefined ? {} : { botUserId: options.botUserId }),
    }),
    clientOptions,
    logger: log,
    ignoreSelf: false,
  });
  app.error(async (error) => {
    logger.error({ err: error.message, code: (error as { code?: string }).code }, 'Slack listener failed');
  });
  registerInteractions(app, { web, deps, logger });
  registerBatchInteractions(app, { web, deps, logger });
  registerCommands(app, { web, deps, cards: services.cards, logger });

  const channel = createSlackChannel(createSlackWebApi(settings, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }));
  // In Socket Mode nothing comes over HTTP: /slack/ is not mounted, so no unsigned path exists.
  if (socket !== null) return { channel, mounts: {}, start: () => socket.start(), stop: () => socket.stop() };
  return { channel, mounts: { '/slack/': (req, res) => receiver.handle(req, res) } };
}
