import { createHash, randomBytes } from 'node:crypto';
import type { AuditEntry, ChatPlatformDriver, ContractPerson, ContractVote, SeenCard, StrangerAttempt } from '../contracts/chat-platform.contract.ts';
import type { TestApp } from './app.ts';
import { signInWithKey } from './console.ts';
import { cardInvoke, postActivity, type ConnectorCall, type FakeBotConnector } from './fake-bot-connector.ts';
import { blockActionsPayload, payloadBody, postToSlackEndpoint, viewSubmissionPayload, waitFor, type FakeSlack, type SlackCall } from './fake-slack.ts';

// Drivers of the chat platform contract (test/contracts/chat-platform.contract.ts): one per
// platform, each speaking that platform's protocol to the real countersign through the
// platform's fake, and all offering the same verbs. Every wait is on an event (a fake's
// recorded call, an audit entry), polled by waitFor; none sleeps.

/** The contract's people on every platform; `olga` is an approver who never clicks (the console's observer). */
export const CONTRACT_SLACK_IDS = { alice: 'U0ALICE', bob: 'U0BOB', dana: 'U0DANA', olga: 'U0OLGA' } as const;
export const CONTRACT_AAD = {
  alice: '00000000-0000-0000-0000-0000000a11ce',
  bob: '00000000-0000-0000-0000-000000000b0b',
  dana: '00000000-0000-0000-0000-00000000da4a',
  olga: '00000000-0000-0000-0000-0000000001a0',
} as const;
const SLACK_STRANGER = 'U0NOBODY';
const AAD_STRANGER = '00000000-0000-0000-0000-0000000000ff';
type Known = keyof typeof CONTRACT_SLACK_IDS;
const consoleKey = (person: Known) => `${person}-contract-console-key-0123456789`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Each person's keys on Slack, Teams and the console, for contractPolicy. */
export function contractPeople(): Record<Known, string> {
  const spec = (p: Known) => `{ slack: ${CONTRACT_SLACK_IDS[p]}, teams: ${CONTRACT_AAD[p]}, console_key_sha256: ${sha256(consoleKey(p))} }`;
  return { alice: spec('alice'), bob: spec('bob'), dana: spec('dana'), olga: spec('olga') };
}

