import type { App, BlockAction, ButtonAction, webApi } from '@slack/bolt';
import type { AppDeps } from '../../src/app/deps.ts';
import { checkClick, decideClick, type PlatformClick } from '../../src/app/record-decision.ts';
import { NotFoundError } from '../../src/core/errors.ts';
import type { RefusalReason, VoteOutcome } from '../../src/core/lifecycle.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { Vote } from '../../src/core/proposal.ts';
import { cardFor } from '../../src/app/deliver-notification.ts';
import { editClick } from '../../src/app/edit-proposal.ts';
import { ValidationError } from '../../src/core/errors.ts';
import { valuesFromForm } from '../../src/core/revision-text.ts';
import { ACTION_EDIT, EDIT_BLOCK_PREFIX, EDIT_CALLBACK, editedValues, editModal, parseEditMeta, type EditModalMeta } from './edit-modal.ts';
import { ACTION_APPROVE, ACTION_DENY, ACTION_OPEN_CONSOLE, DENY_CALLBACK, REASON_ACTION, REASON_BLOCK, denyModal, type DenyModalMeta } from './blocks.ts';
import { SLACK } from './platform.ts';
import { escapeEntities } from './text.ts';

// Button clicks and the deny modal. Every handler acks first (Slack wants an answer
// within 3 s) and then does its work: the decision itself goes through recordDecision,
// which is atomic in Redis, so a double click, a redelivery or two replicas taking the
// same click at once count one vote; the card itself is updated by the notify queue.

export interface InteractionContext {
  web: webApi.WebClient;
  deps: AppDeps;
  logger: Logger;
}

type Refusal = Extract<VoteOutcome, { kind: 'refused' }>;

// A redelivered click whose first delivery already counted is not news to the person.
const QUIET_ON_RETRY = new Set<RefusalReason>(['already_voted', 'not_pending']);

/** The refusal sentence (the same on every platform), with Slack's mark for its kind. */
function refusalText(r: Refusal, sentence: string): string {
  const mark = r.why === 'reason_required' ? ':warning: ' : r.why === 'unknown_person' || r.why === 'not_an_approver' || r.why === 'sponsor' ? ':no_entry: ' : '';
  return `${mark}${sentence}`;
}

async function tellPrivately(ctx: InteractionContext, channel: string | null, user: string, text: string): Promise<void> {
  if (channel === null) {
    ctx.logger.warn({ slack_user: user }, 'a private Slack reply had no channel to go to');
    return;
  }
  try {
    await ctx.web.chat.postEphemeral({ channel, user, text: escapeEntities(text) });
  } catch (e) {
    ctx.logger.warn({ err: (e as Error).message, slack_user: user }, 'could not send a private Slack reply');
  }
}

interface Click {
  proposalId: string;
  user: string;
  channel: string | null;
  retry: boolean;
}

async function refuse(ctx: InteractionContext, click: Click, refusal: Refusal, sentence: string | null): Promise<void> {
  if (sentence === null || (click.retry && QUIET_ON_RETRY.has(refusal.why))) return;
  await tellPrivately(ctx, click.channel, click.user, refusalText(refusal, sentence));
}

const asClick = (click: Click, vote: Vote, reason: string | null = null): PlatformClick => ({ proposalId: click.proposalId, platform: SLACK, user: click.user, trusted: true, vote, reason });

async function guarded(ctx: InteractionContext, click: Click, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (e) {
    if (e instanceof NotFoundError) return tellPrivately(ctx, click.channel, click.user, 'This proposal no longer exists.');
    ctx.logger.error({ err: (e as Error).message, proposal_id: click.proposalId }, 'a Slack click failed');
    await tellPrivately(ctx, click.channel, click.user, ':warning: countersign could not record that click; please try again.');
  }
}

function clickOf(body: BlockAction, action: ButtonAction, retryNum: number | undefined): Click | null {
  if (typeof action.value !== 'string' || action.value === '') return null;
  return { proposalId: action.value, user: body.user.id, channel: body.channel?.id ?? null, retry: (retryNum ?? 0) > 0 };
}

