// What `countersign start` tells the person at the terminal about the console when it runs a
// policy file (the built-in example says its own lines in main.ts): a one-time sign-in link for
// the people who decide and have no console key, so a console-only policy is usable at once.
import { consoleKeyHash, consoleSignInLink } from '../../adapters/console/platform.ts';
import type { Config } from '../config.ts';
import type { Policy } from '../core/policy/model.ts';
import type { SessionStore } from '../core/ports.ts';

/** More people than this get the command instead of a link each. */
const MAX_LINKS = 3;

/** A link is only worth printing (and only safe in a terminal's scrollback) for a server reachable from this machine alone. */
function listensLocally(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Reached at a local address too: a reverse proxy on this host (PUBLIC_URL https://…) makes a link work from anywhere. */
function reachedLocally(publicUrl: string): boolean {
  try {
    return listensLocally(new URL(publicUrl).hostname);
  } catch {
    return false;
  }
}

export async function signInLines(config: Config, policy: Policy, sessions: SessionStore, consoleOn: boolean, publicUrl: string): Promise<string[]> {
  if (!consoleOn) return [];
  const command = 'npx countersign console link PERSON';
  if (config.production || !listensLocally(config.host) || !reachedLocally(publicUrl)) return [`console: ${publicUrl}/console (sign in with a console key, or a one-time link: ${command})`];
  const deciders = [...new Set([...policy.groups.values()].flat())].filter((id) => {
    const person = policy.people.get(id);
    return person !== undefined && consoleKeyHash(person) === null;
  });
  const lines: string[] = [];
  for (const person of deciders.slice(0, MAX_LINKS)) {
    lines.push(`sign in to the console as "${person}" (one-time link, valid 15 minutes): ${await consoleSignInLink(sessions, publicUrl, person)}`);
  }
  if (deciders.length > MAX_LINKS) lines.push(`${deciders.length - MAX_LINKS} more people sign in with one-time links: ${command}`);
  if (lines.length === 0) lines.push(`console: ${publicUrl}/console (sign in with your console key)`);
  return lines;
}
