import { auditEvent } from '../core/audit-events.ts';
import { awayRuleBroken, untilText, type Absence } from '../core/away.ts';
import { iso } from '../core/clock.ts';
import type { AppDeps } from './deps.ts';

// A person marks themselves away until a time, naming a delegate who decides in their place
// meanwhile, and comes back (src/core/away.ts has the rules, lifecycle.ts how votes count).
// Every caller passes the person its platform authenticated (the console's session, Slack's
// signed command, Teams' Entra object id): nobody sets or ends another person's absence.

export type AwayChange = { ok: true; absence: Absence; text: string } | { ok: false; field: 'delegate' | 'until'; text: string };

/** How an absence reads to its person. */
export function awaySentence(a: Absence): string {
  return `You are away until ${untilText(a.until)}: ${a.delegate} decides for you.`;
}

function subject(person: string, now: number) {
  return { at: iso(now), proposal_id: null, agent: null, actor: `person:${person}` };
}

/** Sets (or replaces) `person`'s own absence: checked, then stored with its away_set event in one step. */
export async function setAway(deps: Pick<AppDeps, 'away' | 'policy' | 'clock'>, person: string, req: { delegate: string; until: number }): Promise<AwayChange> {
  const now = deps.clock.now();
  const broken = awayRuleBroken({ person, delegate: req.delegate, until: req.until }, now, (id) => deps.policy.people.has(id));
  if (broken !== null) return { ok: false, field: broken.field, text: `${broken.field}: ${broken.message}` };
  const absence: Absence = { delegate: req.delegate, until: req.until, set_at: now };
  const event = auditEvent('away_set', subject(person, now), { delegate: absence.delegate, until: iso(absence.until) });
  const r = await deps.away.set(person, absence, now, [event]);
  if (r.kind === 'delegate_away') {
    return { ok: false, field: 'delegate', text: `delegate: ${req.delegate} is away too, until ${untilText(r.until)}; name someone who is here (a delegate decides only for the people who named them, never further)` };
  }
  return { ok: true, absence, text: awaySentence(absence) };
}

/** Ends `person`'s own absence, with its away_cleared event; false when they were not away. */
export async function comeBack(deps: Pick<AppDeps, 'away' | 'clock'>, person: string): Promise<{ ended: boolean; text: string }> {
  // An absence replaced between the read and the clear (the person in two tabs) is read again.
  for (let round = 0; round < 5; round++) {
    const now = deps.clock.now();
    const a = await deps.away.get(person, now);
    if (a === null) return { ended: false, text: 'You were not marked away.' };
    const event = auditEvent('away_cleared', subject(person, now), { delegate: a.delegate, until: iso(a.until) });
    if (await deps.away.clear(person, a, [event])) return { ended: true, text: `Welcome back: ${a.delegate} no longer decides for you.` };
  }
  throw new Error('your absence kept changing; try again');
}

/** What `away` with nothing after it says: the person's own absence, and whom they decide for. */
export async function awayStatus(deps: Pick<AppDeps, 'away' | 'clock'>, person: string): Promise<{ own: Absence | null; standingFor: [string, Absence][]; text: string }> {
  const all = await deps.away.list(deps.clock.now());
  const own = all.get(person) ?? null;
  const standingFor = [...all].filter(([p, a]) => a.delegate === person && p !== person);
  const lines = [own === null ? 'You are not marked away.' : awaySentence(own)];
  for (const [p, a] of standingFor) lines.push(`${p} is away until ${untilText(a.until)}: you decide for ${p}.`);
  return { own, standingFor, text: lines.join('\n') };
}
