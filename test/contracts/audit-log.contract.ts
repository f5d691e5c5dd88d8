import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, chainHash, eventDigest } from '../../src/core/audit.ts';
import type { AuditEventInput } from '../../src/core/audit.ts';
import { ValidationError } from '../../src/core/errors.ts';
import type { AuditLog, AuditQuery, ProposalStore, StoredAuditEvent } from '../../src/core/ports.ts';
import { verifyAudit } from '../../src/app/search-audit.ts';
import { T0, ev, proposalAt as proposal, scanAll, searchAll as all, verify } from './fixtures.ts';

// What every AuditLog must do, run against the Redis adapter
// (test/integration/audit-log.contract.redis.test.ts) and the memory fake
// (test/unit/audit-log.memory.test.ts): entries in seq order that verifyAudit chains and whose
// edits it names, and search (whole words on every path, filters, status, order, paging). `make` gives a fresh,
// empty log, the proposal store that writes to it (search by status reads the store), and a
// way to tamper with what is stored. Cases about Redis itself (concurrent connections, the
// stream's fields, older chain formats, the search index) stay in the *.redis.test.ts files.

export interface AuditTamper {
  /** Replaces the stored data of the entry with this seq; its digest and hash stay. */
  editData(seq: number, data: Record<string, unknown>): Promise<void>;
  /** Deletes the newest `count` entries, leaving the head record as it was. */
  dropNewest(count: number): Promise<void>;
}

export type AuditLogSubject = { audit: AuditLog; store: ProposalStore; tamper: AuditTamper };

