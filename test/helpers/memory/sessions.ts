import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../../../src/core/clock.ts';
import {
  FAILED_SIGN_IN_WINDOW_SECONDS,
  MAX_FAILED_SIGN_INS,
  ONE_TIME_TTL_SECONDS,
  SESSION_TTL_SECONDS,
  type Session,
  type SessionStore,
} from '../../../src/core/ports.ts';

// SessionStore in memory, for use-case unit tests (test/contracts states what it shares with
// the Redis store). Expiries follow the injected clock, so a test moves time instead of
// waiting; an entry is gone from the moment its time is up, as a Redis key with EX is.

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,100}$/;
const randomToken = () => randomBytes(32).toString('base64url');

interface Entry<T> {
  value: T;
  /** Clock ms at which it is gone. */
  until: number;
}

export function createMemorySessionStore(clock: Clock = systemClock): SessionStore {
  const sessions = new Map<string, Entry<string>>();
  const oneTime = new Map<string, Entry<string>>();
  const failures = new Map<string, Entry<number>>();
  const live = <T>(map: Map<string, Entry<T>>, key: string): Entry<T> | null => {
    const e = map.get(key);
    if (e === undefined) return null;
    if (clock.now() >= e.until) {
      map.delete(key);
      return null;
    }
    return e;
  };
  const put = <T>(map: Map<string, Entry<T>>, key: string, value: T, seconds: number) => map.set(key, { value, until: clock.now() + seconds * 1000 });

  return {
    async create(person, now) {
      const id = randomToken();
      const session: Session = { person, csrf: randomToken(), created_at: now };
      put(sessions, id, JSON.stringify(session), SESSION_TTL_SECONDS);
      return { id, session };
    },
    async get(id) {
      if (!TOKEN_SHAPE.test(id)) return null;
      const e = live(sessions, id);
      return e === null ? null : (JSON.parse(e.value) as Session);
    },
    async destroy(id) {
      sessions.delete(id);
    },
    async issueOneTime(person) {
      const token = randomToken();
      put(oneTime, token, person, ONE_TIME_TTL_SECONDS);
      return token;
    },
    async consumeOneTime(token) {
      const e = live(oneTime, token);
      oneTime.delete(token);
      return e?.value ?? null;
    },
    async recordFailure(person) {
      const e = live(failures, person);
      // The window runs from the first failure, like the Redis counter's expiry.
      if (e === null) put(failures, person, 1, FAILED_SIGN_IN_WINDOW_SECONDS);
      else e.value += 1;
      return (e?.value ?? 1) < MAX_FAILED_SIGN_INS;
    },
    async isLockedOut(person) {
      return (live(failures, person)?.value ?? 0) >= MAX_FAILED_SIGN_INS;
    },
    async clearFailures(person) {
      failures.delete(person);
    },
  };
}
