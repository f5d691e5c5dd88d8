import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ActivityHandler,
  CardFactory,
  CloudAdapter,
  ConfigurationBotFrameworkAuthentication,
  TurnContext,
  type AdaptiveCardInvokeResponse,
  type Activity,
  type AdaptiveCardInvokeValue,
  type ConversationReference,
  type InvokeResponse,
} from 'botbuilder';
import { ClaimsIdentity, type AuthenticateRequestResult, type ConnectorClient } from 'botframework-connector';
import { runChatCommand, type ChatAnswer } from '../../src/app/chat-commands.ts';
import { mentionsAsIds } from './mentions.ts';
import type { ChatPlatform, PlatformServices } from '../../src/app/platforms.ts';
import { recordAuthFailure } from '../../src/app/record-auth-failure.ts';
import type { CardModel, CardRef } from '../../src/core/card.ts';
import { CountersignError } from '../../src/core/errors.ts';
import { checkJsonMediaType, parseJsonBytes } from '../../src/core/json-input.ts';
import type { ChatChannel } from '../../src/core/ports.ts';
import { channelOf, teamsChannels, threadMessageOf, type TeamsChannelAddress } from './bindings.ts';
import { BotKeysUnavailable, BotTokenRefused, botTokenVerifier, type BotTokenRefusal } from './bot-token.ts';
import { fallbackText, plainAnswer, renderCard, renderProposalList, renderReply, type AdaptiveCard } from './cards.ts';
import { handleCardAction, trustedTenant, type InvokeAnswer } from './invoke.ts';
import { TEAMS, type TeamsSettings } from './platform.ts';

// The Microsoft Teams adapter: a ChatChannel (proactive Adaptive Cards, each starting its
// own thread; updates; replies in the thread) and the handler of POST /api/messages (clicks,
// commands), on botbuilder's CloudAdapter. Every Teams SDK call lives in this folder, so
// moving to @microsoft/agents-hosting (botbuilder's successor) changes only this folder.
// Inbound tokens are checked by bot-token.ts, not by the SDK; without MICROSOFT_APP_ID none
// are checked and none are sent: local tests only (platform.ts refuses it in production).

export interface TeamsOptions {
  /** Teams retries an invoke it has no answer for after about 5 s; answer before that. */
  invokeBudgetMs?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const MAX_BODY = 256 * 1024;

function reference(address: TeamsChannelAddress, conversation: string): Partial<ConversationReference> {
  return {
    channelId: 'msteams',
    serviceUrl: address.serviceUrl,
    conversation: { id: conversation, isGroup: true, conversationType: 'channel', name: '', ...(address.tenant === null ? {} : { tenantId: address.tenant }) },
  };
}

const cardAttachment = (card: AdaptiveCard) => CardFactory.adaptiveCard(card);

// CloudAdapter.process() wants an Express-like request and prints every refused request to
// the console; calling the pipeline directly, with the request already authenticated, keeps the
// HTTP side (and the logs, and the auth_failed audit) countersign's own.
class CountersignCloudAdapter extends CloudAdapter {
  run(auth: string | AuthenticateRequestResult, activity: Activity, logic: (ctx: TurnContext) => Promise<void>): Promise<InvokeResponse | undefined> {
    return typeof auth === 'string' ? this.processActivity(auth, activity, logic) : this.processActivity(auth, activity, logic);
  }
}

/**
 * The activity, read like every JSON body countersign takes (src/core/json-input.ts: JSON
 * media type, UTF-8, depth, no "__proto__"). It is read before the token is checked: the
 * check compares the token with the activity's service URL and channel.
 */
async function readActivity(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk as Buffer);
  }
  checkJsonMediaType(req.headers['content-type']);
  const body = parseJsonBytes(Buffer.concat(chunks));
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
}

const headingOf = (a: Extract<ChatAnswer, { kind: 'proposals' }>) =>
  a.about === null ? a.heading : 'id' in a.about ? `${a.heading} ${a.about.id}` : `${a.heading} "${a.about.words}"`;

