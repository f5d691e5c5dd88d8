import type { AppDeps } from '../../src/app/deps.ts';
import { searchAudit } from '../../src/app/search-audit.ts';
import { iso } from '../../src/core/clock.ts';
import { PROPOSAL_ID_PATTERN } from '../../src/core/ids.ts';
import type { Logger } from '../../src/core/ports.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import type { TeamsBindingStore } from './bindings.ts';
import { fixedChannelOf, TEAMS } from './platform.ts';
import { plainAnswer, renderProposalList, type AdaptiveCard } from './cards.ts';
import { truncate } from './text.ts';

// What people write to the bot (`@countersign …` in a channel, or in a chat with it):
// `connect <route>` binds the channel to a route (admins only), `search <words>`,
// `show <id>` and `pending` answer with a card of proposals. Only people in the policy get
// answers. Teams has no private replies in a channel: a search there is seen by the channel.

export const ADMINS_GROUP = 'admins';
const MAX_RESULTS = 10;

export interface CommandInput {
  /** The message text with the bot's mention removed. */
  text: string;
  aadObjectId: string | null;
  userId: string;
  tenant: string | null;
  /** `channel`, `groupChat` or `personal`. */
  conversationType: string | null;
  /** The Teams channel's id (channelData.channel.id), when written in a channel. */
  channelId: string | null;
  serviceUrl: string;
}

export type CommandAnswer = { card: AdaptiveCard; summary: string } | { text: string; textFormat: 'plain' };

export interface CommandContext {
  deps: AppDeps;
  bindings: TeamsBindingStore;
  logger: Logger;
  appTenant: string | null;
}

const USAGE = [
  'countersign understands:',
  '• search <words>: proposals whose audit trail mentions every word',
  '• show <proposal id>: one proposal and its history',
  '• pending: proposals waiting for a decision',
  '• connect <route>: (admins, in a channel) post the cards of that route here',
].join('\n');

const link = (deps: AppDeps) => (id: string) => `${deps.publicUrl.replace(/\/$/, '')}/console/proposals/${id}`;

function list(deps: AppDeps, heading: string, proposals: Proposal[], empty: string, extra: string[] = []): CommandAnswer {
  return { card: renderProposalList(heading, proposals.slice(0, MAX_RESULTS), empty, link(deps), extra), summary: heading };
}

async function search(deps: AppDeps, words: string[]): Promise<CommandAnswer> {
  const { events } = await searchAudit(deps.audit, { kind: 'admin' }, { words, limit: 200 });
  const ids = [...new Set(events.map((e) => e.proposal_id).filter((id): id is string => id !== null))].slice(0, MAX_RESULTS);
  const proposals = (await Promise.all(ids.map((id) => deps.store.get(id)))).filter((p): p is Proposal => p !== null);
  return list(deps, `Proposals matching "${truncate(words.join(' '), 200)}"`, proposals, 'Nothing in the audit log matches every word.');
}

async function show(deps: AppDeps, id: string): Promise<CommandAnswer> {
  const p = PROPOSAL_ID_PATTERN.test(id) ? await deps.store.get(id) : null;
  if (p === null) return plainAnswer(`No proposal ${truncate(id, 60)}.`);
  const { events } = await searchAudit(deps.audit, { kind: 'admin' }, { words: [], proposalId: p.id, limit: 40 });
  const timeline = events
    .reverse()
    .map((e) => `${e.at.replace(/\.\d{3}Z$/, 'Z')}  ${e.type}  ${e.actor}`)
    .join('\n');
  return list(deps, `Proposal ${p.id}`, [p], '', timeline === '' ? [] : [`History\n${timeline}`]);
}

async function connect(ctx: CommandContext, input: CommandInput, person: string, route: string | undefined): Promise<CommandAnswer> {
  const { deps } = ctx;
  const at = iso(deps.clock.now());
  if (!deps.policy.isMember(ADMINS_GROUP, person)) {
    await deps.audit.append([
      {
        type: 'channel_bind_refused',
        at,
        proposal_id: null,
        agent: null,
        actor: `person:${person}`,
        data: { platform: 'teams', route: truncate(route ?? '', 100), conversation: input.channelId, why: 'not_an_admin' },
      },
    ]);
    return plainAnswer(`Only members of the policy's "${ADMINS_GROUP}" group may connect a channel to a route.`);
  }
  if (route === undefined) return plainAnswer('Say which route: connect <route>.');
  if (input.conversationType !== 'channel' || input.channelId === null) return plainAnswer('Write connect <route> in the Teams channel that should receive the cards.');
  // The route's name or its `teams:` key both name it; the binding is stored under the key.
  const spec = [...deps.policy.channels.values()].find((c) => {
    const t = c.targets.get(TEAMS);
    return t !== undefined && (c.route === route || t.target === route);
  });
  const target = spec?.targets.get(TEAMS);
  if (spec === undefined || target === undefined) return plainAnswer(`No route "${truncate(route, 100)}" posts to Teams in the policy.`);
  if (fixedChannelOf(target.details) !== null) return plainAnswer(`Route "${spec.route}" has its Teams channel fixed in the policy; change it there.`);
  const tenant = input.tenant ?? ctx.appTenant;
  await ctx.bindings.bind(target.target, { conversation: input.channelId, serviceUrl: input.serviceUrl, tenant, boundBy: person, at });
  await deps.audit.append([
    {
      type: 'channel_bound',
      at,
      proposal_id: null,
      agent: null,
      actor: `person:${person}`,
      data: { platform: 'teams', route: spec.route, key: target.target, conversation: input.channelId, tenant, service_url: input.serviceUrl },
    },
  ]);
  return plainAnswer(`This channel now receives the approval cards of route "${spec.route}" (connected by ${person}).`);
}

export async function handleCommand(ctx: CommandContext, input: CommandInput): Promise<CommandAnswer> {
  const { deps } = ctx;
  const [verb = '', ...rest] = input.text.trim().split(/\s+/).filter((w) => w !== '');
  const tenantOk = ctx.appTenant === null || (input.tenant !== null && input.tenant.toLowerCase() === ctx.appTenant.toLowerCase());
  const person = tenantOk && input.aadObjectId !== null ? deps.policy.personByPlatformId('teams', input.aadObjectId)?.id : undefined;
  try {
    if (person === undefined) {
      if (verb.toLowerCase() === 'connect') {
        await deps.audit.append([
          {
            type: 'channel_bind_refused',
            at: iso(deps.clock.now()),
            proposal_id: null,
            agent: null,
            actor: `teams:${(input.aadObjectId ?? input.userId).slice(0, 64)}`,
            data: { platform: 'teams', route: truncate(rest[0] ?? '', 100), conversation: input.channelId, why: 'unknown_person' },
          },
        ]);
      }
      return plainAnswer('Only people listed in the countersign policy may use countersign here.');
    }
    switch (verb.toLowerCase()) {
      case 'connect':
        return await connect(ctx, input, person, rest[0]);
      case 'search':
        return rest.length > 0 ? await search(deps, rest.slice(0, 20)) : plainAnswer(USAGE);
      case 'show':
        return rest[0] !== undefined ? await show(deps, rest[0]) : plainAnswer(USAGE);
      case 'pending':
        return list(deps, 'Pending proposals, soonest expiry first', await deps.store.listPending(MAX_RESULTS), 'Nothing is waiting for a decision.');
      default:
        return plainAnswer(USAGE);
    }
  } catch (e) {
    ctx.logger.error({ err: (e as Error).message, verb }, 'a Teams command failed');
    return plainAnswer('countersign could not answer that; please try again.');
  }
}