export function auditLogContract(name: string, make: () => Promise<AuditLogSubject>): void {
  describe(`AuditLog contract: ${name}`, () => {
    describe('chain', () => {
      it('starts at seq 1, with no head before the first entry, and gives back what was written, its chain left to the reader', async () => {
        const { audit: log } = await make();
        expect(await log.head()).toBeNull();
        const data = { z: 1, a: 'x/y "q" ü 😀', nested: { b: [1.5, null, true], a: {} } };
        const written = [ev({ type: 'channel_bound', actor: 'person:alice', data }), ev({ type: 'auth_failed', proposal_id: 'p_x', agent: 'a1' })];
        await log.append(written);
        const [first, second] = await scanAll(log);
        // Chain step 3: the writer stores the digest; the hashes are computed by whoever reads in order.
        expect(first).toMatchObject({ seq: 1, digest: eventDigest(written[0]!), prev_hash: null, hash: null, chain: 3, type: 'channel_bound', proposal_id: null, agent: null, actor: 'person:alice', data });
        expect(second).toMatchObject({ seq: 2, digest: eventDigest(written[1]!), prev_hash: null, hash: null, chain: 3, proposal_id: 'p_x', agent: 'a1' });
        expect(await log.head()).toEqual({ seq: 2, hash: null });
        const head = chainHash(chainHash(GENESIS_HASH, 1, first!.digest), 2, second!.digest);
        expect(await verifyAudit(log)).toEqual({ ok: true, count: 2, head });
      });

      it('keeps one chain when proposal writes and plain appends interleave', async () => {
        const { audit: log, store } = await make();
        await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const p = proposal(`p_i${i}`, 'agent-1', 'pending');
            await store.create(p, [ev({ type: 'proposal_received', proposal_id: p.id, agent: p.agent, data: { i } })]);
            await log.append([ev({ type: 'auth_failed', actor: `ip:10.0.0.${i}` })]);
            await store.commit({ ...p, status: 'cancelled', version: 2 }, 1, [ev({ type: 'cancelled', proposal_id: p.id, agent: p.agent })]);
          }),
        );
        expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 30 });
        expect((await scanAll(log, 7)).map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      });

      it('names exactly the entry whose data was edited', async () => {
        const { audit: log, tamper } = await make();
        for (let i = 0; i < 30; i++) await log.append([ev({ type: 'token_redeemed', data: { i } })]);
        expect(await verify(log)).toMatchObject({ ok: true, count: 30 });
        const victim = (await scanAll(log))[17]!;
        await tamper.editData(victim.seq, { i: 1700 });
        const verdict = await verify(log, 7);
        expect(verdict).toMatchObject({ ok: false, count: 17, seq: 18, id: victim.id });
        expect(verdict.ok === false && verdict.reason).toMatch(/digest/);
      });

      it('names a cut tail: the newest entries deleted leave a valid chain but a longer head', async () => {
        const { audit: log, tamper } = await make();
        await log.append([1, 2, 3, 4, 5].map((n) => ev({ type: 'auth_failed', data: { n } })));
        expect(await verifyAudit(log)).toMatchObject({ ok: true, count: 5 });
        const entries = await scanAll(log);
        await tamper.dropNewest(2);
        const verdict = await verifyAudit(log);
        expect(verdict).toMatchObject({ ok: false, count: 3, seq: 4, id: entries[2]!.id });
        expect(verdict.ok === false && verdict.reason).toContain('head records seq 5');
      });
    });

    describe('search', () => {
      const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
      const base = (q: Partial<AuditQuery>): AuditQuery => ({ words: [], limit: 100, ...q });
      const seqs = (r: { events: StoredAuditEvent[] }) => r.events.map((e) => e.seq);
      let ready: Promise<AuditLog> | null = null;

      // seq n is at minute n-1; p_a (seq 1, 4, 5, 8) ends approved, p_b (seq 2, 6, 7) stays pending.
      function seed(): Promise<AuditLog> {
        ready ??= (async () => {
          const { audit: log, store } = await make();
          const pa = proposal('p_a', 'billing-agent', 'pending');
          const pb = proposal('p_b', 'support-agent', 'pending');
          await store.create(pa, [ev({ type: 'proposal_received', at: at(0), proposal_id: 'p_a', agent: 'billing-agent', actor: 'agent:billing-agent', data: { intent: 'Refund invoice 4711' } })]);
          await store.create(pb, [ev({ type: 'proposal_received', at: at(1), proposal_id: 'p_b', agent: 'support-agent', actor: 'agent:support-agent', data: { intent: 'Close ticket 99' } })]);
          await log.append([ev({ type: 'auth_failed', at: at(2), actor: 'ip:10.1.2.3', data: { reason: 'Bad Signature' } })]);
          await store.commit({ ...pa, status: 'approved', version: 2 }, 1, [
            ev({ type: 'approval_recorded', at: at(3), proposal_id: 'p_a', agent: 'billing-agent', actor: 'person:alice', data: { vote: 'approve' } }),
            ev({ type: 'decided', at: at(4), proposal_id: 'p_a', agent: 'billing-agent', actor: 'person:alice', data: { status: 'approved' } }),
          ]);
          await log.append([
            ev({ type: 'approval_refused', at: at(5), proposal_id: 'p_b', agent: 'support-agent', actor: 'person:mallory', data: { why: 'not_an_approver' } }),
            ev({ type: 'card_posted', at: at(6), proposal_id: 'p_b', agent: 'support-agent', actor: 'system', data: { platform: 'slack', invoice: 4711 } }),
            ev({ type: 'token_issued', at: at(7), proposal_id: 'p_a', agent: 'billing-agent', actor: 'system', data: {} }),
          ]);
          return log;
        })();
        return ready;
      }

      it('returns everything newest first', async () => {
        const log = await seed();
        expect(seqs(await log.search(base({})))).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
      });

      it('needs every word, case-insensitively, anywhere in type, actor, ids, agent or data', async () => {
        const log = await seed();
        expect(seqs(await log.search(base({ words: ['4711'] })))).toEqual([7, 1]);
        expect(seqs(await log.search(base({ words: ['REFUND', '4711'] })))).toEqual([1]);
        expect(seqs(await log.search(base({ words: ['bad', 'signature'] })))).toEqual([3]);
        expect(seqs(await log.search(base({ words: ['mallory'] })))).toEqual([6]);
        expect(seqs(await log.search(base({ words: ['p_b', 'slack'] })))).toEqual([7]);
        expect(seqs(await log.search(base({ words: ['4711', 'nothing-like-this'] })))).toEqual([]);
      });

      it('filters by agent, actor and proposal', async () => {
        const log = await seed();
        expect(seqs(await log.search(base({ agent: 'billing-agent' })))).toEqual([8, 5, 4, 1]);
        expect(seqs(await log.search(base({ actor: 'person:alice' })))).toEqual([5, 4]);
        expect(seqs(await log.search(base({ proposalId: 'p_b' })))).toEqual([7, 6, 2]);
        expect(seqs(await log.search(base({ agent: 'support-agent', words: ['refused'] })))).toEqual([6]);
      });

      it('filters by time, inclusive at both ends', async () => {
        const log = await seed();
        expect(seqs(await log.search(base({ since: T0 + 5 * 60_000 })))).toEqual([8, 7, 6]);
        expect(seqs(await log.search(base({ until: T0 + 60_000 })))).toEqual([2, 1]);
        expect(seqs(await log.search(base({ since: T0 + 2 * 60_000, until: T0 + 4 * 60_000 })))).toEqual([5, 4, 3]);
      });

      it("filters by the proposal's current status", async () => {
        const log = await seed();
        expect(seqs(await log.search(base({ status: 'approved' })))).toEqual([8, 5, 4, 1]);
        expect(seqs(await log.search(base({ status: 'pending' })))).toEqual([7, 6, 2]);
        expect(seqs(await log.search(base({ status: 'denied' })))).toEqual([]);
      });

      it('pages with a cursor without gaps or repeats', async () => {
        const log = await seed();
        const pages: number[][] = [];
        let cursor: string | undefined;
        for (let i = 0; i < 10; i++) {
          const page = await log.search(base({ limit: 3, ...(cursor === undefined ? {} : { cursor }) }));
          pages.push(seqs(page));
          if (page.next === null) break;
          expect(page.next).toBe(page.events.at(-1)!.id);
          cursor = page.next;
        }
        expect(pages).toEqual([[8, 7, 6], [5, 4, 3], [2, 1]]);

        const filtered = await log.search(base({ agent: 'billing-agent', limit: 2 }));
        expect(seqs(filtered)).toEqual([8, 5]);
        const rest = await log.search(base({ agent: 'billing-agent', limit: 2, cursor: filtered.next! }));
        expect(seqs(rest)).toEqual([4, 1]);
      });

      it('returns nothing for a limit of 0, and refuses a cursor no page gave', async () => {
        const log = await seed();
        expect(await log.search(base({ limit: 0 }))).toEqual({ events: [], next: null });
        await expect(log.search(base({ cursor: 'not-a-cursor' }))).rejects.toBeInstanceOf(ValidationError);
      });

      it('finds the same events as a scan, page by page, for words and filters', async () => {
        const { audit: log } = await make();
        const events: AuditEventInput[] = [];
        for (let i = 0; i < 600; i++) {
          events.push(
            ev({
              type: i % 3 === 0 ? 'approval_recorded' : 'card_posted',
              at: new Date(T0 + i * 1000).toISOString(),
              proposal_id: `p_${i % 7}`,
              agent: `agent-${i % 5}`,
              actor: `person:p${i % 11}`,
              data: { intent: `Refund invoice ${i % 13} ${i % 2 === 0 ? 'even' : 'odd'}` },
            }),
          );
        }
        for (let i = 0; i < events.length; i += 100) await log.append(events.slice(i, i + 100));
        const everything = await all(log, {});
        expect(everything).toHaveLength(600);
        const expectFor = (keep: (e: StoredAuditEvent) => boolean) => everything.filter(keep).map((e) => e.seq);
        const text = (e: StoredAuditEvent) => JSON.stringify(e.data).toLowerCase() + e.type;
        const cases: [Partial<AuditQuery>, (e: StoredAuditEvent) => boolean][] = [
          [{ words: ['even'] }, (e) => text(e).includes('even')],
          [{ words: ['EVEN', 'refund', '12'] }, (e) => / 12 even/.test(text(e))],
          [{ words: ['recorded'] }, (e) => e.type === 'approval_recorded'],
          [{ agent: 'agent-3' }, (e) => e.agent === 'agent-3'],
          [{ actor: 'person:p4', words: ['odd'] }, (e) => e.actor === 'person:p4' && text(e).includes('odd')],
          [{ proposalId: 'p_2', agent: 'agent-1' }, (e) => e.proposal_id === 'p_2' && e.agent === 'agent-1'],
          [{ agent: 'agent-2', since: T0 + 100_000, until: T0 + 400_000 }, (e) => e.agent === 'agent-2' && Date.parse(e.at) >= T0 + 100_000 && Date.parse(e.at) <= T0 + 400_000],
          [{ words: ['nowhere'] }, () => false],
        ];
        for (const [q, keep] of cases) {
          for (const limit of [500, 7]) {
            expect((await all(log, { ...q, limit })).map((e) => e.seq), JSON.stringify({ ...q, limit })).toEqual(expectFor(keep));
          }
        }
      });

      it('matches words at word boundaries', async () => {
        const { audit: log } = await make();
        await log.append([ev({ type: 'card_posted', data: { intent: 'Refunds for approval_refused' } })]);
        expect(await all(log, { words: ['refused'] })).toHaveLength(1);
        expect(await all(log, { words: ['refunds'] })).toHaveLength(1);
        expect(await all(log, { words: ['refund'] })).toHaveLength(0);
      });

      // Whichever list or scan a search reads its candidates from, each word of the query is
      // matched whole: the other words of the query, words with a filter, words not indexed.
      it('matches every word at word boundaries, with filters and with several words', async () => {
        const { audit: log } = await make();
        await log.append([
          ev({ type: 'card_posted', agent: 'a1', actor: 'person:zoe', data: { intent: 'Refunds for the xylophone', note: 'agents' } }),
          ev({ type: 'card_posted', agent: 'a2', actor: 'person:yann', data: { intent: 'Refund the x', note: 'agent' } }),
          ...[1, 2, 3].map((n) => ev({ type: 'card_posted', agent: 'a3', actor: 'system', data: { intent: `Refund ${n}` } })),
        ]);
        const found = async (q: Partial<AuditQuery>) => (await all(log, q)).map((e) => e.seq).sort((a, b) => a - b);
        expect(await found({ words: ['refund'], actor: 'person:zoe' })).toEqual([]);
        expect(await found({ words: ['refund'], agent: 'a1' })).toEqual([]);
        expect(await found({ words: ['refund'], actor: 'person:yann' })).toEqual([2]);
        expect(await found({ words: ['xylophone', 'refund'] })).toEqual([]);
        expect(await found({ words: ['xylophone', 'refunds'] })).toEqual([1]);
        expect(await found({ words: ['the', 'refund'] })).toEqual([2]);
        expect(await found({ words: ['x'] })).toEqual([2]);
        expect(await found({ words: ['x', 'refund'], agent: 'a2' })).toEqual([2]);
        // Words too common to index are matched whole too.
        expect(await found({ words: ['agent'] })).toEqual([2]);
        expect(await found({ words: ['agents'] })).toEqual([1]);
        expect(await found({ words: ['agent'], agent: 'a1' })).toEqual([]);
      });
    });
  });
}