/** A chat command's answer as a Teams message: a card of proposals, or plain text. */
function layout(answer: ChatAnswer): { card: AdaptiveCard; summary: string } | { text: string; textFormat: 'plain' } {
  if (answer.kind === 'text') return plainAnswer(answer.text);
  const links = new Map(answer.items.map((i) => [i.proposal.id, i.link]));
  const revoked = new Set(answer.items.filter((i) => i.agentRevoked).map((i) => i.proposal.agent));
  const extra = answer.history === null ? [] : [answer.history];
  return { card: renderProposalList(headingOf(answer), answer.items.map((i) => i.proposal), answer.empty, (id) => links.get(id) ?? '', extra, revoked), summary: headingOf(answer) };
}

export function createTeamsAdapter(config: TeamsSettings, services: PlatformServices, options: TeamsOptions = {}): ChatPlatform<Handler> {
  const { logger, deps } = services;
  const bindings = teamsChannels(services.bindings, () => deps.policy);
  const appId = config.appId ?? '';
  const endpoints = config.endpoints;
  const auth = new ConfigurationBotFrameworkAuthentication({
    ...(config.appId === null ? {} : { MicrosoftAppId: config.appId }),
    ...(config.appPassword === null ? {} : { MicrosoftAppPassword: config.appPassword }),
    ...(config.tenantId === null ? {} : { MicrosoftAppTenantId: config.tenantId }),
    ...(config.appType === null ? {} : { MicrosoftAppType: config.appType }),
    // Once one endpoint is given the SDK fills in none of the others: give them all.
    ...(endpoints.channelService === null ? {} : { ChannelService: endpoints.channelService }),
    ToBotFromChannelOpenIdMetadataUrl: endpoints.openIdMetadataUrl,
    ToBotFromChannelTokenIssuer: endpoints.tokenIssuers[0] ?? '',
    ToChannelFromBotLoginUrl: endpoints.loginUrl,
    ToChannelFromBotOAuthScope: endpoints.oauthScope,
    OAuthUrl: endpoints.oauthUrl,
    ToBotFromEmulatorOpenIdMetadataUrl: endpoints.emulatorOpenIdMetadataUrl,
    CallerId: endpoints.callerId,
  });
  const tokens =
    config.appId === null ? null : botTokenVerifier({ appId: config.appId, openIdMetadataUrl: endpoints.openIdMetadataUrl, issuers: endpoints.tokenIssuers }, { now: () => deps.clock.now() });
  const adapter = new CountersignCloudAdapter(auth);
  adapter.onTurnError = async (_ctx, error) => {
    logger.error({ err: error.message }, 'a Teams turn failed');
  };
  async function send(ctx: TurnContext, answer: ReturnType<typeof layout>): Promise<void> {
    if ('card' in answer) await ctx.sendActivity({ type: 'message', summary: answer.summary, attachments: [cardAttachment(answer.card)] });
    else await ctx.sendActivity({ type: 'message', text: answer.text, textFormat: answer.textFormat });
  }

  class CountersignBot extends ActivityHandler {
    constructor() {
      super();
      this.onMessage(async (ctx, next) => {
        const a = ctx.activity;
        const data = (a.channelData ?? {}) as { channel?: { id?: string }; tenant?: { id?: string } };
        const text = mentionsAsIds(a, TurnContext.removeRecipientMention(a) ?? a.text ?? '');
        const tenant = a.conversation.tenantId ?? data.tenant?.id ?? null;
        const inChannel = a.conversation.conversationType === 'channel';
        const channelId = data.channel?.id ?? (inChannel ? channelOf(a.conversation.id) : null);
        let answer: ChatAnswer;
        try {
          answer = await runChatCommand(deps, services.cards, {
            platform: TEAMS,
            // As for clicks (invoke.ts): only an Entra object id of the expected tenant names a person.
            user: a.from.aadObjectId || a.from.id,
            trusted: typeof a.from.aadObjectId === 'string' && a.from.aadObjectId !== '' && trustedTenant(tenant, config.tenantId),
            text,
            invocation: '',
            answersPrivately: false,
            here: {
              platformName: 'Teams',
              conversation: inChannel ? channelId : null,
              details: { service_url: a.serviceUrl, tenant: tenant ?? config.tenantId },
              // Stored the way bindings were always stored (serviceUrl), so existing ones keep working.
              bind: (key, { service_url: serviceUrl, ...binding }) => services.bindings.bind(TEAMS, key, { ...binding, serviceUrl }),
            },
          });
        } catch (e) {
          logger.error({ err: (e as Error).message }, 'a Teams command failed');
          answer = { kind: 'text', text: 'countersign could not answer that; please try again.' };
        }
        await send(ctx, layout(answer));
        await next();
      });
    }

    protected override async onAdaptiveCardInvoke(ctx: TurnContext, value: AdaptiveCardInvokeValue): Promise<AdaptiveCardInvokeResponse> {
      const a = ctx.activity;
      const data = (a.channelData ?? {}) as { tenant?: { id?: string } };
      const channel = await bindings.forConversation(a.conversation.id).catch(() => null);
      const work = handleCardAction(
        { deps, logger, appTenant: config.tenantId },
        {
          verb: value.action.verb,
          data: (value.action.data ?? {}) as Record<string, unknown>,
          clicker: { aadObjectId: a.from.aadObjectId || null, userId: a.from.id, tenant: a.conversation.tenantId ?? data.tenant?.id ?? null },
          channelTenant: channel?.tenant ?? null,
        },
      );
      // Past the budget the click still counts (the work goes on); the person hears so at once.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<InvokeAnswer>((resolve) => {
        timer = setTimeout(
          () => resolve({ statusCode: 200, type: 'application/vnd.microsoft.activity.message', value: 'countersign is still recording your click; the card will update.' }),
            options.invokeBudgetMs ?? 4000,
        );
      });
      try {
        return (await Promise.race([work, late])) as unknown as AdaptiveCardInvokeResponse;
      } finally {
        clearTimeout(timer);
      }
    }
  }
  const bot = new CountersignBot();

  /** Runs `logic` in a conversation of a channel countersign can reach. */
  async function inConversation(address: TeamsChannelAddress, conversation: string, logic: (ctx: TurnContext) => Promise<void>, rootMessage?: string): Promise<void> {
    await adapter.continueConversationAsync(appId, reference(address, conversation), async (ctx) => {
      // The continuation activity has a random id, which sendActivity would answer (replyToId);
      // a thread reply answers the thread's root message, as Teams' own replies do.
      if (rootMessage !== undefined) ctx.activity.id = rootMessage;
      await logic(ctx);
    });
  }

  async function threadAddress(ref: CardRef): Promise<TeamsChannelAddress> {
    const address = await bindings.forConversation(ref.conversation);
    if (address === null) throw new Error(`no Teams channel is known for ${channelOf(ref.conversation)}`);
    return address;
  }

  type ThreadStart = { type: 'message'; text?: string; textFormat?: string; summary?: string; attachments?: unknown[] };

  /** Posts `activity` as a new conversation of the route's channel (each card, each notice starts its own thread). */
  async function startThread(target: string, activity: ThreadStart): Promise<CardRef> {
    const address = await bindings.forKey(target);
    if (address === null) throw new Error(`Teams route key "${target}" is not connected: an admin writes "@countersign connect <route>" in the channel`);
    let created: { id: string; activityId?: string } | null = null;
    await inConversation(address, address.conversation, async (ctx) => {
      const client = ctx.turnState.get<ConnectorClient>(ctx.adapter.ConnectorClientKey);
      const res = await client.conversations.createConversation({
        isGroup: true,
        channelData: { channel: { id: address.conversation }, ...(address.tenant === null ? {} : { tenant: { id: address.tenant } }) },
        activity,
        ...(address.tenant === null ? {} : { tenantId: address.tenant }),
      } as Parameters<ConnectorClient['conversations']['createConversation']>[0]);
      created = { id: res.id, ...(res.activityId === undefined ? {} : { activityId: res.activityId }) };
    });
    const result = created as { id: string; activityId?: string } | null;
    if (result === null || typeof result.id !== 'string') throw new Error('the Bot Connector created no conversation');
    const message = threadMessageOf(result.id) ?? result.activityId;
    if (message === undefined || message === '') throw new Error('the Bot Connector answered without a message id');
    // Replies go to `<channel>;messageid=<root>` (replyToId alone does not thread in Teams).
    const thread = threadMessageOf(result.id) === null ? `${address.conversation};messageid=${message}` : result.id;
    return { platform: TEAMS, conversation: thread, message };
  }

  const activityOf = (card: CardModel) => ({ type: 'message' as const, summary: fallbackText(card), attachments: [cardAttachment(renderCard(card))] });

  const channel: ChatChannel = {
    platform: TEAMS,
    postCard: (target, card) => startThread(target, activityOf(card)),
    async updateCard(ref, card) {
      await inConversation(await threadAddress(ref), ref.conversation, async (ctx) => {
        await ctx.updateActivity({ ...activityOf(card), id: ref.message });
      });
    },
    async replyInThread(ref, reply) {
      await inConversation(await threadAddress(ref), ref.conversation, async (ctx) => {
        await ctx.sendActivity({ type: 'message', ...renderReply(reply) });
      }, ref.message);
    },
    // A thread of its own, as a card: a plain message, no card attachment; addressed like a
    // card's thread, so that updateNotice finds the channel as updateCard does.
    postNotice: (target, text) => startThread(target, { type: 'message', text, textFormat: 'plain' }),
    async updateNotice(ref, text) {
      await inConversation(await threadAddress(ref), ref.conversation, async (ctx) => {
        await ctx.updateActivity({ type: 'message', text, textFormat: 'plain', id: ref.message });
      });
    },
  };

  async function auditAuthFailure(req: IncomingMessage, reason: BotTokenRefusal): Promise<void> {
    await recordAuthFailure(deps, services.failureLimiter, {
      address: req.socket.remoteAddress ?? 'unknown',
      reason,
      via: TEAMS,
      details: { platform: TEAMS, path: '/api/messages' },
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body?: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/api/messages') return reply(404, { error: 'not_found', message: `no route ${req.method ?? ''} ${path}` });
    if (req.method !== 'POST') return reply(405, { error: 'method_not_allowed', message: 'POST only' });
    let body: Record<string, unknown> | null;
    try {
      body = await readActivity(req);
    } catch (e) {
      if (e instanceof CountersignError) return reply(e.status, { error: e.code, message: e.message });
      throw e;
    }
    if (body === null || typeof body['type'] !== 'string') {
      return reply(400, { error: 'invalid_request', message: 'the body must be a JSON activity of at most 256 KiB' });
    }
    const header = typeof req.headers['authorization'] === 'string' ? req.headers['authorization'] : '';
    let authenticated: string | AuthenticateRequestResult = header;
    if (tokens !== null) {
      try {
        const { claims } = await tokens.verify(header, body);
        // What the SDK's own check would have handed on: the token's claims, authenticated.
        const identity = new ClaimsIdentity(Object.entries(claims).map(([type, value]) => ({ type, value: typeof value === 'string' ? value : JSON.stringify(value) })), true);
        authenticated = { audience: endpoints.oauthScope, callerId: endpoints.callerId, claimsIdentity: identity, connectorFactory: auth.createConnectorFactory(identity) };
      } catch (e) {
        if (e instanceof BotTokenRefused) {
          await auditAuthFailure(req, e.reason);
          return reply(401, { error: 'unauthorized' });
        }
        if (e instanceof BotKeysUnavailable) {
          logger.error({ err: e.message }, 'a Teams request could not be authenticated');
          res.setHeader('retry-after', '10');
          return reply(503, { error: 'unavailable', message: 'the Bot Framework signing keys are unavailable; try again' });
        }
        logger.error({ err: (e as Error).message }, 'a Teams request failed');
        return reply(500, { error: 'internal', message: 'internal error' });
      }
    }
    try {
      const invoke = await adapter.run(authenticated, body as unknown as Activity, (ctx) => bot.run(ctx));
      if (invoke?.body === undefined) {
        res.writeHead(invoke?.status ?? 200);
        res.end();
      } else reply(invoke.status, invoke.body);
    } catch (e) {
      logger.error({ err: (e as Error).message }, 'a Teams request failed');
      reply(500, { error: 'internal', message: 'internal error' });
    }
  }

  return { channel, mounts: { '/api/messages': handle } };
}
