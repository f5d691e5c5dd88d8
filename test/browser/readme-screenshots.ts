import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Page } from 'playwright-core';
import { startPrivateRedis, type PrivateRedis } from '../../adapters/redis/private-server.ts';
import { launchChromium } from './chromium.ts';
import { measureLayout } from './layout.ts';

// The README's screenshots, from what a new user sees: `npm start` with no policy file (the
// built-in example policy) in a fresh directory and a Redis of its own (never a Redis already
// running here: its cards would show up), `npm run demo`, the example refund agent, and
// the console in Debian's chromium (the browser test's launcher), at 1280 px and on a phone.
//
//   npm run screenshots            # writes docs/screenshots/*.png
//
// Nothing here is a test; the layout is checked by test/browser/console.browser.test.ts. This
// script still refuses to write a page wider than its screen.

const ROOT = process.cwd();
const OUT = join(ROOT, 'docs', 'screenshots');
const BIN = join(ROOT, 'bin', 'countersign.js');
const WAIT_MS = 60_000;

/** The environment of a fresh shell: none of this machine's countersign or Redis settings. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(COUNTERSIGN_|REDIS_|POLICY_FILE$|PORT$|HOST$|PUBLIC_URL$|SLACK_|MICROSOFT_|NODE_ENV$)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Reads a process's stdout by lines; `line(pattern)` resolves with the first line, already read
 * or still to come, that matches, and rejects when the process ends first or after WAIT_MS.
 */
function lines(child: ChildProcess): (pattern: RegExp, what: string) => Promise<RegExpExecArray> {
  const seen: string[] = [];
  const waiting = new Set<() => void>();
  let ended = false;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    seen.push(l);
    for (const check of waiting) check();
  });
  child.once('exit', () => {
    ended = true;
    for (const check of waiting) check();
  });
  return (pattern, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${what} after ${WAIT_MS / 1000} s`)), WAIT_MS);
      const done = (result: RegExpExecArray | Error) => {
        clearTimeout(timer);
        waiting.delete(check);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const check = () => {
        for (const l of seen) {
          const m = pattern.exec(l);
          if (m !== null) return done(m);
        }
        if (ended) done(new Error(`${what}: the process ended first`));
      };
      waiting.add(check);
      check();
    });
}

function run(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited with ${code}:\n${out}`))));
  });
}

async function shoot(page: Page, name: string, fullPage = false): Promise<void> {
  const layout = await measureLayout(page, 'main');
  if (layout.scrollWidth > layout.viewport) throw new Error(`${name}: the page is ${layout.scrollWidth} px wide on a ${layout.viewport} px screen`);
  await page.screenshot({ path: join(OUT, name), fullPage });
  console.log(`wrote docs/screenshots/${name}`);
}

const work = mkdtempSync(join(tmpdir(), 'countersign-screenshots-'));
let app: ChildProcess | null = null;
let redis: PrivateRedis | null = null;
try {
  mkdirSync(OUT, { recursive: true });
  redis = await startPrivateRedis({ dir: join(work, 'redis'), persist: false, searchPath: process.env['PATH'] ?? '' });
  // 1. npm start, as in the README (a free port, in an empty directory: no policy.yaml).
  app = spawn(process.execPath, [BIN, 'start'], { cwd: work, env: cleanEnv({ PORT: '0', LOG_LEVEL: 'warn', REDIS_URL: redis.url }), stdio: ['ignore', 'pipe', 'inherit'] });
  const appLine = lines(app);
  const [, url] = await appLine(/^countersign is running at (http:\/\/\S+)/, 'start line');
  const [, signInLink] = await appLine(/one-time link, valid \d+ minutes\): (http:\/\/\S+)/, 'sign-in link');
  const env = cleanEnv({ COUNTERSIGN_URL: url! });

  // 2. npm run demo.
  console.log((await run([BIN, 'demo'], work, env)).trim());

  const context = await launchChromium(join(work, 'chromium'), { width: 1280, height: 900 });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${url}/console`);
  await page.waitForSelector('form[action="/console/login"]');
  await shoot(page, 'console-sign-in.png');
  await page.goto(signInLink!);
  await page.waitForURL(`${url}/console`);
  await page.waitForSelector('body.live');
  await page.setViewportSize({ width: 1280, height: 1600 });
  await shoot(page, 'console-pending.png');

  // 3. The example agent proposes a refund and waits; approving it lets it run and report.
  const secret = readFileSync(join(work, '.countersign', 'demo-agent-secret'), 'utf8').trim();
  const agent = spawn(process.execPath, ['--import', 'tsx', 'examples/refund-agent.ts'], { cwd: ROOT, env: { ...env, COUNTERSIGN_AGENT_SECRET: secret }, stdio: ['ignore', 'pipe', 'inherit'] });
  const agentDone = new Promise<number | null>((resolve) => agent.once('exit', resolve));
  const [, id] = await lines(agent)(/^proposed (p_\w+): pending/, "the refund agent's proposal");
  await page.setViewportSize({ width: 1280, height: 900 });
  const card = page.locator(`#card-${id}`);
  await card.waitFor();

  // On a phone: the agent's card with its decision controls.
  await page.setViewportSize({ width: 390, height: 844 });
  // From the intent down to the buttons, as far as the screen holds.
  await page.evaluate(`document.querySelector('#card-${id} form.decide').scrollIntoView({ block: 'end' }); window.scrollBy(0, 24)`);
  await shoot(page, 'console-phone.png');
  await page.setViewportSize({ width: 1280, height: 900 });

  await card.locator('textarea[name="reason"]').fill('Duplicate charge confirmed in the payment provider');
  await card.locator('form.decide button.approve').click();
  if ((await agentDone) !== 0) throw new Error('the refund agent did not finish');
  await page.goto(`${url}/console/proposals/${id}`);
  await page.locator('.timeline', { hasText: 'Succeeded' }).waitFor();
  await shoot(page, 'console-approved.png', true);

  // 4. The audit, searched as the README says.
  await page.goto(`${url}/console/audit?q=refund&since=1h`);
  await page.waitForSelector('#result-count');
  await shoot(page, 'console-audit.png');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(`document.getElementById('result-count').scrollIntoView({ block: 'start' })`);
  await shoot(page, 'console-phone-audit.png');
  await context.close();
} finally {
  if (app !== null && app.exitCode === null) {
    const exited = new Promise((resolve) => app!.once('exit', resolve));
    app.kill('SIGTERM');
    await exited;
  }
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
}
