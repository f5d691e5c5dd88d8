import { createHash } from 'node:crypto';
import { BASE_POLICY } from './app.ts';

// A policy whose people can sign in to the console with keys, for the console tests.

export const CONSOLE_KEYS = { alice: 'alice-console-key-0123456789', bob: 'bob-console-key-0123456789' };

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** BASE_POLICY with console keys: alice by hash, bob through a variable (BOB_CONSOLE_KEY). */
export const CONSOLE_POLICY = BASE_POLICY.replace(
  'alice: { slack: U0ALICE, teams: 00000000-0000-0000-0000-0000000a11ce }',
  `alice: { slack: U0ALICE, teams: 00000000-0000-0000-0000-0000000a11ce, console_key_sha256: ${sha(CONSOLE_KEYS.alice)} }`,
)
  .replace('bob: { slack: U0BOB }', 'bob: { slack: U0BOB, console_key_env: BOB_CONSOLE_KEY }')
  .replace('dana: { slack: U0DANA }', `dana: { slack: U0DANA, console_key_sha256: ${sha('dana-console-key-0123456789')} }`);

export const CONSOLE_ENV = { BOB_CONSOLE_KEY: CONSOLE_KEYS.bob };

/** Signs in through the key form over plain HTTP; returns the cookie header and the CSRF token. */
export async function signInWithKey(baseUrl: string, person: string, key: string): Promise<{ cookie: string; csrf: string }> {
  const form = await fetch(`${baseUrl}/console/login`);
  const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!;
  const loginCsrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const res = await fetch(`${baseUrl}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie, origin: baseUrl },
    body: new URLSearchParams({ csrf: loginCsrf, person, key }).toString(),
  });
  if (res.status !== 303) throw new Error(`sign-in failed: ${res.status}`);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('cs_session='))!.split(';')[0]!;
  const page = await fetch(`${baseUrl}/console`, { headers: { cookie } });
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1] ?? '';
  return { cookie, csrf };
}
