import { afterEach, describe, expect, it } from 'vitest';
import type { LiveNotice, LiveUpdates } from '../../src/core/ports.ts';

// What every LiveUpdates does (src/core/ports.ts). `make` gives another replica's view of the
// same installation each time: what one publishes, every one hears. Tests wait for notices,
// never for time: "X heard nothing" is shown by a later notice reaching someone else first
// (notices from one publisher arrive in order).

interface Ear {
  heard: LiveNotice[];
  /** Resolves once `count` notices have been heard in all. */
  until(count: number): Promise<void>;
  off(): void;
}

function listen(updates: LiveUpdates): Ear {
  const heard: LiveNotice[] = [];
  const waiting: { count: number; resolve: () => void }[] = [];
  const off = updates.subscribe((notice) => {
    heard.push(notice);
    for (const w of waiting.filter((w) => heard.length >= w.count)) w.resolve();
  });
  return {
    heard,
    until: (count) => (heard.length >= count ? Promise.resolve() : new Promise((resolve) => waiting.push({ count, resolve }))),
    off,
  };
}

let n = 0;
const pid = () => `p_${process.pid}${++n}`;

export function liveUpdatesContract(make: () => Promise<LiveUpdates> | LiveUpdates): void {
  describe('LiveUpdates contract', () => {
    const open: LiveUpdates[] = [];
    const replica = async () => {
      const u = await make();
      open.push(u);
      return u;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((u) => u.close()));
    });

    it('a notice reaches the subscribers of the publishing replica and of every other, as published', async () => {
      const [a, b] = [await replica(), await replica()];
      const [onA, onB, onB2] = [listen(a), listen(b), listen(b)];
      const notice: LiveNotice = { id: pid(), change: 'posted' };
      await a.publish(notice);
      await Promise.all([onA.until(1), onB.until(1), onB2.until(1)]);
      for (const ear of [onA, onB, onB2]) expect(ear.heard).toEqual([notice]);
    });

    it('carries every kind of change, in the order published', async () => {
      const [a, b] = [await replica(), await replica()];
      const ear = listen(b);
      const id = pid();
      const sent: LiveNotice[] = [
        { id, change: 'posted' },
        { id, change: 'updated' },
        { id, change: 'reply' },
        { id: pid(), change: 'updated' },
      ];
      for (const notice of sent) await a.publish(notice);
      await ear.until(sent.length);
      expect(ear.heard).toEqual(sent);
    });

    it('an unsubscribed listener hears nothing more; the others still do', async () => {
      const u = await replica();
      const [gone, stays] = [listen(u), listen(u)];
      const first: LiveNotice = { id: pid(), change: 'posted' };
      await u.publish(first);
      await Promise.all([gone.until(1), stays.until(1)]);
      gone.off();
      await u.publish({ id: pid(), change: 'updated' });
      await stays.until(2);
      expect(gone.heard).toEqual([first]);
    });

    it('each subscribe is a subscription of its own, even of the same function', async () => {
      const u = await replica();
      const heard: string[] = [];
      const listener = (notice: LiveNotice) => heard.push(notice.id);
      const offFirst = u.subscribe(listener);
      u.subscribe(listener);
      const witness = listen(u);
      const [one, two] = [pid(), pid()];
      await u.publish({ id: one, change: 'posted' });
      await witness.until(1);
      offFirst();
      await u.publish({ id: two, change: 'posted' });
      await witness.until(2);
      expect(heard).toEqual([one, one, two]);
    });

    it('a closed replica hears nothing more; the others still do', async () => {
      const [closing, staying] = [await replica(), await replica()];
      const [deaf, ear] = [listen(closing), listen(staying)];
      await closing.close();
      await staying.publish({ id: pid(), change: 'reply' });
      await ear.until(1);
      expect(deaf.heard).toEqual([]);
    });

    it('a listener that throws does not keep the next one from hearing', async () => {
      const u = await replica();
      u.subscribe(() => {
        throw new Error('a broken page');
      });
      const ear = listen(u);
      await u.publish({ id: pid(), change: 'updated' });
      await ear.until(1);
      await u.publish({ id: pid(), change: 'reply' });
      await ear.until(2);
      expect(ear.heard.map((x) => x.change)).toEqual(['updated', 'reply']);
    });

    it('refuses an id it could not carry (empty, or with white space)', async () => {
      const u = await replica();
      for (const id of ['', 'p_1 posted', 'p_1\n', ' ']) await expect(u.publish({ id, change: 'posted' })).rejects.toThrow();
    });
  });
}
