import { describe, expect, it } from 'vitest';
import { FAILED_SIGN_IN_WINDOW_SECONDS, MAX_FAILED_SIGN_INS, ONE_TIME_TTL_SECONDS, SESSION_TTL_SECONDS, type SessionStore } from '../../src/core/ports.ts';

// What every SessionStore does (src/core/ports.ts). Expiry needs time the test can move:
// `advance` moves the stores' time (a fake's clock; for Redis, the expiries of its keys).
// Without it, the expiry tests are skipped.

export interface SessionStoreContractOptions {
  /** Moves the stores' time forward by `ms`. */
  advance?: (ms: number) => void | Promise<void>;
}

let n = 0;
const person = (name = 'alice') => `${name}-${process.pid}-${++n}`;
const SECRET_SHAPE = /^[A-Za-z0-9_-]{20,100}$/;

export function sessionStoreContract(make: () => Promise<SessionStore> | SessionStore, opts: SessionStoreContractOptions = {}): void {
  const { advance } = opts;
  describe('SessionStore contract', () => {
    it('a created session reads back as created, under a fresh unguessable id and csrf token', async () => {
      const store = await make();
      const who = person();
      const { id, session } = await store.create(who, 1_700_000_000_000);
      expect(session).toEqual({ person: who, csrf: expect.stringMatching(SECRET_SHAPE), created_at: 1_700_000_000_000 });
      expect(id).toMatch(SECRET_SHAPE);
      expect(await store.get(id)).toEqual(session);
      const other = await store.create(who, 1_700_000_000_000);
      expect(other.id).not.toBe(id);
      expect(other.session.csrf).not.toBe(session.csrf);
      expect(session.csrf).not.toBe(id);
    });

    it('an unknown or malformed session id reads as no session', async () => {
      const store = await make();
      const { id } = await store.create(person(), 0);
      for (const bad of ['', 'short', `${id} `, `${id}*`, 'x'.repeat(101), `${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`]) {
        expect(await store.get(bad)).toBeNull();
      }
    });

    it('destroy ends that session only; destroying an unknown or malformed id is harmless', async () => {
      const store = await make();
      const a = await store.create(person(), 0);
      const b = await store.create(person(), 0);
      await store.destroy(a.id);
      expect(await store.get(a.id)).toBeNull();
      expect(await store.get(b.id)).toEqual(b.session);
      await expect(store.destroy(a.id)).resolves.toBeUndefined();
      await expect(store.destroy('not a session id')).resolves.toBeUndefined();
    });

    it('a one-time sign-in token gives its person once, then nothing', async () => {
      const store = await make();
      const who = person('bob');
      const token = await store.issueOneTime(who);
      expect(token).toMatch(SECRET_SHAPE);
      expect(await store.consumeOneTime(token)).toBe(who);
      expect(await store.consumeOneTime(token)).toBeNull();
    });

    it('two browsers racing for one link: exactly one signs in', async () => {
      const store = await make();
      const who = person('carol');
      const token = await store.issueOneTime(who);
      const answers = await Promise.all([store.consumeOneTime(token), store.consumeOneTime(token), store.consumeOneTime(token)]);
      expect(answers.filter((a) => a === who)).toHaveLength(1);
      expect(answers.filter((a) => a === null)).toHaveLength(2);
    });

    it('session ids and one-time tokens are not interchangeable; unknown or malformed tokens give nothing', async () => {
      const store = await make();
      const { id } = await store.create(person(), 0);
      const token = await store.issueOneTime(person());
      expect(await store.consumeOneTime(id)).toBeNull();
      expect(await store.get(token)).toBeNull();
      expect(await store.get(id)).not.toBeNull();
      for (const bad of ['', 'short', `${token}!`, 'y'.repeat(101)]) expect(await store.consumeOneTime(bad)).toBeNull();
      expect(await store.consumeOneTime(token)).not.toBeNull();
    });

    it(`failed sign-ins: under the limit until the ${MAX_FAILED_SIGN_INS}th, then locked out; per person; cleared on success`, async () => {
      const store = await make();
      const [who, bystander] = [person('dave'), person('erin')];
      expect(await store.isLockedOut(who)).toBe(false);
      for (let i = 1; i < MAX_FAILED_SIGN_INS; i++) {
        expect(await store.recordFailure(who)).toBe(true);
        expect(await store.isLockedOut(who)).toBe(false);
      }
      expect(await store.recordFailure(who)).toBe(false);
      expect(await store.isLockedOut(who)).toBe(true);
      expect(await store.recordFailure(who)).toBe(false);
      expect(await store.isLockedOut(bystander)).toBe(false);
      expect(await store.recordFailure(bystander)).toBe(true);
      await store.clearFailures(who);
      expect(await store.isLockedOut(who)).toBe(false);
      expect(await store.recordFailure(who)).toBe(true);
      expect(await store.isLockedOut(bystander)).toBe(false);
    });

    it('concurrent failed sign-ins are all counted', async () => {
      const store = await make();
      const who = person('frank');
      const answers = await Promise.all(Array.from({ length: MAX_FAILED_SIGN_INS }, () => store.recordFailure(who)));
      expect(answers.filter((a) => !a)).toHaveLength(1);
      expect(await store.isLockedOut(who)).toBe(true);
    });

    describe.skipIf(advance === undefined)('expiry (with the time the test moves)', () => {
      const move = async (seconds: number) => advance!(seconds * 1000);

      it(`a session lasts ${SESSION_TTL_SECONDS} s from its creation`, async () => {
        const store = await make();
        const { id, session } = await store.create(person(), 0);
        await move(SESSION_TTL_SECONDS - 1);
        expect(await store.get(id)).toEqual(session);
        await move(1);
        expect(await store.get(id)).toBeNull();
      });

      it(`a one-time token lasts ${ONE_TIME_TTL_SECONDS} s`, async () => {
        const store = await make();
        const [early, late] = [await store.issueOneTime('grace'), await store.issueOneTime('heidi')];
        await move(ONE_TIME_TTL_SECONDS - 1);
        expect(await store.consumeOneTime(early)).toBe('grace');
        await move(1);
        expect(await store.consumeOneTime(late)).toBeNull();
      });

      it(`a lock-out ends ${FAILED_SIGN_IN_WINDOW_SECONDS} s after the first failure; later failures do not extend it`, async () => {
        const store = await make();
        const who = person('ivan');
        await store.recordFailure(who);
        await move(FAILED_SIGN_IN_WINDOW_SECONDS - 1);
        for (let i = 1; i < MAX_FAILED_SIGN_INS; i++) await store.recordFailure(who);
        expect(await store.isLockedOut(who)).toBe(true);
        await move(1);
        expect(await store.isLockedOut(who)).toBe(false);
        // A new window: the count starts again from the next failure.
        expect(await store.recordFailure(who)).toBe(true);
        expect(await store.isLockedOut(who)).toBe(false);
      });
    });
  });
}
