import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusalSentence } from '../../src/core/card.ts';
import { refusalMessage, type RefusalReason } from '../../src/core/lifecycle.ts';
import type { Proposal } from '../../src/core/proposal.ts';
import type { TestApp } from '../helpers/app.ts';
import { waitFor } from '../helpers/fake-slack.ts';

// What every chat platform must do for the people deciding on a proposal, stated once and run
// against each platform's adapter through a driver (the way vercel/chat runs one suite against
// every adapter): test/e2e/<platform>-contract.redis.test.ts start the real countersign with
// that platform's fake and hand this suite a driver (test/helpers/chat-drivers.ts). A driver
// speaks the platform's own protocol (signed Slack requests, Bot Framework activities, the
// console's forms with a signed-in session) and offers the same few verbs everywhere; where a
// platform cannot do what a verb says, its driver maps it and says why, and the suite below
// stays the same for every platform.

export type ContractPerson = 'alice' | 'bob' | 'dana';
export type ContractVote = 'approve' | 'deny';

/** What a person sees of a card: its words (one text rendering) and the labels of its decision buttons. */
export interface SeenCard {
  text: string;
  /** Labels of the buttons that decide ("Approve", "Deny…"); empty when there are none. */
  buttons: string[];
}

export interface AuditEntry {
  type: string;
  actor: string;
  proposal_id: string | null;
  data: Record<string, unknown>;
}

export interface StrangerAttempt {
  /** What the stranger was told. */
  told: string | null;
  /** The audit entries that record the attempt. */
  audited: AuditEntry[];
}

export interface ChatPlatformDriver {
  /** The platform id countersign records (`approval_recorded.platform`, "via slack"). */
  readonly platform: string;
  /** The running countersign the driver talks to (its agents propose, its admin API reads). */
  readonly app: TestApp;
  /**
   * Whether someone the policy does not know can click at all. Where they cannot (the console:
   * only people of the policy sign in), the driver's stranger is refused at the door instead.
   */
  readonly strangersCanClick: boolean;
  /** Waits for the card posted for the proposal and returns it as it looks now. */
  cardOf(proposalId: string): Promise<SeenCard>;
  /**
   * A click as the platform sends it, signed and authenticated as `person`; resolves once
   * countersign has handled it, with what the clicker alone was told (a refusal, a notice), or
   * null. Without `reason`, a deny goes out with the reason left empty.
   */
  click(person: ContractPerson, proposalId: string, vote: ContractVote, reason?: string): Promise<string | null>;
  /**
   * What the platform asks `person` before their approval of the proposal counts, as one text,
   * with nothing recorded; null when it asks nothing. Slack and Teams ask on the card itself (a
   * confirm dialog, a second card); the console's server answers a first approve with the question.
   */
  confirmationOf(person: ContractPerson, proposalId: string): Promise<string | null>;
  /** The replies under the card, oldest first. */
  threadOf(proposalId: string): Promise<string[]>;
  /** An approval from someone the policy does not know. */
  clickAsStranger(proposalId: string): Promise<StrangerAttempt>;
  /** The plain over-the-limit notices (no card, no buttons) of the contract route, each as it reads now (after its updates). */
  noticesOf?(): Promise<string[]>;
  /** Another platform the same route posts to, on the same countersign (for the cross-platform case). */
  readonly peer?: ChatPlatformDriver;
  /** Stops what the runner started for the driver (fakes, the app). */
  close(): Promise<void>;
}

// ---- the policy the suite is written against ----

export const CONTRACT_AGENT = 'billing-agent';
export const CONTRACT_RULES = {
  /** A refund: one approval, high risk (a deny needs a reason). */
  single: { name: 'refund-review', risk: 'high', approvals: 1 },
  /** A payout: two distinct approvers, critical risk. */
  double: { name: 'two-person-payout', risk: 'critical', approvals: 2 },
} as const;

/**
 * The contract's policy. `people` maps each person to their platform keys (a YAML flow map,
 * `{ slack: U0ALICE, … }`): alice, bob and dana are required, anyone else a driver needs (an
 * observer) joins them as an approver who never clicks. `channel` is the route's platform keys.
 * dana sponsors the agent and is an approver too, so her refusal is for sponsoring it alone.
 */
