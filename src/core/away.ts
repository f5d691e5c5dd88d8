// A person away until a time, with a delegate who decides in their place meanwhile (issue 17).
// Pure: what an absence is, the rules for setting one, and how it reads to people. Who the
// delegate's click counts for is lifecycle.ts's business (it takes the absences as data).

/** One person's absence, as stored. Times in ms since the epoch. */
export interface Absence {
  /** The policy person who decides in their place. */
  delegate: string;
  /** The absence ends here (exclusive): from this instant on the delegation counts for nothing. */
  until: number;
  set_at: number;
}

/**
 * What a delegate's vote stands on: `person`'s absence in force at `at` names `delegate`. The
 * store commits the vote only while that still holds, read in the same step (ProposalStore
 * commit): an absence ended or handed to someone else between the read and the commit (alice
 * back while erin's click is on its way) makes the vote be decided again.
 */
export interface DelegationHeld {
  person: string;
  delegate: string;
  at: number;
}

/** The absences in force now, by the absent person's id. */
export type Absences = ReadonlyMap<string, Absence>;

export const NOBODY_AWAY: Absences = new Map();

/** How far ahead an absence may end: a delegation nobody remembers should not outlive a quarter. */
export const MAX_AWAY_DAYS = 90;
const DAY_MS = 24 * 60 * 60_000;

/** Whether `a` is in force at `now`. */
export function inForce(a: Absence, now: number): boolean {
  return now < a.until;
}

/**
 * The end of an absence from what a person wrote: a date `2026-12-24` (away through that day,
 * UTC: it ends at the next midnight UTC) or an ISO-8601 time with a zone. Null when unreadable.
 */
export function parseUntil(text: string): number | null {
  const t = text.trim();
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (date !== null) {
    const [y, m, d] = [Number(date[1]), Number(date[2]) - 1, Number(date[3])];
    const start = Date.UTC(y, m, d);
    const check = new Date(start);
    // 2026-02-31 would roll over into March: refused rather than guessed.
    if (check.getUTCFullYear() !== y || check.getUTCMonth() !== m || check.getUTCDate() !== d) return null;
    return start + DAY_MS;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(t)) return null;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

/** "the end of 2026-12-24 (UTC)" for an absence that ends at midnight UTC, else the ISO time. */
export function untilText(until: number): string {
  if (until % DAY_MS === 0) return `the end of ${new Date(until - DAY_MS).toISOString().slice(0, 10)} (UTC)`;
  return new Date(until).toISOString().replace(/\.000Z$/, 'Z');
}

export interface AwayRequest {
  /** Who sets it: always the absent person themselves (the caller's authenticated identity). */
  person: string;
  delegate: string;
  until: number;
}

export type AwayRuleBroken = { field: 'delegate' | 'until'; message: string };

/**
 * What makes an absence invalid, before the store is asked (the store checks the delegate's
 * own absence again, atomically): null when it may be set.
 */
export function awayRuleBroken(req: AwayRequest, now: number, personExists: (id: string) => boolean): AwayRuleBroken | null {
  if (!personExists(req.delegate)) return { field: 'delegate', message: `"${req.delegate.slice(0, 100)}" is not a person in the policy` };
  if (req.delegate === req.person) return { field: 'delegate', message: 'the delegate must be someone other than you' };
  if (!Number.isFinite(req.until) || req.until <= now) return { field: 'until', message: 'the absence must end in the future' };
  if (req.until - now > MAX_AWAY_DAYS * DAY_MS) return { field: 'until', message: `the absence may end at most ${MAX_AWAY_DAYS} days from now` };
  return null;
}

/** Who the delegate decides for: the absences in force at `now` naming `delegate`, oldest id first. */
export function awayFor(absences: Absences, delegate: string, now: number): string[] {
  return [...absences]
    .filter(([person, a]) => a.delegate === delegate && person !== delegate && inForce(a, now))
    .map(([person]) => person)
    .sort();
}