/** Deletes the app's keys and stops it (startTestApp's own afterAll is registered inside a beforeAll, where vitest never runs it). */
export async function stopTestApp(app: TestApp): Promise<void> {
  const redis = app.running.redis as import('ioredis').Redis;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${app.prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await app.running.stop();
}

export interface DriverExtras {
  peer?: ChatPlatformDriver;
  close?: () => Promise<void>;
}

function finish(driver: Omit<ChatPlatformDriver, 'peer' | 'close'>, extras: DriverExtras): ChatPlatformDriver {
  return { ...driver, ...(extras.peer === undefined ? {} : { peer: extras.peer }), close: extras.close ?? (async () => undefined) };
}

async function audit(app: TestApp, query: string): Promise<AuditEntry[]> {
  const res = await app.admin<{ events: AuditEntry[] }>(`/v1/audit?${query}&limit=500`);
  if (res.status !== 200) throw new Error(`audit search answered ${res.status}`);
  return res.body.events;
}

const votesOf = (events: AuditEntry[], actor: string, platform: string) =>
  events.filter((e) => (e.type === 'approval_recorded' || e.type === 'approval_refused') && e.actor === actor && e.data['platform'] === platform);

// ---------------------------------------------------------------------------------------------
// Slack: Block Kit cards through the fake Web API; clicks are block_actions signed with the
// signing secret; a deny opens a modal whose submission carries the reason; what the clicker
// alone is told arrives as an ephemeral message (chat.postEphemeral), after Slack got its ack.

const decodeSlack = (text: string) => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** A text object as Slack shows it: entities decoded, date tokens and links as their fallback and label. */
function slackText(element: unknown): string {
  const e = element as { type?: string; text?: unknown } | undefined;
  const text = typeof e?.text === 'string' ? e.text : '';
  if (e?.type !== 'mrkdwn') return decodeSlack(text);
  return decodeSlack(text.replace(/<!date\^\d+\^[^|>]*\|([^>]*)>/g, '$1').replace(/<[^|>]+\|([^>]*)>/g, '$1'));
}

function seeBlocks(blocks: unknown): SeenCard {
  const lines: string[] = [];
  const buttons: string[] = [];
  for (const block of Array.isArray(blocks) ? (blocks as Record<string, any>[]) : []) {
    if (block['type'] === 'actions') {
      for (const el of block['elements'] ?? []) if (el.type === 'button') buttons.push(slackText(el.text));
      continue;
    }
    if (block['text'] !== undefined) lines.push(slackText(block['text']));
    for (const f of block['fields'] ?? []) lines.push(slackText(f));
    if (block['type'] === 'context') for (const el of block['elements'] ?? []) lines.push(slackText(el));
  }
  return { text: lines.join('\n'), buttons };
}

export interface SlackDriverOptions {
  fake: FakeSlack;
  signingSecret: string;
  /** The channel id the contract route posts to. */
  channel: string;
}

export function slackContractDriver(app: TestApp, o: SlackDriverOptions, extras: DriverExtras = {}): ChatPlatformDriver {
  const { fake } = o;
  const PLATFORM = 'slack';
  const cards = new Map<string, SlackCall>();
  /** Votes each (clicker, proposal) has sent that must leave an approval_recorded / approval_refused entry. */
  const sent = new Map<string, number>();
  const mentions = (c: SlackCall, id: string) => JSON.stringify(c.args).includes(id);

  async function posted(id: string): Promise<SlackCall> {
    const known = cards.get(id);
    if (known !== undefined) return known;
    const card = await waitFor(() => fake.callsTo('chat.postMessage').find((c) => c.ok && c.args['thread_ts'] === undefined && c.args['channel'] === o.channel && mentions(c, id)), {
      what: `Slack card of ${id}`,
    });
    cards.set(id, card);
    return card;
  }

  async function send(body: string): Promise<{ status: number; json: any }> {
    const res = await postToSlackEndpoint(app.url, o.signingSecret, body);
    if (res.status !== 200) throw new Error(`Slack request answered ${res.status}: ${res.text}`);
    return res;
  }

  const ephemeralsTo = (user: string) => fake.callsTo('chat.postEphemeral').filter((c) => c.args['user'] === user);
  const modalsFor = (id: string) => fake.callsTo('views.open').filter((c) => c.ok && mentions(c, id));

  /** Until every Slack refusal of this clicker has reached them: each is one ephemeral message. */
  async function settle(user: string, actor: string): Promise<void> {
    await waitFor(async () => {
      const refusals = (await audit(app, `actor=${encodeURIComponent(actor)}`)).filter((e) => e.type === 'approval_refused' && e.data['platform'] === PLATFORM);
      return ephemeralsTo(user).length >= refusals.length;
    }, { what: `private replies to ${user}` });
  }

  async function clickAs(user: string, actor: string, id: string, vote: ContractVote, reason?: string): Promise<string | null> {
    const key = `${actor} ${id}`;
    const count = (n: number) => sent.set(key, (sent.get(key) ?? 0) + n).get(key)!;
    const votes = async () => votesOf(await audit(app, `proposal_id=${id}`), actor, PLATFORM).length;
    // Counted before anything is awaited, so two clicks sent at once both wait for both.
    const expected = vote === 'approve' ? count(1) : (sent.get(key) ?? 0);
    const card = await posted(id);
    const toldBefore = ephemeralsTo(user).length;
    const modalsBefore = modalsFor(id).length;
    const action = vote === 'approve' ? 'countersign_approve' : 'countersign_deny';
    await send(payloadBody(blockActionsPayload({ user, proposalId: id, action, channel: o.channel, messageTs: card.ts! })));
    let inModal: string | null = null;
    if (vote === 'approve') {
      await waitFor(async () => (await votes()) >= expected, { what: `Slack approval of ${id} by ${user} handled` });
    } else {
      // Deny asks for the reason in a modal; someone who may not deny is refused instead.
      const next = await waitFor(async () => (modalsFor(id).length > modalsBefore ? 'modal' : (await votes()) > expected ? 'refused' : null), { what: `Slack deny of ${id} by ${user} handled` });
      if (next === 'refused') count(1);
      else {
        const view = modalsFor(id).at(-1)!.args['view'];
        // Slack's client does not submit a required field left empty; spaces it does submit, so
        // "no reason" goes out as spaces and countersign's own check is what must refuse it.
        const res = await send(payloadBody(viewSubmissionPayload(user, view, reason ?? '   ')));
        if (res.json?.response_action === 'errors') inModal = Object.values(res.json.errors as Record<string, string>).join(' ');
        else {
          const n = count(1);
          await waitFor(async () => (await votes()) >= n, { what: `Slack deny of ${id} by ${user} recorded` });
        }
      }
    }
    await settle(user, actor);
    if (inModal !== null) return inModal; // shown in the modal, under the reason field
    const told = ephemeralsTo(user).slice(toldBefore).at(-1);
    return told === undefined ? null : decodeSlack(String(told.args['text']));
  }

  return finish(
    {
      platform: PLATFORM,
      app,
      strangersCanClick: true,
      async noticesOf() {
        // Each notice as it reads now: its last update's text, or the post's.
        const updates = fake.callsTo('chat.update').filter((u) => u.ok && u.args['channel'] === o.channel);
        return fake
          .callsTo('chat.postMessage')
          .filter((c) => c.ok && c.args['channel'] === o.channel && c.args['thread_ts'] === undefined && c.args['blocks'] === undefined)
          .map((c) => String((updates.filter((u) => u.args['ts'] === c.ts).at(-1) ?? c).args['text'] ?? ''));
      },
      async cardOf(id) {
        const card = await posted(id);
        const latest = fake.callsTo('chat.update').filter((u) => u.ok && u.args['ts'] === card.ts && u.args['channel'] === o.channel).at(-1) ?? card;
        return seeBlocks(latest.args['blocks']);
      },
      click: (person, id, vote, reason) => clickAs(CONTRACT_SLACK_IDS[person], `person:${person}`, id, vote, reason),
      // Slack's own confirm dialog on the Approve button: shown before any request is sent.
      async confirmationOf(_person, id) {
        const card = await posted(id);
        const actions = (card.args['blocks'] as Record<string, any>[]).find((b) => b['type'] === 'actions');
        const confirm = (actions?.['elements'] as any[] | undefined)?.find((e) => e.action_id === 'countersign_approve')?.confirm;
        return confirm === undefined ? null : `${slackText(confirm.title)} ${slackText(confirm.text)}`;
      },
      async threadOf(id) {
        const card = await posted(id);
        return fake.callsTo('chat.postMessage').filter((c) => c.ok && c.args['thread_ts'] === card.ts).map((c) => seeBlocks(c.args['blocks']).text);
      },
      async clickAsStranger(id): Promise<StrangerAttempt> {
        const actor = `slack:${SLACK_STRANGER}`;
        const told = await clickAs(SLACK_STRANGER, actor, id, 'approve');
        return { told, audited: (await audit(app, `proposal_id=${id}`)).filter((e) => e.actor === actor) };
      },
    },
    extras,
  );
}

// ---------------------------------------------------------------------------------------------
// Teams: Adaptive Cards through the fake Bot Connector, each card the root of its own thread in
// the channel the policy fixes; clicks are Action.Execute invokes from an Entra (AAD) user; the
// clicker alone gets the invoke's answer, a refreshed card with a notice on top when the click
// did not count. Everyone else's copy is updated with updateActivity.

const INVISIBLE = /[\u2060\u200B]/g;
const CARD_TYPE = 'application/vnd.microsoft.card.adaptive';

function seeAdaptive(card: any): SeenCard {
  const lines: string[] = [];
  const buttons: string[] = [];
  const walk = (elements: any[]) => {
    for (const e of elements ?? []) {
      if (e.type === 'TextBlock') lines.push(String(e.text));
      else if (e.type === 'FactSet') for (const f of e.facts ?? []) lines.push(`${f.title}: ${f.value}`);
      else if (e.type === 'Input.Text') lines.push(String(e.label ?? ''));
      else if (e.type === 'Container') walk(e.items);
      else if (e.type === 'ActionSet') for (const a of e.actions ?? []) buttons.push(String(a.title));
    }
  };
  walk(card?.body);
  return { text: lines.join('\n').replace(INVISIBLE, ''), buttons: buttons.map((b) => b.replace(INVISIBLE, '')) };
}

const adaptiveOf = (c: ConnectorCall) => c.body?.activity?.attachments?.[0]?.content ?? c.body?.attachments?.[0]?.content;

export interface TeamsDriverOptions {
  connector: FakeBotConnector;
  /** The channel (`19:…@thread.tacv2`) the policy fixes for the contract route. */
  channel: string;
}

export function teamsContractDriver(app: TestApp, o: TeamsDriverOptions, extras: DriverExtras = {}): ChatPlatformDriver {
  const { connector } = o;
  const PLATFORM = 'teams';
  const cards = new Map<string, { call: ConnectorCall; thread: { conversation: string; message: string } }>();

  async function posted(id: string) {
    const known = cards.get(id);
    if (known !== undefined) return known;
    const call = await waitFor(() => connector.callsTo('createConversation').find((c) => c.body?.channelData?.channel?.id === o.channel && JSON.stringify(c.body).includes(id)), {
      what: `Teams card of ${id}`,
    });
    const card = { call, thread: { conversation: call.conversation!, message: call.activityId! } };
    cards.set(id, card);
    return card;
  }

  async function clickAs(aad: string, id: string, vote: ContractVote, reason?: string): Promise<string | null> {
    const { thread } = await posted(id);
    // Approve sends no inputs; Deny sends the card's reason input with it. A critical card's
    // Approve first opens a "are you sure?" card (Action.ShowCard) whose button sends the same
    // verb. Teams' client keeps a required input left empty from being sent; spaces it sends,
    // so "no reason" goes out as spaces and countersign's own check is what must refuse it.
    const data = vote === 'approve' ? { proposal: id } : { proposal: id, reason: reason ?? '   ' };
    const res = await postActivity(app.url, cardInvoke(connector.serviceUrl, thread, { aad }, `countersign.${vote}`, data));
    if (res.status !== 200) throw new Error(`Teams invoke answered ${res.status}: ${JSON.stringify(res.json)}`);
    const answer = res.json as { type?: string; value?: any };
    if (answer.type === CARD_TYPE) {
      const notice = (answer.value?.body as any[] | undefined)?.find((e) => e.type === 'TextBlock' && e.color === 'Attention');
      return notice === undefined ? null : String(notice.text).replace(INVISIBLE, '');
    }
    return typeof answer.value === 'string' ? answer.value : null;
  }

  return finish(
    {
      platform: PLATFORM,
      app,
      strangersCanClick: true,
      async noticesOf() {
        // Each notice as it reads now: its last update's text, or the post's.
        const updates = connector.callsTo('updateActivity');
        return connector
          .callsTo('createConversation')
          .filter((c) => c.body?.channelData?.channel?.id === o.channel && c.body?.activity?.attachments === undefined)
          .map((c) => {
            const last = updates.filter((u) => u.conversation === c.conversation && u.activityId === c.activityId).at(-1);
            return String(last === undefined ? (c.body?.activity?.text ?? '') : (last.body?.text ?? ''));
          });
      },
      async cardOf(id) {
        const { call, thread } = await posted(id);
        const latest = connector.callsTo('updateActivity').filter((u) => u.conversation === thread.conversation && u.activityId === thread.message).at(-1) ?? call;
        return seeAdaptive(adaptiveOf(latest));
      },
      click: (person, id, vote, reason) => clickAs(CONTRACT_AAD[person], id, vote, reason),
      // Adaptive Cards have no dialog: Approve opens a second card (Action.ShowCard) whose button votes.
      async confirmationOf(_person, id) {
        const { call } = await posted(id);
        const set = (adaptiveOf(call)?.body as any[] | undefined)?.find((e) => e.type === 'ActionSet');
        const second = (set?.actions as any[] | undefined)?.find((a) => a.type === 'Action.ShowCard');
        return second === undefined ? null : seeAdaptive(second.card).text;
      },
      async threadOf(id) {
        const { thread } = await posted(id);
        return connector
          .callsTo('replyToActivity')
          .filter((c) => c.conversation === thread.conversation && c.activityId === thread.message)
          .map((c) => String(c.body?.text ?? '').replace(INVISIBLE, ''));
      },
      async clickAsStranger(id): Promise<StrangerAttempt> {
        const told = await clickAs(AAD_STRANGER, id, 'approve');
        return { told, audited: (await audit(app, `proposal_id=${id}`)).filter((e) => e.actor === `teams:${AAD_STRANGER}`) };
      },
    },
    extras,
  );
}

// ---------------------------------------------------------------------------------------------
// The console: countersign's own pages. A card is "posted" when the console channel announces
// it (the card_posted entry its post leaves); people read it at /console/proposals/<id>/card.
// Mapped verbs, honestly:
//   - cardOf: the console renders each card for the person looking (buttons only for someone
//     who may still decide); the driver looks as olga, an approver who never clicks, so
//     buttons mean what they mean on Slack and Teams: people can still decide.
//   - threadOf: the console has no thread; each card's timeline (from the audit log) plays that
//     role. It says more than a thread does (the proposal's arrival, refusals), in the same words.
//   - click: the decide form posted with the person's session cookie and CSRF token, and what
//     the page says after it (its flash line). `via: 'script'` posts it as the console's script
//     does instead (JSON answer, shown in the card's notice line). A critical approval is
//     answered with a confirmation first; the click confirms it, as the person would.
//   - confirmationOf: that first answer (the confirmation page, or the script's JSON), after
//     which nothing is recorded; null when the answer was the vote itself.
//   - clickAsStranger: only people of the policy can sign in, so a stranger never gets a button:
//     the driver's stranger tries to sign in (refused, audited as auth_failed) and then posts
//     the decide form without a session (sent back to sign in).

const decodeHtml = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
const textOfHtml = (s: string) => decodeHtml(s.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();

export interface ConsoleDriverOptions {
  /** How a click is sent: the plain form post (default) or the console script's JSON request. */
  via?: 'form' | 'script';
}

export function consoleContractDriver(app: TestApp, o: ConsoleDriverOptions = {}, extras: DriverExtras = {}): ChatPlatformDriver {
  const PLATFORM = 'console';
  const via = o.via ?? 'form';
  const sessions = new Map<Known, Promise<{ cookie: string; csrf: string }>>();
  const postedCards = new Set<string>();
  const session = (person: Known) => {
    let s = sessions.get(person);
    if (s === undefined) {
      s = signInWithKey(app.url, person, consoleKey(person));
      sessions.set(person, s);
    }
    return s;
  };

  async function posted(id: string): Promise<void> {
    if (postedCards.has(id)) return;
    await waitFor(async () => (await audit(app, `proposal_id=${id}`)).some((e) => e.type === 'card_posted' && e.data['platform'] === PLATFORM), { what: `console card of ${id}` });
    postedCards.add(id);
  }

  async function fragment(id: string): Promise<string> {
    await posted(id);
    const { cookie } = await session('olga');
    const res = await fetch(`${app.url}/console/proposals/${id}/card`, { headers: { cookie } });
    if (res.status !== 200) throw new Error(`console card answered ${res.status}`);
    return res.text();
  }

  async function decide(cookie: string | null, csrf: string, id: string, vote: ContractVote, reason: string, confirm = false): Promise<Response> {
    const form = new URLSearchParams({ csrf, vote, reason, ...(confirm ? { confirm: 'yes' } : {}) });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', origin: app.url, ...(cookie === null ? {} : { cookie }) };
    if (via === 'script') Object.assign(headers, { accept: 'application/json', 'x-csrf-token': csrf });
    else headers['accept'] = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    return fetch(`${app.url}/console/proposals/${id}/decide`, { method: 'POST', redirect: 'manual', headers, body: form.toString() });
  }

  /** Bodies already read by asksToConfirm, by response: a body can be read once. */
  const consumed = new WeakMap<Response, unknown>();

  /** The confirmation a first approve was answered with (the page or the JSON), or null when it was the vote's own answer. */
  async function asksToConfirm(res: Response): Promise<{ text: string } | null> {
    if (via === 'script') {
      const answer = (await res.json()) as { why?: string; confirmation?: Record<string, string> };
      consumed.set(res, answer);
      if (answer.why !== 'confirmation_required' || answer.confirmation === undefined) return null;
      const c = answer.confirmation;
      return { text: [c['question'], c['action'], c['target'], c['value']].join(' ') };
    }
    if (res.status !== 200) return null;
    const page = await res.text();
    const section = /<section class="confirm-approval"[\s\S]*?<\/section>/.exec(page)?.[0];
    if (section === undefined) throw new Error('console decide answered 200 without a confirmation');
    return { text: textOfHtml(section) };
  }

  return finish(
    {
      platform: PLATFORM,
      app,
      strangersCanClick: false,
      // The pending page's banner: the current windows' notices of console routes, as the page renders them.
      async noticesOf() {
        const { cookie } = await session('olga');
        const res = await fetch(`${app.url}/console`, { headers: { cookie } });
        if (res.status !== 200) throw new Error(`console pending page answered ${res.status}`);
        return [...(await res.text()).matchAll(/<li class="limit-notice"[^>]*>([\s\S]*?)<\/li>/g)].map((m) => textOfHtml(m[1] ?? ''));
      },
      async cardOf(id) {
        const card = (await fragment(id)).replace(/<details class="events"[\s\S]*?<\/details>/, '');
        const buttons = [...card.matchAll(/<button[^>]*>([\s\S]*?)<\/button>/g)].map((m) => textOfHtml(m[1] ?? ''));
        return { text: textOfHtml(card), buttons };
      },
      async confirmationOf(person, id) {
        await posted(id);
        const { cookie, csrf } = await session(person);
        const asked = await asksToConfirm(await decide(cookie, csrf, id, 'approve', ''));
        return asked === null ? null : asked.text;
      },
      async click(person, id, vote, reason) {
        await posted(id);
        const { cookie, csrf } = await session(person);
        // The textarea is not `required`: an empty reason is sent as it is.
        let res = await decide(cookie, csrf, id, vote, reason ?? '');
        const asked = vote === 'approve' ? await asksToConfirm(res) : null;
        if (asked !== null) res = await decide(cookie, csrf, id, vote, reason ?? '', true);
        if (via === 'script') {
          const answer = (consumed.get(res) ?? (await res.json())) as { ok?: boolean; message?: string };
          return answer.message ?? (answer.ok === true ? null : 'Refused');
        }
        if (res.status !== 303) throw new Error(`console decide answered ${res.status}`);
        const page = await (await fetch(`${app.url}${res.headers.get('location') ?? ''}`, { headers: { cookie } })).text();
        const flash = /<p class="flash" role="status">([\s\S]*?)<\/p>/.exec(page)?.[1];
        return flash === undefined ? null : textOfHtml(flash);
      },
      async threadOf(id) {
        const html = await fragment(id);
        return [...html.matchAll(/<li class="tone-[a-z]+" data-type="[a-z_]+">[\s\S]*?<span>([\s\S]*?)<\/span><\/li>/g)].map((m) => textOfHtml(m[1] ?? ''));
      },
      async clickAsStranger(id): Promise<StrangerAttempt> {
        const name = `stranger${randomBytes(4).toString('hex')}`;
        const form = await fetch(`${app.url}/console/login`);
        const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!;
        const loginCsrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
        const signIn = await fetch(`${app.url}/console/login`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie, origin: app.url },
          body: new URLSearchParams({ csrf: loginCsrf, person: name, key: 'a-guessed-console-key' }).toString(),
        });
        if (signIn.status !== 401) throw new Error(`a stranger's sign-in answered ${signIn.status}`);
        const told = /<p class="error" role="alert">([\s\S]*?)<\/p>/.exec(await signIn.text())?.[1];
        // A decision posted without a session is sent to sign in, and changes nothing.
        const res = await decide(null, 'no-session', id, 'approve', '');
        const back = via === 'script' ? res.status === 401 : res.status === 303 && res.headers.get('location') === '/console/login';
        if (!back) throw new Error(`a decision without a session answered ${res.status}`);
        const audited = await waitFor(async () => {
          const found = (await audit(app, `q=${name}`)).filter((e) => e.type === 'auth_failed' && e.data['person'] === name);
          return found.length > 0 ? found : null;
        }, { what: `auth_failed of ${name}` });
        return { told: told === undefined ? null : textOfHtml(told), audited };
      },
    },
    extras,
  );
}
