import { describe, expect, it } from 'vitest';
import { expireOverdue } from '../../../src/app/proposals.ts';
import { createMemoryApp } from '../../helpers/memory/app.ts';

// The expire sweep (every second) is the only thing that expires a pending proposal nobody
// reads: one proposal it cannot expire must not hold up the others behind it in the pending set.

describe('the expire sweep', () => {
  it('expires every overdue proposal even when one of them cannot be read (its key deleted by hand, say)', async () => {
    const app = await createMemoryApp();
    const broken = await app.submit();
    const fine = await app.submit();
    const get = app.store.get;
    app.store.get = async (id) => (id === broken.id ? null : get(id));
    app.clock.advance(fine.expires_at! - app.clock.now());
    expect(await expireOverdue(app.deps)).toBe(1);
    app.store.get = get;
    expect((await app.store.get(fine.id))?.status).toBe('expired');
    expect(app.logger.at('warn').map((l) => l.msg)).toContain('expire sweep: a pending proposal could not be expired');
  });

  it('expires them side by side: one whose follow-ups are slow does not hold up the others (one by one, ~400 a second at most)', async () => {
    const app = await createMemoryApp();
    const all = [await app.submit(), await app.submit(), await app.submit()];
    app.clock.advance(all[0]!.expires_at! - app.clock.now());
    // The first the sweep takes is the slow one.
    const [first] = await app.store.pendingDueBy(app.clock.now(), 10);
    const slow = all.find((p) => p.id === first)!;
    const others = all.filter((p) => p !== slow);
    let release = () => undefined as void;
    const held = new Promise<void>((r) => (release = r));
    const publish = app.changes.publish.bind(app.changes);
    app.changes.publish = async (id, status) => {
      if (id === slow.id) await held;
      return publish(id, status);
    };
    const sweep = expireOverdue(app.deps);
    await new Promise((r) => setImmediate(r));
    for (const p of others) expect((await app.store.get(p.id))?.status).toBe('expired');
    release();
    expect(await sweep).toBe(3);
  });
});
