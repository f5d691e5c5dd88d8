import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

// Console sessions and one-time sign-in tokens, in Redis under the installation's hash tag
// so any replica can serve any request. Keys hold the SHA-256 of the secret, never the
// secret: someone who can read Redis cannot take over a session or use a sign-in link.

export const SESSION_TTL_SECONDS = 12 * 60 * 60;
export const ONE_TIME_TTL_SECONDS = 15 * 60;
/** Failed key sign-ins per person before further tries are refused for the window. */
export const MAX_FAILED_SIGN_INS = 10;
const FAILURE_WINDOW_SECONDS = 15 * 60;

export interface Session {
  person: string;
  /** Synchronizer token: every state-changing request must carry it. */
  csrf: string;
  created_at: number;
}

export interface SessionStore {
  create(person: string, now: number): Promise<{ id: string; session: Session }>;
  get(id: string): Promise<Session | null>;
  destroy(id: string): Promise<void>;
  /** A random single-use sign-in token for `person`, valid for ONE_TIME_TTL_SECONDS. */
  issueOneTime(person: string): Promise<string>;
  /** The person the token was issued for; the token is gone afterwards, whatever the answer. */
  consumeOneTime(token: string): Promise<string | null>;
  /** Counts a failed sign-in; true while the person is still under the limit. */
  recordFailure(person: string): Promise<boolean>;
  isLockedOut(person: string): Promise<boolean>;
  clearFailures(person: string): Promise<void>;
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

const digest = (secret: string) => createHash('sha256').update(secret).digest('hex');

/** Constant-time comparison of two strings of any length. */
export { sameSecret as sameText } from '../../src/core/signing.ts';

export function createSessionStore(redis: Redis | Cluster, prefix: string): SessionStore {
  const tag = `{${prefix}}`;
  const sessionKey = (id: string) => `${tag}:console:session:${digest(id)}`;
  const onceKey = (token: string) => `${tag}:console:once:${digest(token)}`;
  const failKey = (person: string) => `${tag}:console:fail:${person}`;
  const tokenShape = /^[A-Za-z0-9_-]{20,100}$/;

  return {
    async create(person, now) {
      const id = randomToken();
      const session: Session = { person, csrf: randomToken(), created_at: now };
      await redis.set(sessionKey(id), JSON.stringify(session), 'EX', SESSION_TTL_SECONDS);
      return { id, session };
    },
    async get(id) {
      if (!tokenShape.test(id)) return null;
      const text = await redis.get(sessionKey(id));
      if (text === null) return null;
      try {
        const s = JSON.parse(text) as Session;
        return typeof s.person === 'string' && typeof s.csrf === 'string' ? s : null;
      } catch {
        return null;
      }
    },
    async destroy(id) {
      if (tokenShape.test(id)) await redis.del(sessionKey(id));
    },
    async issueOneTime(person) {
      const token = randomToken();
      await redis.set(onceKey(token), person, 'EX', ONE_TIME_TTL_SECONDS);
      return token;
    },
    async consumeOneTime(token) {
      if (!tokenShape.test(token)) return null;
      // GETDEL: two browsers racing for one link cannot both sign in.
      return (await redis.getdel(onceKey(token))) ?? null;
    },
    async recordFailure(person) {
      const key = failKey(person);
      const count = await redis.incr(key);
      if (count === 1) await redis.expire(key, FAILURE_WINDOW_SECONDS);
      return count < MAX_FAILED_SIGN_INS;
    },
    async isLockedOut(person) {
      return Number((await redis.get(failKey(person))) ?? '0') >= MAX_FAILED_SIGN_INS;
    },
    async clearFailures(person) {
      await redis.del(failKey(person));
    },
  };
}
