import type { App, RespondArguments, types, webApi } from '@slack/bolt';
import { runChatCommand, type ChatAnswer, type ProposalItem } from '../../src/app/chat-commands.ts';
import type { AppDeps } from '../../src/app/deps.ts';
import type { CardRefStore, Logger } from '../../src/core/ports.ts';
import { showHidden } from '../../src/core/visible-text.ts';
import { batchBlocks } from './batch.ts';
import { LIMITS } from './blocks.ts';
import { SLACK } from './platform.ts';
import { escapeEntities, mrkdwn, neutralize, plain, truncate } from './text.ts';

// The slash command (`/countersign search <words>`, `show <id>`, `pending`): parsed into a
// chat command (src/app/chat-commands.ts, the same for every platform) and its answer laid out
// as a private (ephemeral) message, each proposal with a link to its card's thread. The
// command is acked at once; the work runs after.

export interface CommandContext {
  web: webApi.WebClient;
  deps: AppDeps;
  cards: CardRefStore;
  logger: Logger;
}

type Block = types.KnownBlock;

async function permalink(ctx: CommandContext, item: ProposalItem): Promise<string | null> {
  const ref = item.cards[0];
  if (ref === undefined) return null;
  try {
    const res = await ctx.web.chat.getPermalink({ channel: ref.conversation, message_ts: ref.message });
    return typeof res.permalink === 'string' && /^https?:\/\/[^\s|<>]+$/.test(res.permalink) ? res.permalink : null;
  } catch (e) {
    ctx.logger.warn({ err: (e as Error).message, proposal_id: item.proposal.id }, 'chat.getPermalink failed');
    return null;
  }
}

/** What the agent wrote stays plain text; mrkdwn carries only the id and Slack's own link. */
async function summary(ctx: CommandContext, item: ProposalItem): Promise<Block[]> {
  const p = item.proposal;
  const link = await permalink(ctx, item);
  const what = `${p.action.tool}.${p.action.operation} on ${truncate(p.action.target, 80)}`;
  const text = `${p.status} · ${p.decision.risk} risk · ${p.agent}${item.agentRevoked ? ' (agent revoked)' : ''} · ${what}\n${truncate(p.intent, 200)}`;
  return [
    // Straight from the stored proposal: its hidden characters are shown here, as on the card.
    { type: 'section', text: plain(showHidden(text)) },
    { type: 'context', elements: [mrkdwn(`\`${p.id}\`${link === null ? ' · no Slack card' : ` · <${link}|card thread>`}`)] },
  ];
}

async function layout(ctx: CommandContext, answer: ChatAnswer): Promise<RespondArguments> {
  if (answer.kind === 'text') return { response_type: 'ephemeral', text: neutralize(answer.text) };
  // Words people typed are neutralised; an id stays exact (code), so it can be copied into `show`.
  const about = answer.about === null ? '' : 'id' in answer.about ? ` \`${escapeEntities(answer.about.id)}\`` : ` *${neutralize(answer.about.words)}*`;
  const heading = answer.about === null ? `*${neutralize(answer.heading)}*` : `${neutralize(answer.heading)}${about}`;
  const blocks: Block[] = [{ type: 'section', text: mrkdwn(heading) }];
  if (answer.items.length === 0) blocks.push({ type: 'context', elements: [mrkdwn(neutralize(answer.empty))] });
  for (const item of answer.items) blocks.push(...(await summary(ctx, item)));
  if (answer.history !== null) blocks.push({ type: 'section', text: plain(answer.history) });
  if (answer.batches !== undefined) blocks.push(...batchBlocks(answer.batches, LIMITS.blocks - blocks.length));
  return { response_type: 'ephemeral', replace_original: false, text: heading.replace(/[*`]/g, ''), blocks };
}

export function registerCommands(app: App, ctx: CommandContext): void {
  // Any command name: a workspace may install it as something other than /countersign.
  app.command(/.*/, async ({ ack, command, respond }) => {
    await ack();
    try {
      const answer = await runChatCommand(ctx.deps, ctx.cards, { platform: SLACK, user: command.user_id, trusted: true, text: command.text, invocation: command.command, answersPrivately: true, offersBatches: true });
      await respond(await layout(ctx, answer));
    } catch (e) {
      ctx.logger.error({ err: (e as Error).message }, 'a Slack command failed');
      await respond({ response_type: 'ephemeral', text: ':warning: countersign could not answer that; please try again.' }).catch(() => undefined);
    }
  });
}
