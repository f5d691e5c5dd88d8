import { parseUntil } from '../core/away.ts';
import type { PlatformId } from '../core/platform.ts';
import { awayStatus, comeBack, setAway } from './away.ts';
import type { AppDeps } from './deps.ts';

// The chat words for absences, the same on every platform: `away until 2026-12-24 to @bob`,
// `away` (what is set), `back`. The delegate is a mention the platform resolved to its user id
// (`<@U0BOB|bob>` as Slack sends it, `<@aad-object-id>` as the Teams adapter rewrites its
// <at> mention) or a person id of the policy (`@bob`, `bob`).

export const AWAY_USAGE = ['away until <date> to <person>: while you are away, they decide for you', 'away: who decides for you, and for whom you decide', 'back: you decide for yourself again'];

const MENTION = /^<@([^|>\s]{1,100})(?:\|[^>]{0,100})?>$/;
const PERSON_ID = /^@?([A-Za-z0-9][A-Za-z0-9._-]{0,99})$/;

/** The policy person a delegate word names on `platform`, or null. */
export function delegateNamed(deps: Pick<AppDeps, 'policy'>, platform: PlatformId, word: string): string | null {
  const mention = MENTION.exec(word);
  if (mention !== null) return deps.policy.personByPlatformId(platform, mention[1]!)?.id ?? null;
  const id = PERSON_ID.exec(word);
  return id !== null && deps.policy.people.has(id[1]!) ? id[1]! : null;
}

/** `verb` is away or back; `args` the words after it; `person` the writer, as the platform authenticated them. */
export async function runAwayCommand(deps: AppDeps, platform: PlatformId, person: string, verb: 'away' | 'back', args: string[]): Promise<string> {
  if (verb === 'back') return (await comeBack(deps, person)).text;
  if (args.length === 0) return (await awayStatus(deps, person)).text;
  const words = args.map((w) => w.toLowerCase());
  const untilAt = words.indexOf('until');
  const toAt = words.indexOf('to');
  const untilWord = untilAt < 0 ? undefined : args[untilAt + 1];
  const toWords = toAt < 0 ? [] : args.slice(toAt + 1, untilAt > toAt ? untilAt : undefined);
  if (untilWord === undefined || toWords.length !== 1) return `Write: away until 2026-12-24 to @person (one person).`;
  const until = parseUntil(untilWord);
  if (until === null) return `until: cannot read "${untilWord.slice(0, 40)}" as a date: write 2026-12-24 (through that day, UTC) or 2026-12-24T17:00Z.`;
  const delegate = delegateNamed(deps, platform, toWords[0]!);
  if (delegate === null) return `delegate: ${toWords[0]!.slice(0, 60)} is not a person in the countersign policy.`;
  const r = await setAway(deps, person, { delegate, until });
  return r.ok ? r.text : `Not set: ${r.text}.`;
}