export function contractPolicy(people: Readonly<Record<ContractPerson, string>> & Readonly<Record<string, string>>, channel: string): string {
  const names = Object.keys(people);
  const { single, double } = CONTRACT_RULES;
  return `
version: 1
agents:
  - id: ${CONTRACT_AGENT}
    sponsors: [dana]
    secret_env: AGENT_BILLING_SECRET
people:
${names.map((n) => `  ${n}: ${people[n]}`).join('\n')}
groups:
  approvers: [${names.join(', ')}]
  admins: [alice]
channels:
  contract: ${channel}
rules:
  - name: chores
    when: action.tool == "chores"
    effect: approve
    risk: low
    route: contract
    approvers: approvers
    limits: { proposals_per_minute: 1 }
  - name: ${double.name}
    when: action.tool == "payments" && action.operation == "payout"
    effect: approve
    risk: ${double.risk}
    route: contract
    approvers: approvers
    approvals: ${double.approvals}
    ttl: 30m
  - name: ${single.name}
    when: action.tool == "payments"
    effect: approve
    risk: ${single.risk}
    route: contract
    approvers: approvers
    approvals: ${single.approvals}
    ttl: 30m
default: { effect: deny, reason: not covered by the contract policy }
`;
}

// ---- the suite ----

const run = randomBytes(3).toString('hex');
let made = 0;

function refund() {
  made += 1;
  return {
    intent: `Refund invoice ${run}-${made}: the customer was charged twice`,
    action: { tool: 'payments', operation: 'refund', target: `stripe:cus_${run}${made}`, parameters: { amount: 420, currency: 'EUR' } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 420, currency: 'EUR' } },
  };
}

function payout() {
  made += 1;
  return {
    intent: `Pay out the supplier settlement ${run}-${made}`,
    action: { tool: 'payments', operation: 'payout', target: `stripe:acct_${run}${made}`, parameters: { amount: 25_000, currency: 'EUR' } },
    context: { data_sensitivity: 'confidential', destination: 'external', environment: 'production', reversible: false, value: { amount: 25_000, currency: 'EUR' } },
  };
}

type ProposalView = { id: string; status: string; agent: string; expires_at: string | null; approvals: { person: string; platform: string; vote: string; reason: string | null }[]; resolution: { status: string; by: string | null; reason: string | null } | null };

async function propose(d: ChatPlatformDriver, body: Record<string, unknown>): Promise<string> {
  const res = await d.app.billing.propose(body);
  expect(res.status).toBe(201);
  expect(res.body.status).toBe('pending');
  return res.body.id as string;
}

