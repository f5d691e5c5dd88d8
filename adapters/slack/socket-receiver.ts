import { SocketModeReceiver, webApi, type App, type Logger as BoltLogger, type Receiver, type ReceiverEvent } from '@slack/bolt';
import { ConfigError } from '../../src/core/errors.ts';

// Socket Mode: countersign opens a WebSocket to Slack (apps.connections.open with the
// app-level token, then the `url` it returns) and Slack sends clicks, modal submissions and
// slash commands down it as envelopes, each acknowledged with its envelope_id (and, where
// HTTP would answer with a body, such as a modal's field errors, with that body). Bolt's
// SocketModeReceiver does the protocol, the acks and the reconnects (Slack's `disconnect`
// envelopes, missed pings); this wraps it for what countersign needs on top:
//   - an envelope nothing listens to is still acknowledged (as HTTP answers 200), so Slack
//     shows no error and stops retrying;
//   - a refused app token stops the start with an error naming SLACK_APP_TOKEN, while a Slack
//     that cannot be reached at start is retried in the background (the agent API and the
//     console do not wait for Slack);
//   - stop() closes the socket and waits for its close.
// Nothing arriving here is signed: the socket itself is the authentication (only the holder of
// the app token can open it), so there is no per-request check to fail and nothing to audit
// before the handlers, which record every decision as over HTTP.

export interface SocketReceiverOptions {
  appToken: string;
  /** Web API base for apps.connections.open (SLACK_API_URL); Slack's own when null. */
  apiUrl: string | null;
  /** Bolt's log (info and up) and a quiet one for the socket client, which logs whole envelopes at debug. */
  logger: BoltLogger;
  clientLogger: BoltLogger;
  /** Ping/pong bound; also the wait before a reconnect (Bolt's default 5 s; tests shorten it). */
  pingTimeoutMs?: number;
  /** How long start() waits for the first connection before going on without it. */
  connectWaitMs?: number;
  /** The wait before trying again after Slack refused a reconnect (a revoked token, Socket Mode turned off). */
  retryMs?: number;
}

// Slack refuses these for the token itself: retrying will not help, the operator must act.
const TOKEN_ERRORS = new Set(['not_authed', 'invalid_auth', 'account_inactive', 'token_revoked', 'token_expired', 'not_allowed_token_type', 'missing_scope', 'team_disabled', 'user_removed_from_team']);

export class CountersignSocketReceiver implements Receiver {
  private readonly inner: SocketModeReceiver;
  private started = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly options: SocketReceiverOptions) {
    this.inner = new SocketModeReceiver({
      appToken: options.appToken,
      logger: options.clientLogger,
      ...(options.pingTimeoutMs === undefined ? {} : { clientPingTimeout: options.pingTimeoutMs }),
      installerOptions: {
        clientOptions: {
          ...(options.apiUrl === null ? {} : { slackApiUrl: options.apiUrl.endsWith('/') ? options.apiUrl : `${options.apiUrl}/` }),
          // Only apps.connections.open goes through this client. Bolt reconnects without
          // catching a failure of it, so a network outage is retried here, for as long as it lasts.
          retryConfig: { forever: true, factor: 1.3, maxTimeout: 30_000 },
          timeout: 10_000,
        },
      },
      processEventErrorHandler: async ({ error }) => {
        options.logger.error('Slack envelope failed', error.message);
        return false;
      },
    });
    const client = this.inner.client;
    client.on('connected', () => options.logger.info('Slack Socket Mode connected'));
    client.on('reconnecting', () => options.logger.info('Slack Socket Mode reconnecting'));
    // Bolt reconnects by calling client.start() without catching it: Slack refusing the token
    // then (revoked, Socket Mode turned off) would be an unhandled rejection that ends the
    // process, and with it the agent API and the console. Log it and try again later instead.
    const connect = client.start.bind(client);
    client.start = async () => {
      try {
        return await connect();
      } catch (e) {
        if (!this.started) throw e;
        options.logger.error(`Slack Socket Mode could not reconnect: ${startError(e).message}; trying again`);
        if (!this.stopped) this.retry = setTimeout(() => void client.start(), options.retryMs ?? 30_000);
        return undefined as unknown as Awaited<ReturnType<typeof connect>>;
      }
    };
  }

  init(app: App): void {
    // The Bolt receiver hands each envelope to `processEvent`; this one acks what no listener did.
    const processEvent = async (event: ReceiverEvent): Promise<void> => {
      let acked = false;
      const ack = event.ack;
      const tracked: ReceiverEvent['ack'] = async (response) => {
        acked = true;
        await ack(response);
      };
      await app.processEvent({ ...event, ack: tracked });
      if (!acked) await ack();
    };
    this.inner.init({ processEvent } as unknown as App);
  }

  async start(): Promise<void> {
    const connecting = this.inner.start();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waiting'>((resolve) => (timer = setTimeout(() => resolve('waiting'), this.options.connectWaitMs ?? 10_000)));
    try {
      const outcome = await Promise.race([connecting, waited]);
      this.started = true;
      if (outcome === 'waiting') {
        this.options.logger.warn('Slack Socket Mode is not connected yet; still trying (clicks and slash commands wait for it, cards are posted meanwhile)');
        connecting.catch((e: unknown) => this.options.logger.error('Slack Socket Mode could not connect', (e as Error).message));
      }
    } catch (e) {
      await this.inner.client.disconnect().catch(() => undefined);
      throw startError(e);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.inner.client.disconnect();
  }
}

function startError(e: unknown): Error {
  if (e instanceof webApi.WebAPIPlatformError && TOKEN_ERRORS.has(e.data.error)) {
    return new ConfigError(`SLACK_APP_TOKEN was refused by Slack (${e.data.error}): use the app-level token (xapp-…) of this app, with the connections:write scope, and turn Socket Mode on for the app`);
  }
  const reason = e instanceof webApi.WebAPIPlatformError ? e.data.error : (e as Error).message;
  return new ConfigError(`SLACK_APP_TOKEN: could not open a Socket Mode connection (${reason})`);
}
