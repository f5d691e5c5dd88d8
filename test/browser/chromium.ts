import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

// Debian's chromium, driven over CDP by playwright-core: the browser test and the README's
// screenshots (npm run screenshots) start it the same way.

export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(userDataDir: string, viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
    deviceScaleFactor: 1,
  });
}
