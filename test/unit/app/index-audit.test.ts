import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditSigner } from '../../../adapters/tokens/audit-signer.ts';
import { generateSigningKey } from '../../../adapters/tokens/jwt-signer.ts';
import { createAuditIndexer } from '../../../src/app/index-audit.ts';
import { createAuditSealer } from '../../../src/app/seal-audit.ts';
import type { AuditSigner } from '../../../src/core/audit-checkpoint.ts';
import type { AuditIndexStore } from '../../../src/core/audit-index-ports.ts';
import { auditEvents } from '../../contracts/audit-seals.contract.ts';
import { createMemoryAuditIndex } from '../../helpers/memory/audit-index.ts';
import { createMemoryAuditSealMetrics, createMemoryWitness } from '../../helpers/memory/audit-sealer-recorders.ts';
import { createMemoryAuditSeals } from '../../helpers/memory/audit-seals.ts';
import { createManualClock } from '../../helpers/memory/clock.ts';
import { createMemoryLogger } from '../../helpers/memory/logger.ts';

// The indexer on the in-memory stores: it writes only where this replica's sealer holds the
// lease, steps until it has caught up, and goes on indexing after sealing stopped at an
// edited entry (search must keep working on a tampered log).

let signer: AuditSigner;
beforeAll(async () => {
  signer = await createAuditSigner(await generateSigningKey());
});

function world() {
  const clock = createManualClock();
  const seals = createMemoryAuditSeals({ clock });
  const index = createMemoryAuditIndex(seals);
  const logger = createMemoryLogger();
  const sealer = (owner: string) =>
    createAuditSealer({ seals, signer, clock, logger, metrics: createMemoryAuditSealMetrics(), witness: createMemoryWitness(), log: 'unit-log', owner }, { everyEntries: 5, leaseMs: 600_000 });
  return { clock, seals, index, logger, sealer };
}

describe('audit indexer', () => {
  it("indexes in batches under the sealer's lease, and not on a replica whose sealer does not hold it", async () => {
    const w = world();
    w.seals.append(auditEvents(5), 3);
    const mine = createAuditIndexer({ index: w.index, logger: w.logger, owner: 'owner-a' }, { batch: 2 });
    const theirs = createAuditIndexer({ index: w.index, logger: w.logger, owner: 'owner-b' }, { batch: 2 });
    expect(await mine.step()).toBe('fenced');
    expect(await w.sealer('owner-a').step()).not.toBe('follower');
    expect(await theirs.step()).toBe('fenced');
    expect(await w.index.position()).toBeNull();
    expect(await mine.step()).toBe('more');
    expect(await mine.step()).toBe('more');
    expect(await mine.step()).toBe('idle');
    const entries = await w.seals.entriesAfter('0-0', 10);
    expect(await w.index.position()).toBe(entries[4]!.id);
    expect(await mine.step()).toBe('idle');
  });

  it('goes on indexing after sealing stopped at an edited entry', async () => {
    const w = world();
    w.seals.append(auditEvents(6), 3);
    w.seals.tamper.edit(3, { data: { n: 3000 } });
    const sealer = w.sealer('owner-a');
    expect(await sealer.step()).toBe('broken');
    w.seals.append(auditEvents(2, 7), 3);
    expect(await sealer.step()).toBe('broken');
    const indexer = createAuditIndexer({ index: w.index, logger: w.logger, owner: 'owner-a' }, { batch: 100 });
    expect(await indexer.step()).toBe('idle');
    const entries = await w.seals.entriesAfter('0-0', 10);
    expect(await w.index.position()).toBe(entries[7]!.id);
  });

  it('steps again at once when the position moved under it, and runs in the background until stopped', async () => {
    const w = world();
    w.seals.append(auditEvents(3), 3);
    expect(await w.sealer('owner-a').step()).toBe('idle');
    let moved = 1;
    const calls: number[] = [];
    const index: AuditIndexStore = {
      position: () => w.index.position(),
      async indexNext(owner, count) {
        calls.push(count);
        if (moved-- > 0) return 'moved';
        return w.index.indexNext(owner, count);
      },
    };
    const indexer = createAuditIndexer({ index, logger: w.logger, owner: 'owner-a' }, { batch: 10 });
    expect(await indexer.step()).toBe('more');
    indexer.start();
    await new Promise<void>((resolve) => {
      const look = () => void w.index.position().then((p) => (p === null ? setImmediate(look) : resolve()));
      look();
    });
    await indexer.stop();
    const entries = await w.seals.entriesAfter('0-0', 10);
    expect(await w.index.position()).toBe(entries[2]!.id);
    expect(calls[0]).toBe(10);
  });

  it('halves its batch after a failed step, and logs it', async () => {
    const w = world();
    const calls: number[] = [];
    let fail = true;
    const index: AuditIndexStore = {
      position: () => w.index.position(),
      async indexNext(_owner, count) {
        calls.push(count);
        if (fail) {
          fail = false;
          throw new Error('Command timed out');
        }
        return { indexed: 0 };
      },
    };
    const indexer = createAuditIndexer({ index, logger: w.logger, owner: 'owner-a' }, { batch: 1000, retryMs: 1 });
    indexer.start();
    await new Promise<void>((resolve) => {
      const look = () => (calls.length >= 2 ? resolve() : setImmediate(look));
      look();
    });
    await indexer.stop();
    expect(calls.slice(0, 2)).toEqual([1000, 500]);
    expect(w.logger.said('audit indexer: step failed')).toBe(true);
  });
});
