import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import {
  FAILED_SIGN_IN_WINDOW_SECONDS,
  MAX_FAILED_SIGN_INS,
  ONE_TIME_TTL_SECONDS,
  SESSION_TTL_SECONDS,
  type Session,
  type SessionStore,
} from '../../src/core/ports.ts';
import { redisKeys } from './keys.ts';
import { countInWindow } from './lua-commands.ts';

// Sign-in sessions and one-time sign-in tokens, under the installation's hash tag so any
// replica can serve any request. Keys are named by the SHA-256 of the secret (keys.ts), never
// the secret: someone who can read Redis cannot take over a session or use a sign-in link.
// Expiry is Redis's (EX), so a session ends on every replica at once.

// What randomToken makes (32 bytes base64url = 43), with room for other lengths; anything
// else is not looked up at all.
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,100}$/;

function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

function parseSession(text: string | null): Session | null {
  if (text === null) return null;
  try {
    const s = JSON.parse(text) as Partial<Session> | null;
    return typeof s?.person === 'string' && typeof s.csrf === 'string' ? (s as Session) : null;
  } catch {
    return null;
  }
}

export function createRedisSessionStore(redis: Redis | Cluster, prefix: string): SessionStore {
  const keys = redisKeys(prefix);
  return {
    async create(person, now) {
      const id = randomToken();
      const session: Session = { person, csrf: randomToken(), created_at: now };
      await redis.set(keys.session(id), JSON.stringify(session), 'EX', SESSION_TTL_SECONDS);
      return { id, session };
    },
    async get(id) {
      if (!TOKEN_SHAPE.test(id)) return null;
      return parseSession(await redis.get(keys.session(id)));
    },
    async destroy(id) {
      if (TOKEN_SHAPE.test(id)) await redis.del(keys.session(id));
    },
    async issueOneTime(person) {
      const token = randomToken();
      await redis.set(keys.oneTimeSignIn(token), person, 'EX', ONE_TIME_TTL_SECONDS);
      return token;
    },
    async consumeOneTime(token) {
      if (!TOKEN_SHAPE.test(token)) return null;
      // GETDEL: two browsers racing for one link cannot both sign in.
      return await redis.getdel(keys.oneTimeSignIn(token));
    },
    async recordFailure(person) {
      // Count and window in one step: a counter left without expiry would lock the person out for good.
      return (await countInWindow(redis, keys.signInFailures(person), FAILED_SIGN_IN_WINDOW_SECONDS)) < MAX_FAILED_SIGN_INS;
    },
    async isLockedOut(person) {
      return Number((await redis.get(keys.signInFailures(person))) ?? '0') >= MAX_FAILED_SIGN_INS;
    },
    async clearFailures(person) {
      await redis.del(keys.signInFailures(person));
    },
  };
}
