import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PROPOSALS } from '../../src/cli/agent-commands.ts';
import { CountersignClient } from '../../src/client/index.ts';
import { proposalBody } from '../helpers/agent.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { CONSOLE_ENV, CONSOLE_KEYS, CONSOLE_POLICY } from '../helpers/console.ts';
import { launchChromium } from './chromium.ts';
import { measureLayout, widthShare } from './layout.ts';

// The console in a real browser (Debian's chromium through playwright-core): sign in, see
// a pending card, be refused a reason-less denial, approve, watch the agent's outcome
// arrive in the timeline without a reload, search the audit; at 1280 px and on a phone.
// Screenshots go to test-results/screenshots/ (the README's come from the demo: npm run screenshots).

const SHOTS = [join(process.cwd(), 'test-results', 'screenshots')];

async function shoot(page: Page, name: string, fullPage = false): Promise<void> {
  for (const dir of SHOTS) {
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, name), fullPage });
  }
}

/** No page wider than the screen, no text over other text or out of its box, in each `container`. */
async function expectTidy(page: Page, container: string, width: number): Promise<void> {
  const r = await measureLayout(page, container);
  expect(r.viewport).toBe(width);
  expect(r.scrollWidth, 'the page is no wider than the screen').toBeLessThanOrEqual(width);
  expect(r.overlaps, 'text drawn over other text').toEqual([]);
  expect(r.spills, 'text wider than its box').toEqual([]);
  expect(r.outside, 'boxes past their container').toEqual([]);
}

