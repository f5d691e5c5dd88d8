import type { App, RespondArguments, types, webApi } from '@slack/bolt';
import type { AppDeps } from '../../src/app/deps.ts';
import { searchAudit } from '../../src/app/search-audit.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import type { CardRefStore, Logger } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import { mrkdwn, neutralize, plain, truncate } from './text.ts';

// `/countersign search <words>`, `show <id>`, `pending`: private answers (ephemeral, through
// the command's response_url) for people in the policy, each proposal with a link to its
// card's thread. The command is acked at once; the search runs after.

export interface CommandContext {
  web: webApi.WebClient;
  deps: () => AppDeps;
  cards: () => CardRefStore;
  logger: Logger;
}

type Block = types.KnownBlock;
const MAX_RESULTS = 10;

const USAGE = [
  '*countersign* answers only you:',
  '• `/countersign search <words>`: proposals whose audit trail mentions every word',
  '• `/countersign show <proposal id>`: one proposal and its history',
  '• `/countersign pending`: proposals waiting for a decision',
].join('\n');

async function permalink(ctx: CommandContext, proposalId: string): Promise<string | null> {
  const ref = (await ctx.cards().list(proposalId)).find((r) => r.platform === 'slack');
  if (ref === undefined) return null;
  try {
    const res = await ctx.web.chat.getPermalink({ channel: ref.conversation, message_ts: ref.message });
    return typeof res.permalink === 'string' && /^https?:\/\/[^\s|<>]+$/.test(res.permalink) ? res.permalink : null;
  } catch (e) {
    ctx.logger.warn({ err: (e as Error).message, proposal_id: proposalId }, 'chat.getPermalink failed');
    return null;
  }
}

/** What the agent wrote stays plain text; mrkdwn carries only the id and Slack's own link. */
async function summary(ctx: CommandContext, p: Proposal): Promise<Block[]> {
  const link = await permalink(ctx, p.id);
  const what = `${p.action.tool}.${p.action.operation} on ${truncate(p.action.target, 80)}`;
  const text = `${p.status} · ${p.decision.risk} risk · ${p.agent} · ${what}\n${truncate(p.intent, 200)}`;
  return [
    { type: 'section', text: plain(text) },
    { type: 'context', elements: [mrkdwn(`\`${p.id}\`${link === null ? ' · no Slack card' : ` · <${link}|card thread>`}`)] },
  ];
}

async function answer(ctx: CommandContext, heading: string, proposals: Proposal[], empty: string, extra: Block[] = []): Promise<RespondArguments> {
  const blocks: Block[] = [{ type: 'section', text: mrkdwn(heading) }];
  if (proposals.length === 0) blocks.push({ type: 'context', elements: [mrkdwn(empty)] });
  for (const p of proposals.slice(0, MAX_RESULTS)) blocks.push(...(await summary(ctx, p)));
  return { response_type: 'ephemeral', replace_original: false, text: heading.replace(/[*`]/g, ''), blocks: [...blocks, ...extra] };
}

async function search(ctx: CommandContext, words: string[]): Promise<RespondArguments> {
  const deps = ctx.deps();
  const { events } = await searchAudit(deps.audit, { kind: 'admin' }, { words, limit: 200 });
  const ids = [...new Set(events.map((e) => e.proposal_id).filter((id): id is string => id !== null))].slice(0, MAX_RESULTS);
  const proposals = (await Promise.all(ids.map((id) => deps.store.get(id)))).filter((p): p is Proposal => p !== null);
  return answer(ctx, `Proposals matching *${neutralize(truncate(words.join(' '), 200))}*`, proposals, 'Nothing in the audit log matches every word.');
}

async function show(ctx: CommandContext, id: string): Promise<RespondArguments> {
  const deps = ctx.deps();
  const p = PROPOSAL_ID_PATTERN.test(id) ? await deps.store.get(id) : null;
  if (p === null) return { response_type: 'ephemeral', text: `No proposal ${neutralize(truncate(id, 60))}.` };
  const { events } = await searchAudit(deps.audit, { kind: 'admin' }, { words: [], proposalId: p.id, limit: 40 });
  const timeline = events
    .reverse()
    .map((e) => `${e.at.replace(/\.\d{3}Z$/, 'Z')}  ${e.type}  ${e.actor}`)
    .join('\n');
  const history: Block[] = timeline === '' ? [] : [{ type: 'section', text: plain(`History\n${timeline}`) }];
  return answer(ctx, `Proposal \`${p.id}\``, [p], '', history);
}

async function pending(ctx: CommandContext): Promise<RespondArguments> {
  const proposals = await ctx.deps().store.listPending(MAX_RESULTS);
  return answer(ctx, '*Pending proposals*, soonest expiry first', proposals, 'Nothing is waiting for a decision.');
}

export function registerCommands(app: App, ctx: CommandContext): void {
  // Any command name: a workspace may install it as something other than /countersign.
  app.command(/.*/, async ({ ack, command, respond }) => {
    await ack();
    const deps = ctx.deps();
    const [verb = '', ...rest] = command.text.trim().split(/\s+/).filter((w) => w !== '');
    try {
      if (deps.policy.personByPlatformId('slack', command.user_id) === undefined) {
        await respond({ response_type: 'ephemeral', text: 'Only people listed in the countersign policy may use this command.' });
        return;
      }
      let reply: RespondArguments;
      if (verb === 'search' && rest.length > 0) reply = await search(ctx, rest.slice(0, 20));
      else if (verb === 'show' && rest[0] !== undefined) reply = await show(ctx, rest[0]);
      else if (verb === 'pending') reply = await pending(ctx);
      else reply = { response_type: 'ephemeral', text: USAGE };
      await respond(reply);
    } catch (e) {
      ctx.logger.error({ err: (e as Error).message, verb }, 'a Slack command failed');
      await respond({ response_type: 'ephemeral', text: ':warning: countersign could not answer that; please try again.' }).catch(() => undefined);
    }
  });
}