export function registerInteractions(app: App, ctx: InteractionContext): void {
  app.action<BlockAction<ButtonAction>>(ACTION_APPROVE, async ({ ack, body, action, context }) => {
    await ack();
    const click = clickOf(body, action, context.retryNum);
    if (click === null) return;
    await guarded(ctx, click, async () => {
      const result = await decideClick(ctx.deps, asClick(click, 'approve'));
      if (result.outcome.kind === 'refused') await refuse(ctx, click, result.outcome, result.notice);
    });
  });

  // The link opens in the person's browser; Slack tells the app about the click all the same.
  app.action<BlockAction<ButtonAction>>(ACTION_OPEN_CONSOLE, async ({ ack }) => {
    await ack();
  });

  app.action<BlockAction<ButtonAction>>(ACTION_DENY, async ({ ack, body, action, context }) => {
    await ack();
    const click = clickOf(body, action, context.retryNum);
    if (click === null) return;
    await guarded(ctx, click, async () => {
      // Ask for a reason only from someone who may deny; the stranger hears no more than that.
      const check = await checkClick(ctx.deps, asClick(click, 'deny'));
      if (!check.allowed) return refuse(ctx, click, check.outcome, check.notice);
      const p = check.proposal;
      const meta: DenyModalMeta = { p: p.id, c: click.channel, r: check.reasonRequired };
      // trigger_id is valid for 3 s from the click: open at once, before anything slower.
      try {
        await ctx.web.views.open({ trigger_id: body.trigger_id, view: denyModal({ proposalId: p.id, action: p.action, risk: p.decision.risk }, meta) });
      } catch (e) {
        // A redelivered click carries a trigger_id its first delivery already used.
        ctx.logger.warn({ err: (e as Error).message, proposal_id: p.id, retry: click.retry }, 'could not open the Slack deny dialog');
        if (!click.retry) await tellPrivately(ctx, click.channel, click.user, 'The deny dialog did not open in time; please click Deny again.');
      }
    });
  });

  registerEditInteractions(app, ctx);

  app.view(DENY_CALLBACK, async ({ ack, body, view }) => {
    let meta: DenyModalMeta;
    try {
      meta = JSON.parse(view.private_metadata) as DenyModalMeta;
    } catch {
      await ack();
      return;
    }
    const reason = (view.state.values[REASON_BLOCK]?.[REASON_ACTION]?.value ?? '').trim();
    if (meta.r && reason === '') {
      await ack({ response_action: 'errors', errors: { [REASON_BLOCK]: 'A reason is required to deny this proposal.' } });
      return;
    }
    await ack();
    const click: Click = { proposalId: meta.p, user: body.user.id, channel: meta.c, retry: false };
    await guarded(ctx, click, async () => {
      const result = await decideClick(ctx.deps, asClick(click, 'deny', reason === '' ? null : reason));
      if (result.outcome.kind === 'refused') await refuse(ctx, click, result.outcome, result.notice);
    });
  });
}

/** Approve with edits: the Edit button opens the modal (edit-modal.ts); its submission is the edit. */
function registerEditInteractions(app: App, ctx: InteractionContext): void {
  app.action<BlockAction<ButtonAction>>(ACTION_EDIT, async ({ ack, body, action, context }) => {
    await ack();
    const click = clickOf(body, action, context.retryNum);
    if (click === null) return;
    await guarded(ctx, click, async () => {
      // Only someone who may decide sees the form; one who approved the version before may edit it.
      const check = await checkClick(ctx.deps, asClick(click, 'approve'));
      if (!check.allowed && check.outcome.why !== 'already_voted') return refuse(ctx, click, check.outcome, check.notice);
      const p = await ctx.deps.store.get(click.proposalId);
      if (p === null) throw new NotFoundError(`no proposal ${click.proposalId}`);
      const meta: EditModalMeta = { p: p.id, v: p.version, c: click.channel };
      try {
        await ctx.web.views.open({ trigger_id: body.trigger_id, view: editModal(cardFor(ctx.deps, p), meta) });
      } catch (e) {
        ctx.logger.warn({ err: (e as Error).message, proposal_id: p.id, retry: click.retry }, 'could not open the Slack edit dialog');
        if (!click.retry) await tellPrivately(ctx, click.channel, click.user, 'The edit dialog did not open in time; please click Edit again.');
      }
    });
  });

  app.view(EDIT_CALLBACK, async ({ ack, body, view }) => {
    const meta = parseEditMeta(view.private_metadata);
    if (meta === null) {
      await ack();
      return;
    }
    const click: Click = { proposalId: meta.p, user: body.user.id, channel: meta.c, retry: false };
    const typed = editedValues(view.state.values);
    // A value that cannot be read is said in the dialog, next to its input, and nothing is stored.
    const inDialog = async (field: string | undefined, message: string): Promise<boolean> => {
      const blockId = `${EDIT_BLOCK_PREFIX}${field ?? ''}`;
      if (field === undefined || !(blockId in view.state.values)) return false;
      await ack({ response_action: 'errors', errors: { [blockId]: message } });
      return true;
    };
    let acked = false;
    await guarded(ctx, click, async () => {
      const p = await ctx.deps.store.get(meta.p);
      if (p === null) throw new NotFoundError(`no proposal ${meta.p}`);
      let values: Record<string, unknown>;
      try {
        values = valuesFromForm(p, typed);
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        acked = await inDialog(e.issues[0]?.path, e.message);
        if (!acked) await tellPrivately(ctx, click.channel, click.user, `Not saved: ${e.message}.`);
        return;
      }
      const result = await editClick(ctx.deps, { proposalId: meta.p, platform: SLACK, user: click.user, trusted: true, version: meta.v, values });
      const o = result.outcome;
      if (o.kind !== 'refused') return;
      if (o.why === 'invalid' && (acked = await inDialog(o.field, o.message))) return;
      await tellPrivately(ctx, click.channel, click.user, result.notice ?? o.message);
    });
    if (!acked) await ack();
  });
}

