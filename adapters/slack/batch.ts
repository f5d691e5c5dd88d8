import type { App, BlockAction, ButtonAction, types } from '@slack/bolt';
import { batchSummary, decideBatchClick, MAX_BATCH, type PendingBatch } from '../../src/app/batch-decisions.ts';
import { CountersignError } from '../../src/core/errors.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import { showHidden } from '../../src/core/visible-text.ts';
import { LIMITS } from './blocks.ts';
import type { InteractionContext } from './interactions.ts';
import { SLACK } from './platform.ts';
import { escapeEntities, mrkdwn, neutralize, plain, truncate } from './text.ts';

// "Approve all N from billing-agent under rule payments" under `/countersign pending`: one
// button per (agent, rule) the asker may decide, behind Slack's own confirm dialog. The button
// carries the ids the asker was shown (a snapshot): a proposal that arrived after the list was
// made is never approved blindly. The click is a signed block_actions interaction like any
// other; each proposal is then decided on its own (src/app/batch-decisions.ts).

type Block = types.KnownBlock;

export const ACTION_APPROVE_BATCH = 'countersign_approve_batch';
/** Proposals listed under each group's heading; the button still covers every id it carries. */
const LISTED = 5;
/** Slack's limit for a button's text. */
const BUTTON_TEXT = 75;

/** What the button's value holds: agent, rule, ids. */
interface BatchValue {
  a: string;
  r: string;
  i: string[];
}

/** The ids that fit in one button (Slack's 2,000-character value, MAX_BATCH), soonest expiry first. */
function valueOf(group: PendingBatch): { value: string; count: number } | null {
  const v: BatchValue = { a: group.agent, r: group.rule, i: [] };
  for (const p of group.proposals.slice(0, MAX_BATCH)) {
    if (JSON.stringify({ ...v, i: [...v.i, p.id] }).length > LIMITS.buttonValue) break;
    v.i.push(p.id);
  }
  return v.i.length === 0 ? null : { value: JSON.stringify(v), count: v.i.length };
}

export function parseBatchValue(text: unknown): BatchValue | null {
  if (typeof text !== 'string') return null;
  try {
    const v = JSON.parse(text) as Partial<BatchValue>;
    if (typeof v.a !== 'string' || typeof v.r !== 'string' || !Array.isArray(v.i)) return null;
    const ids = v.i.filter((id): id is string => typeof id === 'string' && PROPOSAL_ID_PATTERN.test(id));
    return ids.length === v.i.length && ids.length > 0 ? { a: v.a, r: v.r, i: ids } : null;
  } catch {
    return null;
  }
}

function groupBlocks(group: PendingBatch, index: number): Block[] | null {
  const fit = valueOf(group);
  if (fit === null) return null;
  const total = group.proposals.length;
  const { agent, rule } = group;
  // Policy names and agents' words alike stay plain text.
  const lines = group.proposals.slice(0, LISTED).map((p) => `• ${p.action.tool}.${p.action.operation} on ${truncate(p.action.target, 60)}: ${truncate(p.intent, 80)}`);
  if (total > LISTED) lines.push(`… and ${total - LISTED} more`);
  const head = `${agent} · rule ${rule} · ${group.risk} risk · ${total} waiting for you`;
  const label = fit.count === total ? `Approve all ${total} from ${agent} under rule ${rule}` : `Approve the first ${fit.count} of ${total} from ${agent} under rule ${rule}`;
  const button: types.Button = {
    type: 'button',
    action_id: ACTION_APPROVE_BATCH,
    text: plain(label, BUTTON_TEXT),
    style: 'primary',
    value: fit.value,
    confirm: {
      title: plain(`Approve ${fit.count} proposal${fit.count === 1 ? '' : 's'}?`, 100),
      text: plain(`Each of the ${fit.count} proposals of ${agent} under rule ${rule} listed when you asked is approved on its own, as if you clicked its card; any decided since is skipped.`, 300),
      confirm: plain(`Approve ${fit.count}`, 30),
      deny: plain('Back', 30),
    },
  };
  const blocks: Block[] = [
    { type: 'section', text: plain(showHidden(`${head}\n${lines.join('\n')}`), LIMITS.section) },
    { type: 'actions', block_id: `batch:${index}`, elements: [button] },
  ];
  if (fit.count < total) blocks.push({ type: 'context', elements: [plain(`The button covers the first ${fit.count}, soonest expiry first; ask again for the rest.`, LIMITS.field)] });
  return blocks;
}

/** The groups with their buttons, in at most `budget` blocks (Slack's 50 per message). */
export function batchBlocks(batches: readonly PendingBatch[], budget: number): Block[] {
  if (budget < 2) return [];
  const blocks: Block[] = [{ type: 'section', text: mrkdwn('*Yours to decide, several at once* (critical and step-up rules: one at a time, on their cards)') }];
  if (batches.length === 0) {
    blocks.push({ type: 'context', elements: [mrkdwn(neutralize('Nothing you may decide here in a batch.'))] });
    return blocks;
  }
  let shown = 0;
  for (const [i, group] of batches.entries()) {
    const more = groupBlocks(group, i);
    // Keep one block for the note that says some groups were left out.
    if (more === null || blocks.length + more.length > budget - 1) break;
    blocks.push(...more);
    shown++;
  }
  if (shown < batches.length) blocks.push({ type: 'context', elements: [plain(`${batches.length - shown} more group${batches.length - shown === 1 ? '' : 's'} not shown (Slack's message limit): decide these first, then ask again.`, LIMITS.field)] });
  return blocks;
}

/** The click: each proposal decided on its own; the answer, privately, is the summary. */
export function registerBatchInteractions(app: App, ctx: InteractionContext): void {
  app.action<BlockAction<ButtonAction>>(ACTION_APPROVE_BATCH, async ({ ack, body, action, context, respond }) => {
    await ack();
    const value = parseBatchValue(action.value);
    const retry = (context.retryNum ?? 0) > 0;
    const say = (text: string) => respond({ response_type: 'ephemeral', replace_original: false, text: escapeEntities(text) }).catch((e: Error) => ctx.logger.warn({ err: e.message }, 'could not answer a Slack batch click'));
    if (value === null) return void (await say('This button is not one countersign made; nothing was decided.'));
    try {
      const result = await decideBatchClick(ctx.deps, { platform: SLACK, user: body.user.id, trusted: true, vote: 'approve', proposalIds: value.i, agent: value.a, rule: value.r });
      if ('stranger' in result) return void (await say(':no_entry: You are not allowed to decide on these proposals: you are not a person in the policy.'));
      // A redelivered click whose first delivery already decided everything is not news.
      if (retry && result.decided.length === 0 && result.refused.length === 0) return;
      await say(batchSummary(result));
    } catch (e) {
      if (e instanceof CountersignError && e.status < 500) return void (await say(`:warning: Nothing was decided: ${e.message}`));
      ctx.logger.error({ err: (e as Error).message }, 'a Slack batch click failed');
      await say(':warning: countersign could not record that click; some proposals may be decided. Run the command again to see what is left.');
    }
  });
}
