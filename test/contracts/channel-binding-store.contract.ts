import { describe, expect, it } from 'vitest';
import type { ChannelBinding, ChannelBindingStore } from '../../src/core/ports.ts';

// What every ChannelBindingStore does (src/core/ports.ts), whatever keeps the data. Each test
// uses a store of its own from `make`, so implementations need not share state between calls.

let n = 0;
const unique = (what: string) => `${what}-${process.pid}-${++n}`;

function binding(conversation: string, extra: Record<string, unknown> = {}): ChannelBinding {
  return { conversation, serviceUrl: 'https://smba.example/emea/', tenant: 'tenant-1', boundBy: 'alice', at: '2026-01-01T00:00:00.000Z', ...extra };
}

export function channelBindingStoreContract(make: () => Promise<ChannelBindingStore> | ChannelBindingStore): void {
  describe('ChannelBindingStore contract', () => {
    it('finds nothing for a route or channel never bound', async () => {
      const store = await make();
      expect(await store.forKey('teams', unique('route'))).toBeNull();
      expect(await store.forConversation('teams', unique('19:never'))).toBeNull();
    });

    it('returns the binding as written, by route key and by conversation, details included', async () => {
      const store = await make();
      const route = unique('finance');
      const b = binding(unique('19:fin@thread.tacv2'), { nested: { list: [1, 'two', null] }, flag: false });
      await store.bind('teams', route, b);
      expect(await store.forKey('teams', route)).toEqual(b);
      expect(await store.forConversation('teams', b.conversation)).toEqual(b);
    });

    it('moving a route to another channel: the route finds the new one, the old channel stays findable', async () => {
      const store = await make();
      const route = unique('ops');
      const first = binding(unique('19:first'), { boundBy: 'alice' });
      const second = binding(unique('19:second'), { boundBy: 'bob' });
      await store.bind('teams', route, first);
      await store.bind('teams', route, second);
      expect(await store.forKey('teams', route)).toEqual(second);
      expect(await store.forConversation('teams', second.conversation)).toEqual(second);
      // Its old cards still update: the channel keeps the binding it was last bound with.
      expect(await store.forConversation('teams', first.conversation)).toEqual(first);
    });

    it('one channel bound by two routes: each route finds it, the channel reads as its latest binding', async () => {
      const store = await make();
      const [a, b] = [unique('route-a'), unique('route-b')];
      const conversation = unique('19:shared');
      await store.bind('teams', a, binding(conversation, { boundBy: 'alice' }));
      await store.bind('teams', b, binding(conversation, { boundBy: 'bob' }));
      expect((await store.forKey('teams', a))?.['boundBy']).toBe('alice');
      expect((await store.forKey('teams', b))?.['boundBy']).toBe('bob');
      expect((await store.forConversation('teams', conversation))?.['boundBy']).toBe('bob');
    });

    it('keeps platforms apart: a binding on one platform is not seen on another', async () => {
      const store = await make();
      const route = unique('shared-route');
      const conversation = unique('C0SHARED');
      await store.bind('teams', route, binding(conversation));
      expect(await store.forKey('slack', route)).toBeNull();
      expect(await store.forConversation('slack', conversation)).toBeNull();
      await store.bind('slack', route, { conversation, by: 'slack' });
      expect(await store.forKey('slack', route)).toEqual({ conversation, by: 'slack' });
      expect(await store.forKey('teams', route)).toEqual(binding(conversation));
    });

    it('route keys and conversation ids are matched exactly (no prefix matching, no thread stripping)', async () => {
      const store = await make();
      const route = unique('exact');
      const conversation = unique('19:exact@thread.tacv2');
      await store.bind('teams', route, binding(conversation));
      expect(await store.forKey('teams', route.toUpperCase())).toBeNull();
      expect(await store.forKey('teams', `${route}-x`)).toBeNull();
      expect(await store.forConversation('teams', `${conversation};messageid=171`)).toBeNull();
    });

    it('what a caller does to a binding, before or after, does not change what is stored', async () => {
      const store = await make();
      const route = unique('copy');
      const written = binding(unique('19:copy'));
      await store.bind('teams', route, written);
      written['boundBy'] = 'mallory';
      const read = await store.forKey('teams', route);
      expect(read?.['boundBy']).toBe('alice');
      read!['boundBy'] = 'mallory';
      expect((await store.forKey('teams', route))?.['boundBy']).toBe('alice');
    });
  });
}
