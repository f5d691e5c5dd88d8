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
});