describe('web console in a browser', () => {
  let app: TestApp;
  let context: BrowserContext;
  let page: Page;
  let billing: CountersignClient;
  const problems: string[] = [];
  const userDataDir = mkdtempSync(join(tmpdir(), 'countersign-chromium-'));

  beforeAll(async () => {
    // A rule with a limit of its own, for the over-the-limit banner; notice updates a few hundred ms apart.
    // The refund rule lets approvers edit the amount, for "Edit before approving" on a phone.
    const policy = CONSOLE_POLICY.replace('risk: high\n    route: finance\n    approvers: finance\n', 'risk: high\n    route: finance\n    approvers: finance\n    editable: [amount]\n').replace('rules:\n', 'rules:\n  - { name: desk-chores, when: action.tool == "desk", effect: approve, risk: low, route: secops, approvers: security, limits: { proposals_per_minute: 1 } }\n');
    app = await startTestApp({ policy, env: CONSOLE_ENV, start: { limitNotices: { updateEveryMs: 300 } } });
    billing = new CountersignClient({ url: app.url, agent: 'billing-agent', secret: app.secrets.billing });
    context = await launchChromium(userDataDir);
    page = context.pages()[0] ?? (await context.newPage());
    // CSP violations, script errors and alert() from injected markup all land here.
    // (The refused sign-in and the refused denial are expected 4xx answers, not problems.)
    page.on('console', (m) => m.type() === 'error' && !/^Failed to load resource: .* (400|401)/.test(m.text()) && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
  });

  it('signs in, approves a card, shows the outcome live, and searches the audit', async () => {
    // The demo's cards (refund, database change, email, payout: three risks), and a refund
    // whose intent tries to inject markup.
    const demo: Awaited<ReturnType<CountersignClient['propose']>>[] = [];
    for (const { body } of DEMO_PROPOSALS.slice(0, 4)) demo.push(await billing.propose(body));
    expect(demo.map((p) => p.status)).toEqual(['pending', 'pending', 'pending', 'pending']);
    const refund = demo[0]!;
    const xss = await billing.propose(
      proposalBody({ intent: 'Refund invoice 4711: the customer was charged twice <img src=x onerror=alert(1)> @channel' }) as never,
    );

    // Signed out: the console sends people to the sign-in form.
    await page.goto(`${app.url}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await page.fill('input[name="person"]', 'alice');
    await page.fill('input[name="key"]', 'not-the-key');
    await page.click('form button[type="submit"]');
    await expect.poll(() => page.textContent('.error')).toContain('Unknown person or wrong console key');
    await shoot(page, 'console-sign-in.png');
    await page.fill('input[name="key"]', CONSOLE_KEYS.alice);
    await page.click('form button[type="submit"]');
    await page.waitForURL(`${app.url}/console`);
    await expect.poll(() => page.locator('.card').count()).toBe(5);
    expect(await page.textContent('.top .who')).toContain('alice');

    // Agent text is shown as text, never as markup.
    const injected = page.locator(`#card-${xss.id}`);
    expect(await injected.locator('blockquote.intent').textContent()).toContain('<img src=x onerror=alert(1)> @channel');
    expect(await injected.locator('blockquote.intent img').count()).toBe(0);
    const card = page.locator(`#card-${refund.id}`);
    expect(await card.textContent()).toContain('0 of 1 approval');
    expect(await card.textContent()).toContain('high risk');
    await page.waitForSelector('body.live');
    // Newest first, as a card arriving live is added: the injected refund (proposed last) on top.
    expect(await page.locator('#cards .card').first().getAttribute('data-id')).toBe(xss.id);
    await expectTidy(page, '.card, form.batch', 1280);
    expect(await widthShare(page, 'form.batch textarea[name="reason"]', 'form.batch'), "the batch form's reason box is not squeezed").toBeGreaterThanOrEqual(0.5);
    await page.setViewportSize({ width: 1280, height: 1500 });
    await shoot(page, 'console-pending.png');
    await page.setViewportSize({ width: 1280, height: 900 });

    // A deny without a reason on a high-risk proposal: the core refuses, the card says why, in the
    // sentence every platform says.
    await card.locator('button.deny').click();
    await expect.poll(() => card.locator('.notice').textContent()).toBe('A reason is required to deny a high-risk proposal.');

    // Approve with a reason.
    await card.locator('textarea[name="reason"]').fill('Duplicate charge confirmed in Stripe (ch_3Pq…)');
    await card.locator('form.decide button.approve').click();
    const fresh = page.locator(`#card-${refund.id}`);
    await expect.poll(() => fresh.getAttribute('data-status')).toBe('approved');
    await expect.poll(() => fresh.locator('.timeline').textContent()).toContain('Approved by alice');
    expect(await fresh.locator('form.decide').count()).toBe(0);

    // A critical payout: Approve asks first, repeating what would happen; Go back counts nothing.
    const payout = page.locator(`#card-${demo[3]!.id}`);
    expect(await payout.textContent()).toContain('critical risk');
    await payout.locator('form.decide button.approve').click();
    const confirm = payout.locator('.confirm-approval');
    await expect.poll(() => confirm.count()).toBe(1);
    const asked = (await confirm.textContent()) ?? '';
    for (const part of ['Approve a critical action?', 'payments · payout', 'iban:DE89370400440532013000', '€24,800.00']) expect(asked).toContain(part);
    expect(await payout.locator('button.deny').count()).toBe(0);
    await confirm.scrollIntoViewIfNeeded();
    await shoot(page, 'console-confirm.png');
    await confirm.locator('button.confirm-back').click();
    await expect.poll(() => payout.locator('.confirm-approval').count()).toBe(0);
    expect(await payout.locator('button.deny').count()).toBe(1);
    expect((await billing.get(demo[3]!.id)).approvals).toEqual([]);
    await payout.locator('form.decide button.approve').click();
    await payout.locator('.confirm-approval button.confirm-yes').click();
    await expect.poll(() => page.locator(`#card-${demo[3]!.id} .quorum .count`).textContent()).toBe('1 of 2 approvals: alice');
    expect((await billing.get(demo[3]!.id)).approvals.map((a) => a.person)).toEqual(['alice']);

    // The agent takes its execution token and reports the outcome: the timeline updates live.
    let token: string | undefined;
    for (let i = 0; token === undefined && i < 40; i++) {
      token = (await billing.get(refund.id)).execution_token;
      if (token === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(token).toBeDefined();
    await billing.reportOutcome(refund.id, token!, { status: 'succeeded', status_code: 200, detail: 'refund re_3Pq9 created for INV-4711' });
    await expect.poll(() => page.locator(`#card-${refund.id} .timeline`).textContent(), { timeout: 10_000 }).toContain('Succeeded');
    // The agent's words exactly: the underscore in re_3Pq9 is kept.
    expect(await page.locator(`#card-${refund.id} .timeline`).textContent()).toContain('refund re_3Pq9 created for INV-4711');
    await expect.poll(() => page.locator(`#card-${refund.id}`).getAttribute('data-status')).toBe('succeeded');

    // A new proposal appears without a reload.
    const email = await billing.propose({
      intent: 'Send the renewal quote to the customer, as asked in ticket #8812',
      action: { tool: 'email', operation: 'send', target: 'procurement@northwind.example', parameters: { subject: 'Your renewal quote' } },
      context: { destination: 'external' },
    });
    await expect.poll(() => page.locator(`#card-${email.id}`).count(), { timeout: 10_000 }).toBe(1);

    await page.goto(`${app.url}/console/proposals/${refund.id}`);
    await shoot(page, 'console-approved.png', true);

    // Audit search with filters.
    await page.goto(`${app.url}/console/audit`);
    await page.fill('input[name="q"]', 'duplicate charge confirmed');
    await page.fill('input[name="since"]', '1h');
    await page.click('form.search button[type="submit"]');
    await page.waitForSelector('#result-count');
    const rows = page.locator('table.audit tbody tr');
    expect(await rows.count()).toBeGreaterThan(0);
    expect(await page.locator('table.audit').textContent()).toContain('approval_recorded');
    await page.selectOption('select[name="status"]', 'succeeded');
    await page.fill('input[name="q"]', '');
    await page.fill('input[name="actor"]', 'person:alice');
    await page.click('form.search button[type="submit"]');
    await page.waitForSelector('#result-count');
    expect(await page.locator('table.audit').textContent()).toContain(refund.id);
    await shoot(page, 'console-audit.png');

    expect(problems).toEqual([]);
  }, 90_000);

  it("shows an agent's over-the-limit notice as a banner on the pending page, its count moving live", async () => {
    await page.goto(`${app.url}/console`);
    await page.waitForSelector('body.live');
    const banner = page.locator('#limit-notices');
    expect(await banner.isHidden()).toBe(true);
    const desk = (n: number) => ({ intent: `Tidy desk ${n}`, action: { tool: 'desk', operation: 'tidy', target: `desk:${n}`, parameters: {} } });
    expect((await app.billing.propose(desk(1))).status).toBe(201);
    for (let n = 2; n <= 4; n++) expect((await app.billing.propose(desk(n))).status).toBe(429);
    // No reload: the page hears the notice posted, then updated, and fetches the banner again each time.
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toContain(': 3 refused since');
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.textContent()).toContain('billing-agent is over its limit of 1 proposal a minute for rule "desk-chores"');
    await shoot(page, 'console-limit-notice.png');
    expect(problems).toEqual([]);
  }, 30_000);

  it('works on a phone (390×844): controls stacked, reason box across the card, audit entries as cards, nothing overlapping', async () => {
    const refund = await billing.propose(DEMO_PROPOSALS[0]!.body);
    const critical = await billing.propose(DEMO_PROPOSALS[3]!.body);
    // An agent over its limit, for the banner (this file's earlier test may have been first).
    for (let n = 10; n < 13; n++) await app.billing.propose({ intent: `Tidy desk ${n}`, action: { tool: 'desk', operation: 'tidy', target: `desk:${n}`, parameters: {} } });
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.goto(`${app.url}/console`);
      if (new URL(page.url()).pathname === '/console/login') {
        await page.fill('input[name="person"]', 'alice');
        await page.fill('input[name="key"]', CONSOLE_KEYS.alice);
        await page.click('form button[type="submit"]');
        await page.waitForURL(`${app.url}/console`);
      }
      await page.waitForSelector('body.live');
      // The limit banner, the batch form, every card (one with an edit form, open) measured at once.
      await expect.poll(() => page.locator('#limit-notices').isVisible()).toBe(true);
      const card = page.locator(`#card-${refund.id}`);
      await card.locator('details.edit summary').click();
      await expectTidy(page, '.card, form.batch, #limit-notices, header.top', 390);
      expect(await widthShare(page, `#card-${refund.id} textarea[name="reason"]`, '.card'), 'the reason box spans the card').toBeGreaterThanOrEqual(0.8);
      expect(await widthShare(page, 'form.batch textarea[name="reason"]', 'form.batch')).toBeGreaterThanOrEqual(0.8);
      // The label sits above its box, on one line, not squeezed into a column beside it.
      const label = await card.locator('form.decide label').boundingBox();
      const box = await card.locator('form.decide textarea').boundingBox();
      const approve = await card.locator('form.decide button.approve').boundingBox();
      expect(box!.y).toBeGreaterThan(label!.y + 10);
      expect(approve!.y).toBeGreaterThanOrEqual(box!.y + box!.height);
      expect(await card.locator('form.decide textarea').getAttribute('placeholder')).toBe('Why you approve or deny');
      await card.scrollIntoViewIfNeeded();
      await shoot(page, 'console-phone-card.png');
      // A critical approval's second step, in place of the buttons.
      const payout = page.locator(`#card-${critical.id}`);
      await payout.locator('form.decide button.approve').click();
      await payout.locator('.confirm-approval').waitFor();
      await expectTidy(page, `#card-${critical.id}`, 390);
      await payout.locator('.confirm-approval').scrollIntoViewIfNeeded();
      await shoot(page, 'console-phone-confirm.png');
      await payout.locator('button.confirm-back').click();
      await page.evaluate('window.scrollTo(0, 0)');
      await shoot(page, 'console-phone-pending.png');

      await page.goto(`${app.url}/console/away`);
      await expectTidy(page, 'main, header.top', 390);
      await shoot(page, 'console-phone-away.png');

      await page.goto(`${app.url}/console/audit?since=1h`);
      await page.waitForSelector('#result-count');
      expect(await page.locator('table.audit thead').isVisible()).toBe(false);
      await expectTidy(page, 'table.audit tr, form.search', 390);
      // A date on one line ("2026-12-01 12:00:00 UTC"), not broken into "20/26-/11-…".
      const at = page.locator('table.audit td.at time').first();
      const lineHeight = Number.parseFloat((await page.evaluate(`getComputedStyle(document.querySelector('table.audit td.at time')).lineHeight`)) as string);
      expect((await at.boundingBox())!.height).toBeLessThan(lineHeight * 1.5);
      await page.evaluate(`document.getElementById('result-count').scrollIntoView({ block: 'start' })`);
      await shoot(page, 'console-phone-audit.png');
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
    expect(problems).toEqual([]);
  }, 30_000);
});
