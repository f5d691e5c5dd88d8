import { PROPOSAL_ID_PATTERN } from '../core/ids.ts';
import { truncate } from '../core/card.ts';
import type { CardRef } from '../core/card.ts';
import type { CardRefStore } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { Proposal } from '../core/proposal.ts';
import { AWAY_USAGE, runAwayCommand } from './away-command.ts';
import { pendingBatches, type PendingBatch } from './batch-decisions.ts';
import { bindChannel, type BindHere } from './bind-channel.ts';
import { personFor } from './record-decision.ts';
import type { AppDeps } from './deps.ts';
import { searchAudit } from './search-audit.ts';

// What people write to countersign in chat (`/countersign …` in Slack, `@countersign …` in
// Teams): `search <words>`, `show <id>`, `pending`, and, where the platform can bind the
// channel it is written in, `connect <route>`. One implementation for every platform; each
// adapter parses its request into a ChatCommand and lays out the ChatAnswer.

export interface ChatCommand {
  platform: PlatformId;
  /** The platform's user id of who wrote it. */
  user: string;
  /** False when the platform cannot vouch for the user (a guest of another tenant): treated as a stranger. */
  trusted: boolean;
  /** The text after the command or mention. */
  text: string;
  /** How people invoke it here, for the usage text (`/countersign` in Slack; empty in Teams). */
  invocation: string;
  /** Whether the answer is seen by the asker alone (Slack's ephemeral answers) or by the channel. */
  answersPrivately: boolean;
  /** The channel it was written in, when the platform can bind channels to routes. */
  here?: BindHere;
  /** The platform lays out `pending`'s batch buttons (ChatAnswer `batches`); others are spared reading them. */
  offersBatches?: boolean;
}

export interface ProposalItem {
  proposal: Proposal;
  /** The proposal's page (the card's link). */
  link: string;
  /** Where its cards are on this platform, for a link to the card's thread. */
  cards: CardRef[];
  /** Its agent's kill switch is pulled (countersign revoke): layouts say "agent revoked". */
  agentRevoked: boolean;
}

export type ChatAnswer =
  | { kind: 'text'; text: string }
  | {
      kind: 'proposals';
      /** countersign's own words ("Proposals matching"); */
      heading: string;
      /** what it is about, raw (layouts escape it their way, and keep an id copyable). */
      about: { words: string } | { id: string } | null;
      items: ProposalItem[];
      empty: string;
      history: string | null;
      /**
       * `pending` only: what the asker may decide here several at once, by agent and rule
       * (batch-decisions.ts); platforms without a batch button leave it unshown.
       */
      batches?: PendingBatch[];
    };

const MAX_RESULTS = 10;

function usage(c: ChatCommand): string {
  const say = (words: string) => (c.invocation === '' ? words : `${c.invocation} ${words}`);
  return [
    c.answersPrivately ? 'countersign answers only you:' : 'countersign understands:',
    `• ${say('search <words>')}: proposals whose audit trail mentions every word`,
    `• ${say('show <proposal id>')}: one proposal and its history`,
    `• ${say('pending')}: proposals waiting for a decision`,
    ...AWAY_USAGE.map((line) => `• ${say(line)}`),
    ...(c.here === undefined ? [] : [`• ${say('connect <route>')}: (admins, in a channel) post the cards of that route here`]),
  ].join('\n');
}

const text = (t: string): ChatAnswer => ({ kind: 'text', text: t });

export async function runChatCommand(deps: AppDeps, cards: CardRefStore, c: ChatCommand): Promise<ChatAnswer> {
  const [verb = '', ...rest] = c.text.trim().split(/\s+/).filter((w) => w !== '');
  const person = personFor(deps, c) ?? undefined;
  const command = verb.toLowerCase();
  if (command === 'connect' && c.here !== undefined) {
    return text(await bindChannel(deps, { platform: c.platform, user: c.user, person: person ?? null, route: rest[0], here: c.here }));
  }
  if (person === undefined) return text('Only people listed in the countersign policy may use countersign here.');
  // Always the writer's own absence: `person` is who the platform vouched for.
  if (command === 'away' || command === 'back') return text(await runAwayCommand(deps, c.platform, person, command, rest));

  const items = async (proposals: Proposal[]): Promise<ProposalItem[]> => {
    const shown = proposals.slice(0, MAX_RESULTS);
    const revoked = await deps.store.revokedAgents([...new Set(shown.map((p) => p.agent))]);
    return Promise.all(
      shown.map(async (p) => ({
        proposal: p,
        link: deps.proposalUrl(p.id),
        cards: (await cards.list(p.id)).filter((r) => r.platform === c.platform),
        agentRevoked: revoked.has(p.agent),
      })),
    );
  };
  const list = async (heading: string, about: { words: string } | { id: string } | null, proposals: Proposal[], empty: string, history: string | null = null): Promise<ChatAnswer> => ({
    kind: 'proposals',
    heading,
    about,
    items: await items(proposals),
    empty,
    history,
  });

  if (command === 'search' && rest.length > 0) {
    const words = rest.slice(0, 20);
    const { events } = await searchAudit(deps.audit, { kind: 'admin' }, { words, limit: 200 });
    const ids = [...new Set(events.map((e) => e.proposal_id).filter((id): id is string => id !== null))].slice(0, MAX_RESULTS);
    const found = (await Promise.all(ids.map((id) => deps.store.get(id)))).filter((p): p is Proposal => p !== null);
    return list('Proposals matching', { words: truncate(words.join(' '), 200) }, found, 'Nothing in the audit log matches every word.');
  }
  if (command === 'show' && rest[0] !== undefined) {
    const id = rest[0];
    const p = PROPOSAL_ID_PATTERN.test(id) ? await deps.store.get(id) : null;
    if (p === null) return text(`No proposal ${truncate(id, 60)}.`);
    const { events } = await searchAudit(deps.audit, { kind: 'admin' }, { words: [], proposalId: p.id, limit: 40 });
    const history = events
      .reverse()
      .map((e) => `${e.at.replace(/\.\d{3}Z$/, 'Z')}  ${e.type}  ${e.actor}`)
      .join('\n');
    return list('Proposal', { id: p.id }, [p], '', history === '' ? null : `History\n${history}`);
  }
  if (command === 'pending') {
    const shown = await items(await deps.store.listPending(MAX_RESULTS));
    const answer: ChatAnswer = { kind: 'proposals', heading: 'Pending proposals, soonest expiry first', about: null, items: shown, empty: 'Nothing is waiting for a decision.', history: null };
    return c.offersBatches === true ? { ...answer, batches: await pendingBatches(deps, person, c.platform) } : answer;
  }
  return text(usage(c));
}