async function proposal(d: ChatPlatformDriver, id: string): Promise<ProposalView> {
  const res = await d.app.admin<ProposalView>(`/v1/proposals/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function auditOf(d: ChatPlatformDriver, id: string): Promise<AuditEntry[]> {
  const res = await d.app.admin<{ events: AuditEntry[] }>(`/v1/audit?proposal_id=${id}&limit=500`);
  expect(res.status).toBe(200);
  return res.body.events;
}

/** The refusal sentence every platform says (src/core/card.ts), for the proposal as the API shows it. */
async function sentence(d: ChatPlatformDriver, id: string, why: RefusalReason): Promise<string> {
  const res = await d.app.admin(`/v1/proposals/${id}`);
  // The API view carries every field refusalMessage reads (agent, status, decision.approvers, decision.risk).
  return refusalSentence({ why, message: refusalMessage(why, res.body as Proposal) });
}

const REFUSAL = /not allowed to decide|already counted|too late|reason is required/i;

async function cardUntil(d: ChatPlatformDriver, id: string, what: string, test: (card: SeenCard) => boolean): Promise<SeenCard> {
  let last: SeenCard | null = null;
  try {
    return await waitFor(async () => {
      last = await d.cardOf(id);
      return test(last) ? last : null;
    }, { what: `${d.platform} card of ${id}: ${what}` });
  } catch (e) {
    throw new Error(`${(e as Error).message}; the card reads: ${JSON.stringify(last)}`);
  }
}

async function threadUntil(d: ChatPlatformDriver, id: string, lines: (string | RegExp)[]): Promise<string[]> {
  let last: string[] = [];
  const has = (thread: string[], l: string | RegExp) => thread.some((t) => (typeof l === 'string' ? t.includes(l) : l.test(t)));
  try {
    return await waitFor(async () => {
      last = await d.threadOf(id);
      return lines.every((l) => has(last, l)) ? last : null;
    }, { what: `${d.platform} thread of ${id}: ${lines.join(' / ')}` });
  } catch (e) {
    throw new Error(`${(e as Error).message}; the thread reads: ${JSON.stringify(last)}`);
  }
}

const hasButtons = (card: SeenCard) => card.buttons.some((b) => /^Approve/.test(b)) && card.buttons.some((b) => /^Deny/.test(b));

export function chatPlatformContract(name: string, makeDriver: () => Promise<ChatPlatformDriver>): void {
  describe(`chat platform contract: ${name}`, () => {
    let driver: ChatPlatformDriver | null = null;
    const d = (): ChatPlatformDriver => {
      if (driver === null) throw new Error('the driver did not start');
      return driver;
    };
    beforeAll(async () => {
      driver = await makeDriver();
    }, 30_000);
    afterAll(async () => {
      await driver?.close();
    });

    it('shows a pending card with the agent, intent, action, target, risk, rule, approvals so far of the quorum, expiry and buttons', async () => {
      const body = refund();
      const id = await propose(d(), body);
      const card = await d().cardOf(id);
      const expires = (await proposal(d(), id)).expires_at ?? '';
      // The expiry as each platform writes a time: its date and its time of day, to the second.
      const facts = [CONTRACT_AGENT, body.intent, body.action.tool, body.action.operation, body.action.target, CONTRACT_RULES.single.risk, CONTRACT_RULES.single.name, '0 of 1 approval', expires.slice(0, 10), expires.slice(11, 19)];
      for (const fact of facts) expect(card.text, `the card shows ${fact}`).toContain(fact);
      expect(hasButtons(card), `buttons ${JSON.stringify(card.buttons)}`).toBe(true);
      // Nobody has decided yet: the thread (where there is one) says nothing of a decision.
      expect((await d().threadOf(id)).join('\n')).not.toMatch(/approved|denied/i);
    });

    it('posts one plain over-the-limit notice to the route when the agent is refused, no more within the window, and keeps its count true', async (ctx) => {
      const notices = d().noticesOf;
      if (notices === undefined) return ctx.skip();
      const chore = () => ({ intent: `Tidy up ${run}-${++made}`, action: { tool: 'chores', operation: 'tidy', target: `room:${run}${made}`, parameters: {} } });
      expect((await d().app.billing.propose(chore())).status).toBe(201);
      for (let i = 0; i < 3; i++) expect((await d().app.billing.propose(chore())).status).toBe(429);
      // Posted at the first refusal, then updated (throttled, finished by the sweep) until it names all three.
      const seen = await waitFor(async () => {
        const list = await notices();
        return list.some((n) => n.includes(': 3 refused since')) ? list : null;
      }, { what: `${d().platform} over-the-limit notice naming 3 refusals` });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(/^billing-agent is over its limit of 1 proposal a minute for rule "chores" \(rule chores: limits\.proposals_per_minute\): 3 refused since \d\d:\d\d UTC\. /);
    });

    it("counts an approver's click once, even when it is sent twice", async () => {
      const id = await propose(d(), payout());
      await d().cardOf(id);
      await Promise.all([d().click('alice', id, 'approve'), d().click('alice', id, 'approve')]);
      const outcomes = await waitFor(async () => {
        const mine = (await auditOf(d(), id)).filter((e) => e.actor === 'person:alice' && (e.type === 'approval_recorded' || e.type === 'approval_refused'));
        return mine.length >= 2 ? mine : null;
      }, { what: 'both clicks handled' });
      expect(outcomes.map((e) => [e.type, e.data['why'] ?? null]).sort()).toEqual([
        ['approval_recorded', null],
        ['approval_refused', 'already_voted'],
      ]);
      const p = await proposal(d(), id);
      expect(p.status).toBe('pending');
      expect(p.approvals.map((a) => [a.person, a.platform, a.vote])).toEqual([['alice', d().platform, 'approve']]);
      // And once more, on its own: the clicker hears that it already counted.
      expect(await d().click('alice', id, 'approve')).toContain(await sentence(d(), id, 'already_voted'));
      const card = await cardUntil(d(), id, '1 of 2 approvals', (c) => c.text.includes('1 of 2 approvals'));
      expect(hasButtons(card)).toBe(true);
    });

    it('needs two distinct people for a two-approval rule; the card says "1 of 2 approvals" in between', async () => {
      const id = await propose(d(), payout());
      const first = await d().cardOf(id);
      expect(first.text).toContain(CONTRACT_RULES.double.name);
      expect(first.text).toContain('0 of 2 approvals');
      expect((await d().click('alice', id, 'approve')) ?? '').not.toMatch(REFUSAL);
      await cardUntil(d(), id, '1 of 2 approvals by alice, buttons', (c) => c.text.includes('1 of 2 approvals: alice') && hasButtons(c));
      expect((await proposal(d(), id)).status).toBe('pending');
      expect((await d().click('bob', id, 'approve')) ?? '').not.toMatch(REFUSAL);
      const p = await proposal(d(), id);
      expect(p.status).toBe('approved');
      expect(p.approvals.map((a) => a.person)).toEqual(['alice', 'bob']);
      const final = await cardUntil(d(), id, 'approved by alice and bob, no buttons', (c) => c.buttons.length === 0);
      // Everyone whose approval counted, not only the last one.
      expect(final.text).toContain('Approved by alice, bob');
      expect(final.text).toContain('2 of 2 approvals: alice, bob');
      await threadUntil(d(), id, [`alice approved (1 of 2, via ${d().platform})`, `bob approved (2 of 2, via ${d().platform})`, 'Approved by alice, bob']);
    });

    it('asks to confirm a critical approval first, repeating the action, target and value, and counts nothing until it is confirmed', async () => {
      const body = payout();
      const id = await propose(d(), body);
      await d().cardOf(id);
      const asked = await d().confirmationOf('alice', id);
      expect(asked).not.toBeNull();
      for (const fact of [body.action.tool, body.action.operation, body.action.target, '€25,000.00']) expect(asked, `the confirmation repeats ${fact}`).toContain(fact);
      expect((await proposal(d(), id)).approvals).toEqual([]);
      expect((await auditOf(d(), id)).filter((e) => e.type === 'approval_recorded' || e.type === 'approval_refused')).toEqual([]);
      // Confirmed, it counts like any approval.
      expect((await d().click('alice', id, 'approve')) ?? '').not.toMatch(REFUSAL);
      expect((await proposal(d(), id)).approvals.map((a) => [a.person, a.platform])).toEqual([['alice', d().platform]]);
    });

    it("refuses a sponsor's click with the refusal sentence every platform says, to the sponsor alone, and audits it", async () => {
      const id = await propose(d(), refund());
      await d().cardOf(id);
      const told = await d().click('dana', id, 'approve');
      expect(told).toContain(await sentence(d(), id, 'sponsor'));
      const p = await proposal(d(), id);
      expect(p.status).toBe('pending');
      expect(p.approvals).toEqual([]);
      const refused = (await auditOf(d(), id)).filter((e) => e.type === 'approval_refused');
      expect(refused).toEqual([expect.objectContaining({ actor: 'person:dana', data: expect.objectContaining({ person: 'dana', platform: d().platform, vote: 'approve', why: 'sponsor' }) })]);
      // Told to her alone: the card everyone sees is unchanged and the thread does not count her.
      const card = await d().cardOf(id);
      expect(card.text).not.toMatch(REFUSAL);
      expect(card.text).toContain('0 of 1 approval');
      expect(hasButtons(card)).toBe(true);
      expect((await d().threadOf(id)).join('\n')).not.toContain('dana approved');
    });

    it('refuses a stranger and audits it', async () => {
      const id = await propose(d(), refund());
      await d().cardOf(id);
      const attempt = await d().clickAsStranger(id);
      const p = await proposal(d(), id);
      expect(p.status).toBe('pending');
      expect(p.approvals).toEqual([]);
      expect(attempt.told).not.toBeNull();
      const onProposal = (await auditOf(d(), id)).filter((e) => e.type === 'approval_refused' || e.type === 'approval_recorded');
      if (d().strangersCanClick) {
        expect(attempt.told).toContain(await sentence(d(), id, 'unknown_person'));
        expect(onProposal).toEqual([expect.objectContaining({ type: 'approval_refused', data: expect.objectContaining({ platform: d().platform, vote: 'approve', why: 'unknown_person' }) })]);
        expect(attempt.audited).toEqual(onProposal);
      } else {
        // Refused at the door: the failed sign-in is audited and no vote reaches the proposal.
        expect(attempt.audited).toEqual([expect.objectContaining({ type: 'auth_failed', data: expect.objectContaining({ via: d().platform, reason: 'unknown_person' }) })]);
        expect(onProposal).toEqual([]);
      }
      expect(hasButtons(await d().cardOf(id))).toBe(true);
    });

    it('refuses a high-risk deny without a reason (each platform asks its own way) and takes it with one', async () => {
      const id = await propose(d(), refund());
      await d().cardOf(id);
      const bare = await d().click('bob', id, 'deny');
      expect(bare).toMatch(/reason is required/i);
      expect((await proposal(d(), id)).status).toBe('pending');
      expect(hasButtons(await d().cardOf(id))).toBe(true);

      const reason = 'Duplicate of the refund issued yesterday';
      expect((await d().click('bob', id, 'deny', reason)) ?? '').not.toMatch(REFUSAL);
      const p = await proposal(d(), id);
      expect(p.status).toBe('denied');
      expect(p.resolution).toMatchObject({ status: 'denied', by: 'bob', reason });
      expect(p.approvals).toEqual([expect.objectContaining({ person: 'bob', platform: d().platform, vote: 'deny', reason })]);
      const card = await cardUntil(d(), id, 'denied, no buttons', (c) => c.buttons.length === 0);
      expect(card.text).toMatch(/denied/i);
      expect(card.text).toContain('bob');
      expect(card.text).toContain(reason);
      await threadUntil(d(), id, [new RegExp(`bob denied.*${reason}`)]);
    });

    it('after the decision the card has no buttons and shows the result, the thread has the approval, and later clicks are too late', async () => {
      const id = await propose(d(), refund());
      await d().cardOf(id);
      expect((await d().click('alice', id, 'approve')) ?? '').not.toMatch(REFUSAL);
      expect((await proposal(d(), id)).status).toBe('approved');
      const card = await cardUntil(d(), id, 'approved, no buttons', (c) => c.buttons.length === 0);
      expect(card.text).toMatch(/approved/i);
      expect(card.text).toContain('alice');
      expect(card.text).toContain('1 of 1 approval');
      await threadUntil(d(), id, [`alice approved (1 of 1, via ${d().platform})`, 'Approved by alice']);
      expect(await d().click('bob', id, 'approve')).toContain(await sentence(d(), id, 'not_pending'));
      expect((await proposal(d(), id)).approvals.map((a) => a.person)).toEqual(['alice']);
    });

    it('counts an approval on one platform toward the quorum seen on another', async (ctx) => {
      const peer = d().peer;
      if (peer === undefined) return ctx.skip('the route of this runner posts to one platform only');
      const id = await propose(d(), payout());
      await d().cardOf(id);
      await peer.cardOf(id);
      expect((await d().click('alice', id, 'approve')) ?? '').not.toMatch(REFUSAL);
      await cardUntil(peer, id, '1 of 2 approvals by alice, buttons', (c) => c.text.includes('1 of 2 approvals') && c.text.includes('alice') && hasButtons(c));
      // One person counts once, wherever they click.
      expect(await peer.click('alice', id, 'approve')).toContain(await sentence(d(), id, 'already_voted'));
      expect((await peer.click('bob', id, 'approve')) ?? '').not.toMatch(REFUSAL);
      const p = await proposal(d(), id);
      expect(p.status).toBe('approved');
      expect(p.approvals.map((a) => [a.person, a.platform])).toEqual([
        ['alice', d().platform],
        ['bob', peer.platform],
      ]);
      for (const on of [d(), peer]) {
        const card = await cardUntil(on, id, 'approved, no buttons', (c) => c.buttons.length === 0);
        expect(card.text).toMatch(/approved/i);
        expect(card.text).toContain('alice');
        expect(card.text).toContain('bob');
        await threadUntil(on, id, [`alice approved (1 of 2, via ${d().platform})`, `bob approved (2 of 2, via ${peer.platform})`, 'Approved by alice, bob']);
      }
    });
  });
}
